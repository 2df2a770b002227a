"""The GPU side never holds an AWS credential, and never even loads the AWS SDK."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import modal_service

PACKAGE_DIR = Path(modal_service.__file__).parent
BANNED = ("boto3", "botocore", "aiobotocore", "s3transfer")

# Imports modules in a fresh interpreter and reports what got loaded. HIDE=1 makes boto3 and
# botocore unimportable first (``sys.modules[name] = None``), as they are in the Modal image.
_PROBE = """
import importlib, json, os, pkgutil, sys
if os.environ.get("HIDE") == "1":
    for sdk in ("boto3", "botocore"):
        sys.modules[sdk] = None
import modal_service
names = [m.name for m in pkgutil.walk_packages(modal_service.__path__, "modal_service.")]
prefixes = tuple(os.environ["PREFIXES"].split(","))
chosen = [name for name in names if name.startswith(prefixes)]
for name in chosen:
    importlib.import_module(name)
loaded = [m for m in sys.modules if sys.modules[m] is not None]
print(json.dumps({"imported": chosen, "loaded": sorted(loaded)}))
"""

# The service's own code: the internal API, runners, worker, wiring and contract.
SERVICE_MODULES = (
    "modal_service.api",
    "modal_service.runner",
    "modal_service.worker",
    "modal_service.app",
    "modal_service.config",
    "modal_service.contracts",
    "modal_service.url_policy",
)


def _probe(prefixes: tuple[str, ...], *, hide_sdk: bool) -> dict[str, list[str]]:
    env = {**os.environ, "PREFIXES": ",".join(prefixes), "HIDE": "1" if hide_sdk else "0"}
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE_DIR.parent,
        env=env,
        timeout=240,
    )
    report: dict[str, list[str]] = json.loads(probe.stdout.strip().splitlines()[-1])
    return report


def _leaked(report: dict[str, list[str]]) -> list[str]:
    return [m for m in report["loaded"] if m.split(".")[0] in BANNED]


def test_the_service_code_loads_no_aws_sdk_even_where_one_is_installed() -> None:
    report = _probe(SERVICE_MODULES, hide_sdk=False)
    assert {"modal_service.app", "modal_service.worker.job", "modal_service.api.jobs"} <= set(
        report["imported"]
    )
    assert _leaked(report) == []


def test_every_module_imports_without_an_aws_sdk() -> None:
    # The whole package, model included, imports with boto3/botocore absent as in the image.
    # (With boto3 installed, accelerate imports it on its own for its SageMaker commands; the
    # Modal image does not install it, and the worker process hides it: see worker/__main__.)
    report = _probe(("modal_service",), hide_sdk=True)
    assert "modal_service.multitalk.renderer" in report["imported"]
    assert _leaked(report) == []


def test_no_source_file_imports_an_aws_sdk_even_lazily() -> None:
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {m}" for m in modules if m.split(".")[0] in BANNED]
    assert offenders == []

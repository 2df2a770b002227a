"""modules/core, the provider-free logic, run by real Terraform: init, validate, test, plan.

Its outputs are also checked against the Python side: the definition must equal what
aws/step_functions/render.py renders, and the Lambda environment must parse as the proxy's
Settings (names from aws/lambda_proxy/config.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws.lambda_proxy.config import ENV_VARS, Settings
from aws.step_functions.render import TEMPLATE_PATH, render_template
from scripts.terraform.hcl_structure import parse_file
from tests.terraform.tooling import CORE_DIR, terraform


def test_core_module_has_no_provider_and_no_resource() -> None:
    for path in sorted(CORE_DIR.glob("*.tf")):
        for block in parse_file(path).blocks:
            assert block.type not in ("provider", "resource", "data"), f"{path}: {block.type}"
            if block.type == "terraform":
                assert [b.type for b in block.blocks] == [], f"{path}: providers in terraform {{}}"


def test_core_module_validates(core_data_dir: Path) -> None:
    done = terraform("validate", "-no-color", cwd=CORE_DIR, data_dir=core_data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The configuration is valid" in done.stdout


def test_core_module_terraform_test_passes(core_data_dir: Path) -> None:
    done = terraform("test", "-no-color", cwd=CORE_DIR, data_dir=core_data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    for test_file in sorted((CORE_DIR / "tests").glob("*.tftest.hcl")):
        assert f"tests/{test_file.name}... pass" in done.stdout, done.stdout
    assert ", 0 failed" in done.stdout


def test_definition_equals_the_python_renderer(core_plan_outputs: dict[str, Any]) -> None:
    values = {
        "submit_queue_url": core_plan_outputs["queue_urls"]["batch_submit"],
        "results_bucket": "mt-eval-data",
        "results_prefix": "batch-results/",
        "max_concurrency": 7,
        "tolerated_failure_percentage": 12.5,
        "heartbeat_seconds": 300,
        "task_timeout_seconds": 2700,
    }
    expected = render_template(TEMPLATE_PATH.read_text(), values)
    assert core_plan_outputs["state_machine_definition"] == expected


def test_lambda_environment_parses_as_the_proxy_settings(core_plan_outputs: dict[str, Any]) -> None:
    known = set(ENV_VARS.values())
    for function, env in core_plan_outputs["lambda_environment"].items():
        unknown = {k for k in env if not k.startswith("POWERTOOLS_")} - known
        assert not unknown, f"{function}: not read by aws/lambda_proxy/config.py: {unknown}"
        settings = Settings.from_env(env)
        assert settings.jobs_table_name == "mt-eval-jobs"
        assert settings.jobs_active_index == "active-by-deadline"
        assert settings.tenants_config["globex"].write == ["s3://globex-media/out/"]
        assert settings.callback_base_url == "https://abc123.execute-api.eu-west-1.amazonaws.com"
        assert settings.modal_proxy_token_secret_arn is not None
        assert settings.default_speed == "balanced"

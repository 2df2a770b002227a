"""The low GPU utilisation alarm: it reads the metric the callbacks Lambda emits, and its
variable refuses values CloudWatch would refuse, checked by the embedded Terraform."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aws.lambda_proxy import observability
from tests.terraform.tooling import TERRAFORM_DIR, evaluate, terraform


def _alarms() -> dict[str, dict[str, Any]]:
    evaluated = evaluate(TERRAFORM_DIR / "examples" / "complete")
    return {alarm["alarm_name"]: alarm for alarm in evaluated["aws_cloudwatch_metric_alarm"]}


def test_the_alarm_reads_what_the_callbacks_emit_and_notifies_the_alarm_topic() -> None:
    alarms = _alarms()
    alarm = alarms["multitalk-prod-low-gpu-utilization"]
    # The Lambdas' defaults are what Terraform sets (POWERTOOLS_* from the same core module).
    assert (alarm["namespace"], alarm["dimensions"]) == (
        observability.NAMESPACE,
        {"service": observability.SERVICE},
    )
    assert (alarm["metric_name"], alarm["statistic"]) == ("GpuUtilizationMean", "Average")
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("LessThanThreshold", 60)
    assert (alarm["period"], alarm["evaluation_periods"]) == (900, 3)
    assert alarm["treat_missing_data"] == "notBreaching"  # no GPU job is not an idle GPU
    failed_jobs = alarms["multitalk-prod-failed-jobs"]
    assert alarm["alarm_actions"] == alarm["ok_actions"] == failed_jobs["alarm_actions"]


@pytest.fixture(scope="module")
def variable_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The variable exactly as variables.tf declares it, alone in a provider-free module."""
    text = (TERRAFORM_DIR / "variables.tf").read_text()
    block = text[text.index('variable "gpu_utilization_alarm"') :]
    block = block[: block.index("\n}\n") + 3]
    module = tmp_path_factory.mktemp("gpu-alarm-variable")
    (module / "main.tf").write_text(
        block + 'output "alarm" {\n  value = var.gpu_utilization_alarm\n}\n'
    )
    data_dir = tmp_path_factory.mktemp("gpu-alarm-data")
    done = terraform("init", "-input=false", "-no-color", cwd=module, data_dir=data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    return module, data_dir


def _plan(variable_module: tuple[Path, Path], value: str | None) -> tuple[int, str]:
    module, data_dir = variable_module
    args = ["plan", "-input=false", "-no-color"]
    if value is not None:
        args.append(f"-var=gpu_utilization_alarm={value}")
    done = terraform(*args, cwd=module, data_dir=data_dir)
    return done.returncode, done.stdout + done.stderr


def test_the_defaults_are_60_percent_over_3_periods_of_15_minutes(
    variable_module: tuple[Path, Path],
) -> None:
    code, out = _plan(variable_module, None)
    assert code == 0, out
    assert "evaluation_periods = 3" in out
    assert "period_seconds     = 900" in out
    assert "threshold_percent  = 60" in out


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("{threshold_percent=0}", "threshold_percent must be more than 0"),
        ("{threshold_percent=101}", "threshold_percent must be more than 0"),
        ("{period_seconds=90}", "period_seconds must be a multiple of 60"),
        ("{period_seconds=0}", "period_seconds must be a multiple of 60"),
        ("{evaluation_periods=0}", "evaluation_periods must be at least 1"),
        ("{period_seconds=3600,evaluation_periods=25}", "at most a day"),
    ],
)
def test_values_cloudwatch_would_refuse_are_refused_at_plan(
    variable_module: tuple[Path, Path], value: str, refusal: str
) -> None:
    code, out = _plan(variable_module, value)
    assert code != 0
    assert refusal in " ".join(out.split())  # Terraform wraps long messages


def test_a_custom_alarm_within_limits_plans(variable_module: tuple[Path, Path]) -> None:
    code, out = _plan(
        variable_module, "{threshold_percent=40,period_seconds=3600,evaluation_periods=24}"
    )
    assert code == 0, out

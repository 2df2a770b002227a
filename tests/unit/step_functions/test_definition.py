"""The definition template renders like Terraform's templatefile and passes a real ASL validator
(asl-validator from npm), which catches what the local engine accepts: broken transitions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aws.step_functions.render import (
    TEMPLATE_PATH,
    BatchTemplateValues,
    TemplateError,
    render_definition,
    render_template,
)

VALIDATOR = (
    Path(__file__).resolve().parents[3] / "aws/step_functions/node_modules/.bin/asl-validator"
)
VALUES: dict[str, Any] = {
    "submit_queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/multitalk-batch-submit",
    "results_bucket": "acme-multitalk-data",
    "results_prefix": "batch-results/",
    "max_concurrency": 8,
    "tolerated_failure_percentage": 10,
    "heartbeat_seconds": 900,
    "task_timeout_seconds": 7200,
}


def _validate(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert VALIDATOR.exists(), (
        "asl-validator is missing: run `make test` (npm ci in aws/step_functions)"
    )
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        [str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60
    )


def test_template_uses_exactly_the_terraform_variables() -> None:
    names = set(BatchTemplateValues.model_fields)
    assert names == set(VALUES)
    template = TEMPLATE_PATH.read_text()
    for name in names:
        assert "${" + name + "}" in template


def test_rendered_definition_carries_the_values() -> None:
    definition = render_definition(VALUES)
    config = definition["States"]["Configure"]["Parameters"]["config"]
    assert config == {
        "max_concurrency": 8,
        "tolerated_failure_percentage": 10,
        "results_bucket": "acme-multitalk-data",
        "results_prefix": "batch-results/",
    }
    task = definition["States"]["Render each item"]["ItemProcessor"]["States"]["Render video"]
    assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    assert task["Parameters"]["QueueUrl"] == VALUES["submit_queue_url"]
    assert (task["HeartbeatSeconds"], task["TimeoutSeconds"]) == (900, 7200)
    assert task["Retry"][0]["JitterStrategy"] == "FULL"
    assert task["Catch"][0]["ErrorEquals"] == ["States.ALL"]


def test_rendered_definition_is_valid_asl(tmp_path: Path) -> None:
    result = _validate(render_definition(VALUES), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "target"),
    [
        pytest.param(("States", "Plan batch", "Next"), "Render every item", id="top-level"),
        pytest.param(
            (
                "States",
                "Render each item",
                "ItemProcessor",
                "States",
                "Render video",
                "Catch",
                0,
                "Next",
            ),
            "Failure recrd",
            id="catch-inside-the-map",
        ),
    ],
)
def test_validator_catches_a_broken_transition(
    tmp_path: Path, path: tuple[Any, ...], target: str
) -> None:
    definition = render_definition(VALUES)
    node = definition
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = target
    result = _validate(definition, tmp_path)
    assert result.returncode != 0
    assert f"Missing 'StartAt'|'Next'|'Default' target: {target}" in result.stdout + result.stderr


def test_numbers_render_as_terraform_writes_them() -> None:
    template = '{"a": ${a}, "b": ${b}, "c": "${c}", "d": ${d}}'
    text = render_template(template, {"a": 10.0, "b": 12.5, "c": "x/", "d": True})
    assert json.loads(text) == {"a": 10, "b": 12.5, "c": "x/", "d": True}
    assert '"a": 10,' in text


@pytest.mark.parametrize(
    ("template", "values", "message"),
    [
        pytest.param("${a}", {}, "needs values for ['a']", id="missing"),
        pytest.param("${a}", {"a": 1, "b": 2}, "does not use ['b']", id="unknown"),
        pytest.param("%{ if a }x%{ endif }", {}, "'%{'", id="directive"),
        pytest.param("$${a}", {}, "'$${'", id="escape"),
        pytest.param("${upper(a)}", {"a": "x"}, "plain variable names", id="expression"),
        pytest.param("${a}", {"a": [1]}, "only strings, numbers and booleans", id="list"),
    ],
)
def test_renderer_refuses_what_terraform_would_read_differently(
    template: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError, match=message.replace("[", r"\[").replace("$", r"\$")):
        render_template(template, values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("results_prefix", "batch-results"),  # must end with /
        ("results_prefix", "it's/"),  # would break States.Format
        ("max_concurrency", 0),
        ("tolerated_failure_percentage", 101),
        ("submit_queue_url", "sqs://queue"),
        ("heartbeat_seconds", 7200),  # must be below task_timeout_seconds
    ],
)
def test_values_are_checked(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        render_definition(VALUES | {field: value})

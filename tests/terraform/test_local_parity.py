"""The local stack is built the way the Terraform module builds AWS, where the two could drift:
the jobs table's indexes, the API stage's throttling and the default speed profile."""

from __future__ import annotations

import json
import re
from typing import Any

from aws.lambda_proxy.config import Settings
from scripts.local_stack.config import RESOURCES_FILE
from scripts.local_stack.gateway import ThrottlingSettings
from scripts.local_stack.product import DEFAULT_SPEED
from scripts.terraform.hcl_structure import parse_file
from tests.terraform.tooling import CORE_DIR, TERRAFORM_DIR


def test_jobs_table_indexes_match_the_local_stack(core_plan_outputs: dict[str, Any]) -> None:
    """The indexes the tests run against (resources.json) are the ones Terraform creates, with
    the names the Lambdas are told to query."""
    names = core_plan_outputs["names"]["jobs_indexes"]
    (jobs,) = [
        block
        for block in parse_file(TERRAFORM_DIR / "dynamodb.tf").blocks
        if block.labels == ["aws_dynamodb_table", "jobs"]
    ]
    planned = {}
    for index in (b for b in jobs.blocks if b.type == "global_secondary_index"):
        name = index.attributes["name"].expression.removeprefix("local.names.jobs_indexes.")
        planned[names[name]] = {
            key: index.attributes[key].expression.strip('"') for key in ("hash_key", "range_key")
        }
    local = json.loads(RESOURCES_FILE.read_text())["tables"]["jobs"]["indexes"]
    assert planned == local
    environment = core_plan_outputs["lambda_environment"]["reconciler"]
    settings = Settings.from_env(environment)
    assert {
        settings.jobs_tenant_index,
        settings.jobs_active_index,
        settings.jobs_followup_index,
    } == set(local)


def _optional_defaults(variable: str) -> dict[str, float]:
    text = (TERRAFORM_DIR / "variables.tf").read_text()
    block = text[text.index(f'variable "{variable}"') :]
    block = block[: block.index("\n}\n")]
    return {
        name: float(value)
        for name, value in re.findall(r"(\w+)\s*=\s*optional\(number,\s*([\d.]+)\)", block)
    }


def test_local_gateway_throttles_with_the_stage_defaults() -> None:
    local = ThrottlingSettings()
    stage = _optional_defaults("api_throttling")
    assert stage == {
        "burst_limit": local.default.burst_limit,
        "rate_limit": local.default.rate_limit,
    }
    callbacks = local.routes["POST /callbacks/{job_id}"]
    assert _optional_defaults("callback_throttling") == {
        "burst_limit": callbacks.burst_limit,
        "rate_limit": callbacks.rate_limit,
    }
    stage_tf = (TERRAFORM_DIR / "apigateway.tf").read_text()
    assert 'route_key              = "POST /callbacks/{job_id}"' in stage_tf


def test_local_lambdas_get_the_default_speed_terraform_sets() -> None:
    for module in (TERRAFORM_DIR, CORE_DIR):
        (variable,) = [
            block
            for block in parse_file(module / "variables.tf").blocks
            if block.labels == ["default_speed"]
        ]
        assert variable.attributes["default"].expression == f'"{DEFAULT_SPEED}"', module

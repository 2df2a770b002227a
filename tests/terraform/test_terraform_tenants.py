"""Tenant limits in Terraform: the alarms read the metrics aws/lambda_proxy/tenants emits, the
dashboard charts them per tenant, ``GET /usage`` is routed with the read scopes, the limits
reach the Lambdas as Settings parses them, and each function may touch the usage table only as
its code does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws.lambda_proxy import observability
from aws.lambda_proxy.config import Settings
from aws.lambda_proxy.tenants import metrics
from aws.lambda_proxy.tenants.limits import TenantLimits
from scripts.terraform.hcl_structure import parse_file
from tests.terraform.tooling import TERRAFORM_DIR, evaluate


@pytest.fixture(scope="module")
def complete() -> dict[str, Any]:
    return evaluate(TERRAFORM_DIR / "examples" / "complete")


def test_latency_and_refusal_alarms_read_what_the_lambdas_emit(complete: dict[str, Any]) -> None:
    alarms = {alarm["alarm_name"]: alarm for alarm in complete["aws_cloudwatch_metric_alarm"]}
    expected = {
        "multitalk-prod-job-queue-wait-p90": (metrics.QUEUE_WAIT, "p90", 600),
        "multitalk-prod-job-end-to-end-p90": (metrics.END_TO_END, "p90", 3600),
        "multitalk-prod-tenant-quota-refusals": (metrics.REFUSED, None, 50),
    }
    failed_jobs = alarms["multitalk-prod-failed-jobs"]
    for name, (metric, percentile, threshold) in expected.items():
        alarm = alarms[name]
        assert (alarm["namespace"], alarm["dimensions"]) == (
            observability.NAMESPACE,
            {"service": observability.SERVICE},
        ), name
        assert (alarm["metric_name"], alarm.get("extended_statistic")) == (metric, percentile)
        assert alarm["threshold"] == threshold
        assert alarm["treat_missing_data"] == "notBreaching"  # no jobs is not slow jobs
        assert alarm["alarm_actions"] == alarm["ok_actions"] == failed_jobs["alarm_actions"]
    assert alarms["multitalk-prod-tenant-quota-refusals"]["statistic"] == "Sum"


def test_the_dashboard_charts_every_per_tenant_metric() -> None:
    (monitoring,) = [
        block
        for block in parse_file(TERRAFORM_DIR / "monitoring.tf").blocks
        if block.type == "locals"
    ]
    searched = monitoring.attributes["tenant_metric_search"].expression
    assert "{${module.core.metrics.namespace},service,tenant}" in searched
    dashboard = (
        (TERRAFORM_DIR / "monitoring.tf")
        .read_text()
        .split('resource "aws_cloudwatch_dashboard"')[1]
    )
    per_tenant = [
        metrics.ADMITTED,
        metrics.FINISHED,
        metrics.GPU_SECONDS,
        metrics.REFUSED,
        metrics.BATCH_WAITS,
    ]
    for metric in per_tenant:
        assert f'"{metric}"' in searched, metric
        assert f'"{metric}"' in dashboard, metric
    for metric in (metrics.QUEUE_WAIT, metrics.END_TO_END):
        assert f'"{metric}"' in dashboard, metric


def test_usage_is_routed_with_the_read_scopes(complete: dict[str, Any]) -> None:
    routes = {route["route_key"]: route for route in complete["aws_apigatewayv2_route"]}
    assert (
        routes["GET /usage"]["authorization_scopes"] == routes["GET /jobs"]["authorization_scopes"]
    )
    assert routes["GET /usage"]["authorization_type"] == "JWT"


def test_the_limits_reach_the_lambdas_as_settings(core_plan_outputs: dict[str, Any]) -> None:
    for function, environment in core_plan_outputs["lambda_environment"].items():
        settings = Settings.from_env(environment)
        assert settings.usage_table_name == "mt-eval-usage", function
        assert settings.tenant_limits_default == TenantLimits(max_active=10, per_minute=60)
        assert settings.gpu_slots == 10
        assert settings.quota_retry_after_s == 30
        # core.tfvars: a 300 s heartbeat, so an item waits at most 150 s at a time.
        assert settings.batch_wait_max_s == 150
        for tenant in ("acme", "globex"):
            assert settings.tenants_config[tenant].limits == settings.tenant_limits_default


def _actions_on(policies: dict[str, Any], function: str, table_arn: str) -> set[str]:
    document = policies[function]
    statements = document["Statement"] if isinstance(document, dict) else document
    return {
        action
        for statement in statements
        if table_arn in statement["Resource"]
        for action in statement["Action"]
    }


def test_each_function_touches_the_usage_table_only_as_its_code_does(
    core_plan_outputs: dict[str, Any],
) -> None:
    policies = {name: json.loads(doc) for name, doc in core_plan_outputs["policies"].items()}
    table = core_plan_outputs["arns"]["tables"]["usage"]
    admit = {
        "dynamodb:BatchGetItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    release = {"dynamodb:DeleteItem", "dynamodb:UpdateItem"}
    assert _actions_on(policies, "api", table) == admit
    assert _actions_on(policies, "batch_submit", table) == admit
    assert _actions_on(policies, "callbacks", table) == release
    assert _actions_on(policies, "reconciler", table) == release
    queue = core_plan_outputs["arns"]["queues"]["batch_submit"]
    requeue = _actions_on(policies, "batch_submit", queue)
    assert {"sqs:GetQueueUrl", "sqs:SendMessage"} <= requeue
    assert "sqs:SendMessage" not in _actions_on(policies, "api", queue)

"""Least privilege, checked on the IAM documents as tfparse evaluates them.

The policies are built in modules/core from names, so tfparse (no provider) evaluates them to
the JSON AWS would receive; a cross-check proves Terraform's own plan produces the same JSON.
The root module is checked for how it wires them and for what it must never contain: an IAM
user, an access key or any principal outside AWS services (the Modal side has no AWS identity).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scripts.terraform.hcl_structure import parse_file
from scripts.terraform.schema_lint import tf_files
from tests.terraform.tooling import TERRAFORM_DIR, evaluate

ACCOUNT = "123456789012"
REGION = "eu-west-1"
FUNCTIONS = ("api", "callbacks", "reconciler", "batch_submit")
DOCUMENTS = ("policies", "assume_role_policies", "data_bucket_policy", "kms_key_policy")

# Actions AWS offers no resource-level permission for: the only ones allowed on "*".
UNSCOPABLE = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets", "logs:CreateLogDelivery", "logs:GetLogDelivery",
    "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries",
    "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}  # fmt: skip

# Identities that would let something outside AWS services act in the account.
FORBIDDEN_TYPES = {
    "aws_iam_user", "aws_iam_access_key", "aws_iam_user_policy",
    "aws_iam_user_policy_attachment", "aws_iam_user_login_profile",
    "aws_iam_user_group_membership", "aws_iam_group", "aws_iam_group_membership",
    "aws_iam_service_specific_credential", "aws_iam_signing_certificate", "aws_iam_user_ssh_key",
    "aws_iam_openid_connect_provider", "aws_iam_saml_provider",
    "aws_rolesanywhere_trust_anchor", "aws_rolesanywhere_profile",
}  # fmt: skip

S3 = "arn:aws:s3:::"
TABLES = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mt-eval/"
MODAL_TOKEN = SECRETS + "modal-proxy-token-??????"
WEBHOOK_SECRETS = SECRETS + "tenant-webhook-secrets-??????"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:mt-eval-batch"

# What each function may reach, by service: exactly this, nothing more.
EXPECTED = {
    "api": {
        "dynamodb": {TABLES + "mt-eval-jobs", TABLES + "mt-eval-jobs/index/by-tenant",
                     TABLES + "mt-eval-idempotency", TABLES + "mt-eval-usage"},
        "secretsmanager": {MODAL_TOKEN, WEBHOOK_SECRETS},
        "states": {STATE_MACHINE, STATE_MACHINE + "/*"},
        "sqs": set(),
    },
    "callbacks": {
        "dynamodb": {TABLES + "mt-eval-jobs", TABLES + "mt-eval-idempotency",
                     TABLES + "mt-eval-usage"},
        "secretsmanager": {WEBHOOK_SECRETS},
        "states": {STATE_MACHINE, STATE_MACHINE + "/*"},
        "sqs": set(),
    },
    "reconciler": {
        "dynamodb": {TABLES + "mt-eval-jobs", TABLES + "mt-eval-jobs/index/active-by-deadline",
                     TABLES + "mt-eval-jobs/index/followups", TABLES + "mt-eval-usage"},
        "secretsmanager": {MODAL_TOKEN, WEBHOOK_SECRETS},
        "states": {STATE_MACHINE, STATE_MACHINE + "/*"},
        "sqs": {f"arn:aws:sqs:{REGION}:{ACCOUNT}:mt-eval-async-dlq"},
    },
    "batch_submit": {
        "dynamodb": {TABLES + "mt-eval-jobs", TABLES + "mt-eval-idempotency",
                     TABLES + "mt-eval-usage"},
        "secretsmanager": {MODAL_TOKEN},
        "states": {STATE_MACHINE, STATE_MACHINE + "/*"},
        "sqs": {f"arn:aws:sqs:{REGION}:{ACCOUNT}:mt-eval-batch-submit"},
    },
}  # fmt: skip

OUTPUT_OBJECTS = {S3 + "mt-eval-data/tenants/acme/outputs/*", S3 + "globex-media/out/*"}
TENANT_OBJECTS = OUTPUT_OBJECTS | {
    S3 + "mt-eval-data/tenants/acme/inputs/*",
    S3 + "globex-media/in/*",
    S3 + "mt-eval-data/shared/reference/*",
}


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.fixture(scope="module")
def policies(core_evaluated: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        role: json.loads(document)["Statement"]
        for role, document in core_evaluated["policies"].items()
    }


def _resources(statements: list[dict[str, Any]], service: str) -> set[str]:
    return {
        resource
        for s in statements
        if any(a.startswith(f"{service}:") for a in _listed(s["Action"]))
        for resource in _listed(s["Resource"])
    }


def test_tfparse_evaluates_the_documents_terraform_plans(
    core_evaluated: dict[str, Any], core_plan_outputs: dict[str, Any]
) -> None:
    for name in DOCUMENTS:
        evaluated, planned = core_evaluated[name], core_plan_outputs[name]
        if isinstance(planned, dict):
            assert {k: json.loads(v) for k, v in evaluated.items()} == {
                k: json.loads(v) for k, v in planned.items()
            }
        else:
            assert json.loads(evaluated) == json.loads(planned)


def test_no_wildcard_action_and_no_deny_gaps(policies: dict[str, list[dict[str, Any]]]) -> None:
    for role, statements in policies.items():
        for s in statements:
            assert s["Effect"] == "Allow", (role, s["Sid"])
            for action in _listed(s["Action"]):
                assert "*" not in action, (role, s["Sid"], action)


def test_no_wildcard_on_data_buckets(policies: dict[str, list[dict[str, Any]]]) -> None:
    for role, statements in policies.items():
        for s in statements:
            for resource in _listed(s["Resource"]):
                if resource.startswith(S3):
                    bucket, _, key = resource.removeprefix(S3).partition("/")
                    assert key != "*", f"{role}/{s['Sid']}: every object of {bucket}"
                    assert not key.startswith("*"), (role, s["Sid"], resource)


def test_resource_star_only_for_actions_without_resource_scoping(
    policies: dict[str, list[dict[str, Any]]],
) -> None:
    for role, statements in policies.items():
        for s in statements:
            if "*" in _listed(s["Resource"]):
                assert set(_listed(s["Action"])) <= UNSCOPABLE, (role, s["Sid"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_reaches_only_its_own_resources(
    function: str, policies: dict[str, list[dict[str, Any]]]
) -> None:
    statements = policies[function]
    name = f"mt-eval-{function.replace('_', '-')}"
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{name}:*"
    assert _resources(statements, "logs") == {log_group}
    for service, expected in EXPECTED[function].items():
        assert _resources(statements, service) == expected, service
    assert _resources(statements, "lambda") == set()
    assert _resources(statements, "iam") == set()
    assert _resources(statements, "sts") == set()
    kms = _resources(statements, "kms")
    assert kms == {f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
    for s in statements:
        if any(a.startswith("kms:") for a in _listed(s["Action"])):
            assert "kms:ViaService" in s["Condition"]["StringEquals"], (function, s["Sid"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_s3_access_stays_inside_tenant_prefixes(
    function: str, policies: dict[str, list[dict[str, Any]]]
) -> None:
    objects = {r for r in _resources(policies[function], "s3") if "/" in r.removeprefix(S3)}
    allowed = TENANT_OBJECTS | (
        {S3 + "mt-eval-data/batch-results/*"} if function == "batch_submit" else set()
    )
    assert objects <= allowed
    if function == "reconciler":
        # Settling checks and signs outputs; it never reads inputs or writes anything.
        assert objects == OUTPUT_OBJECTS
        actions = {a for s in policies[function] for a in _listed(s["Action"])}
        assert {a for a in actions if a.startswith("s3:")} == {"s3:GetObject", "s3:ListBucket"}
    for s in policies[function]:
        if "s3:ListBucket" in _listed(s["Action"]):
            prefixes = s["Condition"]["StringLike"]["s3:prefix"]
            assert prefixes
            assert all(p.endswith("/*") and len(p) > 2 for p in _listed(prefixes))


def test_trust_policies_name_aws_services_only(core_evaluated: dict[str, Any]) -> None:
    services = {}
    for role, document in core_evaluated["assume_role_policies"].items():
        (statement,) = json.loads(document)["Statement"]
        assert set(statement["Principal"]) == {"Service"}, role
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
        services[role] = statement["Principal"]["Service"]
    assert services == {
        **dict.fromkeys(FUNCTIONS, "lambda.amazonaws.com"),
        "state_machine": "states.amazonaws.com",
        "scheduler": "scheduler.amazonaws.com",
    }


def test_lambda_environment_carries_no_credentials(core_evaluated: dict[str, Any]) -> None:
    for env in core_evaluated["lambda_environment"].values():
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
        for value in env.values():
            assert not value.startswith(("AKIA", "ASIA")), value


def test_no_iam_user_access_key_or_external_identity_anywhere() -> None:
    declared = {
        block.labels[0]
        for path in tf_files([TERRAFORM_DIR])
        for block in parse_file(path).blocks
        if block.type in ("resource", "data")
    }
    assert not declared & FORBIDDEN_TYPES
    assert {t for t in declared if t.startswith("aws_iam_")} == {
        "aws_iam_role",
        "aws_iam_role_policy",
    }
    # The evaluated complete example (module included) holds no such identity either.
    evaluated = evaluate(TERRAFORM_DIR / "examples" / "complete")
    assert "aws_iam_role" in evaluated
    assert not set(evaluated) & FORBIDDEN_TYPES


def test_root_module_attaches_the_evaluated_documents() -> None:
    wiring = {}
    for path in tf_files([TERRAFORM_DIR]):
        if "examples" in path.parts or "modules" in path.parts:
            continue
        for block in parse_file(path).blocks:
            if block.type == "resource":
                for name in ("policy", "assume_role_policy"):
                    if name in block.attributes:
                        wiring[(*block.labels, name)] = block.attributes[name].expression
    assert wiring == {
        (
            "aws_iam_role",
            "lambda",
            "assume_role_policy",
        ): "module.core.assume_role_policies[each.key]",
        ("aws_iam_role_policy", "lambda", "policy"): "module.core.policies[each.key]",
        (
            "aws_iam_role",
            "state_machine",
            "assume_role_policy",
        ): "module.core.assume_role_policies.state_machine",
        ("aws_iam_role_policy", "state_machine", "policy"): "module.core.policies.state_machine",
        (
            "aws_iam_role",
            "scheduler",
            "assume_role_policy",
        ): "module.core.assume_role_policies.scheduler",
        ("aws_iam_role_policy", "scheduler", "policy"): "module.core.policies.scheduler",
        ("aws_kms_key", "this", "policy"): "module.core.kms_key_policy",
        ("aws_s3_bucket_policy", "data", "policy"): "module.core.data_bucket_policy",
    }

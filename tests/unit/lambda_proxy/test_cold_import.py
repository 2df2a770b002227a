"""The API function's cold import loads only what every request needs.

Lambda runs a handler module's imports once per container, before the first event (the cold
start, ``python -m scripts.bench.proxy_latency``). What only some routes need is imported when
one of them first runs. These tests hold that line structurally, by the modules a fresh
interpreter has loaded, never by timing: each deferred module below is named with what loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEALTH_EVENT = ROOT / "tests" / "events" / "apigw_v2_health.json"

DEFERRED = {
    "boto3": "the first AWS client (Services.session)",
    "botocore.session": "the first AWS client",
    "s3transfer": "boto3",
    "jwt": "the first token verification (Services.verifier)",
    "cryptography": "pyjwt's RSA/EC keys",
    "httpx": "the JWKS fetch and the Modal client",
    "httpcore": "the webhook sender",
    "standardwebhooks": "the webhook sender",
    "aws_xray_sdk": "the first traced invocation (observability.DeferredTracer)",
    "aws_lambda_powertools.utilities.idempotency": "the first idempotent submit or callback",
    "aws_lambda_powertools.event_handler.openapi.models": "GET /openapi.json",
    "aws.lambda_proxy.jobs.submit": "POST /generate-video",
    "aws.lambda_proxy.jobs.cancel": "DELETE /jobs/{id}",
    "aws.lambda_proxy.webhooks.sender": "a settled job's caller webhook",
    "aws.lambda_proxy.modal.client": "dispatch and cancel",
}

# Imports the handler module, then (with "call") answers GET /health, the public route that
# needs no AWS, no token and no submit path; prints which deferred modules were loaded when.
PROBE = """
import json, sys
deferred = json.loads(sys.argv[1])
loaded = lambda: sorted(m for m in deferred if m in sys.modules)
from aws.lambda_proxy.handlers.api import handler
found = {"import": loaded()}
if sys.argv[2] == "call":
    class Context:
        function_name = "api"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
        aws_request_id = "cold-import-probe"
        def get_remaining_time_in_millis(self):
            return 30000
    event = json.loads(open(sys.argv[3]).read())
    found["status"] = handler(event, Context())["statusCode"]
    found["call"] = loaded()
    found["xray"] = "aws_xray_sdk.core" in sys.modules
print(json.dumps(found))
"""


def _probe(call: bool, **environment: str | None) -> dict[str, object]:
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"}
    for name, value in environment.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps(sorted(DEFERRED)),
            "call" if call else "import",
            str(HEALTH_EVENT),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cold_import_loads_none_of_the_deferred_modules() -> None:
    assert _probe(call=False)["import"] == []


@pytest.mark.parametrize("off", ["POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT"])
def test_a_public_route_needs_none_of_them_where_tracing_is_off(off: str) -> None:
    # Off either way Powertools' Tracer would be: explicitly, or outside Lambda.
    found = _probe(
        call=True,
        LAMBDA_TASK_ROOT=None if off == "LAMBDA_TASK_ROOT" else str(ROOT),
        POWERTOOLS_TRACE_DISABLED="true" if off == "POWERTOOLS_TRACE_DISABLED" else None,
    )
    assert (found["status"], found["call"], found["xray"]) == (200, [], False)


def test_on_lambda_the_first_invocation_is_still_traced() -> None:
    # LAMBDA_TASK_ROOT and an (unsampled) trace header, as Lambda sets them with active tracing:
    # the X-Ray SDK is not imported with the module but is there once the first event ran.
    found = _probe(
        call=True,
        LAMBDA_TASK_ROOT=str(ROOT),
        POWERTOOLS_TRACE_DISABLED=None,
        _X_AMZN_TRACE_ID=(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        ),
    )
    assert found["import"] == []
    assert (found["status"], found["xray"]) == (200, True)

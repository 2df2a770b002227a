"""The proxy Lambda: cold import and first call, then warm latency per route (p50/p99); and the
cold import of every function's handler module.

``python -m scripts.bench.proxy_latency`` starts a private local stack and the product, calls the
real handler in process with API Gateway v2 events (no HTTP in between, as Lambda calls it), and
measures the cold start in fresh interpreters. Every route does real work against the emulators:
JWT verification, DynamoDB reads, and for submissions HeadObject, pre-signing, a conditional write
and the internal API call (each submitted job is cancelled straight after).

The cold starts run as Lambda runs a function with active tracing (``LAMBDA_TASK_ROOT`` and an
unsampled ``_X_AMZN_TRACE_ID`` set, so Powertools' Tracer is on), in two scenarios: the import
then ``GET /health``, and the import then an authenticated ``GET /jobs/{id}`` (the JWKS fetch,
pyjwt, boto3 and the first DynamoDB call). Each fresh interpreter imports nothing but the
handler before its first event, so the first call pays for all that the route needs. The warm
figures run in this process with tracing off, as the local stack runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from scripts import samples
from scripts.bench.results import percentile, save
from scripts.local_stack import LocalStack, product
from scripts.local_stack.gateway import LambdaContext

COLD_RUNS = 10
# What Lambda sets for a function with active tracing (the trace header unsampled: no segment
# is sent anywhere); without them Powertools' Tracer stays off.
LAMBDA_TRACING_ENV = {
    "LAMBDA_TASK_ROOT": str(Path(__file__).resolve().parents[2]),
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    ),
}
HANDLER_MODULES = {
    "api": "aws.lambda_proxy.handlers.api",
    "callbacks": "aws.lambda_proxy.handlers.callbacks",
    "reconciler": "aws.lambda_proxy.handlers.reconciler",
    "batch_submit": "aws.step_functions.handlers.batch_submit",
}
IMPORT_SNIPPET = """
import importlib, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
print(time.perf_counter() - started)
"""
WARM_CALLS = {"GET /health": 100, "GET /jobs/{id}": 100, "POST /generate-video": 25}
# Imports the handler, then answers the one event on stdin; imports nothing else first (the
# context is the few attributes Powertools reads), so the first call pays for its route.
COLD_SNIPPET = """
import json, sys, time
started, started_cpu = time.perf_counter(), time.process_time()
from aws.lambda_proxy.handlers.api import handler
imported, imported_cpu = time.perf_counter(), time.process_time()
class Context:
    function_name = "api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    aws_request_id = "cold-start"
    def get_remaining_time_in_millis(self):
        return 30000
status = handler(json.loads(sys.stdin.read()), Context())["statusCode"]
print(json.dumps({
    "import_s": imported - started,
    "import_cpu_s": imported_cpu - started_cpu,
    "first_call_s": time.perf_counter() - imported,
    "status": status,
}))
"""


def event(method: str, path: str, token: str | None = None, body: Any = None) -> dict[str, Any]:
    """A payload-format-2.0 event as the HTTP API's ``ANY /{proxy+}`` route delivers it."""
    headers = {"content-type": "application/json", "user-agent": "bench"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if method == "POST":
        headers["idempotency-key"] = str(uuid.uuid4())
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def _lambda_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` as Lambda sets it for a function with active tracing."""
    traced = {name: value for name, value in env.items() if name != "POWERTOOLS_TRACE_DISABLED"}
    return {**traced, **LAMBDA_TRACING_ENV}


def _cold_starts(env: dict[str, str], events: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per scenario (a first event), the medians of ``COLD_RUNS`` fresh interpreters; the runs
    of the scenarios alternate, so a burst of load on this shared machine hits them alike."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in events}
    for _ in range(COLD_RUNS):
        for name, first_event in events.items():
            completed = subprocess.run(
                [sys.executable, "-c", COLD_SNIPPET],
                input=json.dumps(first_event),
                env=_lambda_env(env),
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[2],
            )
            run = json.loads(completed.stdout.strip().splitlines()[-1])
            if run["status"] != 200:
                raise RuntimeError(f"cold {name}: {run['status']}: {completed.stdout[-2000:]}")
            runs[name].append(run)
    every = [run for scenario in runs.values() for run in scenario]
    return {
        "import_s_median": round(statistics.median(r["import_s"] for r in every), 3),
        # The least interfered-with run: on a shared machine, other processes only add time.
        "import_s_min": round(min(r["import_s"] for r in every), 3),
        "import_cpu_s_median": round(statistics.median(r["import_cpu_s"] for r in every), 3),
        "first_call_s_median": {
            name: round(statistics.median(r["first_call_s"] for r in scenario), 3)
            for name, scenario in runs.items()
        },
        "runs": len(every),
        "tracing": "on, as on Lambda (LAMBDA_TASK_ROOT, an unsampled _X_AMZN_TRACE_ID)",
    }


def _cold_imports(env: dict[str, str]) -> dict[str, float]:
    """Median seconds to import each function's handler module in a fresh interpreter (what
    a Lambda cold start pays before the first event)."""
    medians = {}
    for function, module in HANDLER_MODULES.items():
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", IMPORT_SNIPPET, module],
                    env=_lambda_env(env),
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=Path(__file__).resolve().parents[2],
                ).stdout.split()[-1]
            )
            for _ in range(COLD_RUNS)
        ]
        medians[function] = round(statistics.median(runs), 3)
    return medians


def _timed(call: Any, count: int) -> dict[str, float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(durations, 0.50), 2),
        "p99_ms": round(percentile(durations, 0.99), 2),
        "calls": count,
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as state:
        stack = LocalStack(Path(state))
        info = stack.up()
        try:
            running = product.up(info)
            env = product.lambda_environment(info, running.api_url, running.internal_api_url)
            env["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # keep the figures readable
            os.environ.update(env)
            from aws.lambda_proxy.handlers.api import handler

            token = info.mint_token("acme", ["videos:read", "videos:write"])
            bucket = info.buckets["data"]
            media = Path(state) / "media"
            s3 = info.s3_client()
            audio_key, image_key = (
                "tenants/acme/inputs/bench/a.wav",
                "tenants/acme/inputs/bench/p.png",
            )
            s3.upload_file(
                str(samples.write_speech_wav(media / "a.wav", 2.0)), bucket, audio_key,
                ExtraArgs={"ContentType": "audio/wav"},
            )  # fmt: skip
            s3.upload_file(
                str(samples.draw_portrait(media / "p.png", (256, 256))), bucket, image_key,
                ExtraArgs={"ContentType": "image/png"},
            )  # fmt: skip
            request = {
                "input": {
                    "audio_s3_url": f"s3://{bucket}/{audio_key}",
                    "reference_image_s3_url": f"s3://{bucket}/{image_key}",
                },
                "output": {"s3_bucket": bucket, "s3_prefix": "tenants/acme/outputs/bench/"},
                "options": {"model": "tiny"},
            }

            def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
                answer = handler(event(method, path, token, body), LambdaContext("api"))
                if answer["statusCode"] >= 400:
                    raise RuntimeError(f"{method} {path}: {answer['statusCode']} {answer['body']}")
                return json.loads(answer["body"])

            submitted: list[str] = []
            job_id = call("POST", "/generate-video", request)["job_id"]
            submitted.append(job_id)
            cold = _cold_starts(
                dict(os.environ),
                {
                    "GET /health": event("GET", "/health"),
                    "GET /jobs/{id}": event("GET", f"/jobs/{job_id}", token),
                },
            )
            imports = _cold_imports(dict(os.environ))
            warm = {
                "GET /health": _timed(lambda: call("GET", "/health"), WARM_CALLS["GET /health"]),
                "GET /jobs/{id}": _timed(
                    lambda: call("GET", f"/jobs/{job_id}"), WARM_CALLS["GET /jobs/{id}"]
                ),
                "POST /generate-video": _timed(
                    lambda: submitted.append(call("POST", "/generate-video", request)["job_id"]),
                    WARM_CALLS["POST /generate-video"],
                ),
            }
            for submitted_id in submitted:  # cancelled, unless the tiny render already ended
                ended = handler(
                    event("DELETE", f"/jobs/{submitted_id}", token), LambdaContext("api")
                )
                if ended["statusCode"] not in (200, 409):
                    raise RuntimeError(f"DELETE /jobs/{submitted_id}: {ended['body']}")
        finally:
            stack.down()
    save(
        "proxy_latency",
        {"cold_start": cold, "cold_import_s_median": imports, "warm": warm},
        "python -m scripts.bench.proxy_latency",
    )


if __name__ == "__main__":
    main()

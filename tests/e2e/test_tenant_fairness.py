"""Two tenants on the whole local stack over HTTP, with real tiny renders on its two workers:
acme floods ``POST /generate-video`` while globex submits one job. acme is held to its active
limit (429 with Retry-After, nothing written), globex's job is admitted at once and waits
behind at most acme's active jobs (and one more that a worker freed at the same moment may
take), not behind the flood."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scripts.local_stack import StackInfo, product
from tests.e2e.test_jobs import wait_final

pytestmark = pytest.mark.stack

SCOPES = ["videos:read", "videos:write"]
ACME_ACTIVE = 2
"""acme's limit, as many as the local workers: at most that many jobs ahead of globex's."""


def _gateway(stack: StackInfo, running: product.ProductInfo) -> str:
    """A gateway whose Lambdas count against a usage table of this test's own."""
    table = f"usage-{uuid.uuid4().hex[:8]}"
    stack.client("dynamodb").create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    tenants = {name: tenant.model_dump() for name, tenant in stack.tenants.items()}
    tenants["acme"]["limits"] = {"max_active": ACME_ACTIVE, "per_minute": 1000}
    return product.start_gateway(
        stack,
        running,
        f"fairness-gateway-{table}",
        {"USAGE_TABLE_NAME": table, "TENANTS_CONFIG": json.dumps(tenants), "GPU_SLOTS": "2"},
    )


def _body(stack: StackInfo, prefix: str, audio: str, image: str) -> dict[str, Any]:
    return {
        "input": {"audio_s3_url": audio, "reference_image_s3_url": image},
        "output": {"s3_bucket": stack.buckets["data"], "s3_prefix": prefix},
        "options": {"model": "tiny", "seed": 1, "video_length": 1},
    }


def test_a_flooding_tenant_does_not_hold_back_another_tenants_job(
    stack: StackInfo,
    running_product: product.ProductInfo,
    upload: Callable[..., str],
) -> None:
    gateway = _gateway(stack, running_product)
    clients = {
        tenant: httpx.Client(
            base_url=gateway,
            headers={"Authorization": f"Bearer {stack.mint_token(tenant, SCOPES)}"},
            timeout=30,
        )
        for tenant in ("acme", "globex")
    }
    run = uuid.uuid4().hex[:8]
    prefixes = {tenant: f"tenants/{tenant}/outputs/fair-{run}/" for tenant in clients}
    bodies = {
        tenant: _body(
            stack, prefixes[tenant], upload("short.wav", tenant), upload("portrait.png", tenant)
        )
        for tenant in clients
    }
    acme_jobs: list[str] = []
    refusals: list[httpx.Response] = []
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            answer = clients["acme"].post("/generate-video", json=bodies["acme"])
            if answer.status_code == 202:
                acme_jobs.append(answer.json()["job_id"])
            else:
                refusals.append(answer)
            stop.wait(0.2)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        for _ in range(600):  # until acme is at its limit
            if len(refusals) >= 3:
                break
            stop.wait(0.1)
        else:
            raise AssertionError(f"acme was never refused; {len(acme_jobs)} jobs accepted")
        accepted = clients["globex"].post("/generate-video", json=bodies["globex"])
        assert accepted.status_code == 202, accepted.text
        ours = wait_final(clients["globex"], accepted.json()["job_id"])
        stop.wait(1.0)
    finally:
        stop.set()
        flooder.join(timeout=30)

    assert ours["status"] == "succeeded", ours
    assert {(r.status_code, r.json()["code"], r.json()["limit"]) for r in refusals} == {
        (429, "tenant_quota_exceeded", "max_active")
    }
    assert all(int(r.headers["retry-after"]) >= 1 for r in refusals)
    acme = [wait_final(clients["acme"], job_id) for job_id in acme_jobs]
    assert all(job["status"] == "succeeded" for job in acme)
    assert any(job["created_at"] > ours["created_at"] for job in acme), "acme kept flooding"
    ahead = [job for job in acme if job["started_at"] < ours["started_at"]]
    assert len(ahead) <= ACME_ACTIVE + 1, (ours, acme)
    # Nothing written for a refusal: acme has exactly the jobs it was told were accepted.
    listed = clients["acme"].get("/jobs", params={"limit": 100}).json()["jobs"]
    output = f"s3://{stack.buckets['data']}/{prefixes['acme']}"
    assert {job["job_id"] for job in listed if job["output_url"].startswith(output)} == set(
        acme_jobs
    )
    usage = clients["acme"].get("/usage").json()
    assert (usage["active"], usage["jobs_finished_today"]) == (0, len(acme_jobs))
    for client in clients.values():
        client.close()

"""Serving overhead outside the model for a 5-second 480p job (``tiny`` preset).

``python -m scripts.bench.serving_overhead`` runs jobs through the whole local product and splits
each job's wall time (submission accepted -> ``succeeded`` seen by polling) into the model's own
stages as the worker reports them, the model load (per job here, per container on Modal), and
everything else: queueing, process start, transfers through pre-signed URLs, callbacks, polling.
That last part is what a deployment adds on top of the GPU time (Modal cold start excluded).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from scripts import samples
from scripts.bench.results import save
from scripts.local_stack import LocalStack, product

RUNS = 3
MODEL_STAGES = ("audio", "conditioning", "denoise", "decode", "encode")


def main() -> None:
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as state:
        stack = LocalStack(Path(state))
        info = stack.up()
        try:
            running = product.up(info)
            bucket, s3 = info.buckets["data"], info.s3_client()
            media = Path(state) / "media"
            audio_key, image_key = (
                "tenants/acme/inputs/bench/5s.wav",
                "tenants/acme/inputs/bench/p.png",
            )
            s3.upload_file(
                str(samples.write_speech_wav(media / "5s.wav", 5.0)), bucket, audio_key,
                ExtraArgs={"ContentType": "audio/wav"},
            )  # fmt: skip
            s3.upload_file(
                str(samples.draw_portrait(media / "p.png")), bucket, image_key,
                ExtraArgs={"ContentType": "image/png"},
            )  # fmt: skip
            token = info.mint_token("acme", ["videos:read", "videos:write"])
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=running.api_url, headers=headers, timeout=30) as api:
                for _ in range(RUNS):
                    runs.append(_one_job(api, bucket, audio_key, image_key))
        finally:
            stack.down()
    overhead = [run["overhead_s"] for run in runs]
    total = [run["total_s"] for run in runs]
    save(
        "serving_overhead",
        {
            "job": "5 s audio, 480p, tiny preset",
            "runs": runs,
            "median_total_s": round(statistics.median(total), 2),
            "median_overhead_s": round(statistics.median(overhead), 2),
            "median_overhead_ratio": round(
                statistics.median(o / t for o, t in zip(overhead, total, strict=True)), 3
            ),
        },
        "python -m scripts.bench.serving_overhead",
    )


def _one_job(api: httpx.Client, bucket: str, audio_key: str, image_key: str) -> dict[str, float]:
    body = {
        "input": {
            "audio_s3_url": f"s3://{bucket}/{audio_key}",
            "reference_image_s3_url": f"s3://{bucket}/{image_key}",
        },
        "output": {"s3_bucket": bucket, "s3_prefix": "tenants/acme/outputs/bench/"},
        "options": {"model": "tiny", "resolution": "480p", "video_length": 5},
    }
    started = time.monotonic()
    accepted = api.post(
        "/generate-video", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    accepted.raise_for_status()
    job_id = accepted.json()["job_id"]
    while True:
        job = api.get(f"/jobs/{job_id}").raise_for_status().json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    total = time.monotonic() - started
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
    timings = job["result"]["timings_s"]
    model = sum(timings.get(stage, 0.0) for stage in MODEL_STAGES)
    return {
        "total_s": round(total, 3),
        "model_s": round(model, 3),
        "model_load_s": round(timings.get("model_load_s", 0.0), 3),
        "transfers_s": round(timings.get("download_s", 0.0) + timings.get("upload_s", 0.0), 3),
        # Model load is per process here (a local worker process per job); on Modal it happens
        # once per container in @modal.enter, so it is reported apart from the overhead.
        "overhead_s": round(total - model - timings.get("model_load_s", 0.0), 3),
    }


if __name__ == "__main__":
    main()

"""``make demo``: the main job on the local stack, start to finish.

Brings the local AWS stack and the product up, makes the bundled sample (synthetic speech and a
drawn portrait), uploads it to the tenant's input prefix in the strict local S3, mints a development
JWT, and asks for a video through the whole product: local API gateway -> proxy Lambda -> internal
API -> worker (``tiny`` preset) -> pre-signed PUT -> signed callbacks. It follows the job's progress
and ends with the MP4's S3 URL and a local copy.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from scripts import samples
from scripts.local_stack import LocalStack, StackStartError, product

TENANT = "acme"
OUT_DIR = Path(__file__).resolve().parents[1] / "out" / "demo"
FINAL_STATES = {"succeeded", "failed", "cancelled"}
JOB_TIMEOUT_S = 300

REQUIRED_PARTS = {
    "aws.lambda_proxy.handlers.api:handler": "the public API Lambda (issue: AWS side)",
    "aws.lambda_proxy.handlers.callbacks:handler": "the callback Lambda (issue: AWS side)",
    "modal_service.api:create_app_from_env": "the internal API (issue: Modal service)",
    "modal_service.worker.__main__:main": "the worker (issue: Modal service)",
    "modal_service.multitalk:load_renderer": "the MultiTalk model (issue: MultiTalk model)",
}


def missing_parts() -> list[str]:
    """The parts of the product the demo needs that this checkout does not have."""
    missing = []
    for target, what in REQUIRED_PARTS.items():
        module, attribute = target.split(":")
        try:
            found = hasattr(importlib.import_module(module), attribute)
        except ImportError:
            found = False
        if not found:
            missing.append(f"{module}.{attribute}: {what}")
    return missing


class Stopwatch:
    """Wall time per demo stage, printed at the end and saved for the benchmark."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, stage: str) -> float:
        now = time.monotonic()
        self.stages[stage] = round(now - self._last, 3)
        self._last = now
        return self.stages[stage]


def follow(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Poll the job, printing each new stage and percent, until it is final."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").raise_for_status().json()
        progress = job.get("progress") or {}
        stage, percent = progress.get("stage", ""), progress.get("percent", 0)
        line = f"  {job['status']:<10} {stage:<14} {percent:5.1f}%"
        if line != last:
            print(line, flush=True)
            last = line
        if job["status"] in FINAL_STATES:
            return job
        time.sleep(0.25)
    raise TimeoutError(f"job {job_id} not finished after {JOB_TIMEOUT_S} s")


def run(out_dir: Path = OUT_DIR) -> dict[str, Any]:
    """The demo itself; returns the final job and the stage timings."""
    watch = Stopwatch()
    info = LocalStack().up()
    print(f"local AWS stack up ({watch.lap('stack_up'):.1f} s, state in {info.state_dir})")
    running = product.up(info)
    print(f"product up: API {running.api_url} ({watch.lap('product_up'):.1f} s)")

    audio = samples.write_speech_wav(out_dir / "speech.wav", duration_s=3.0)
    image = samples.draw_portrait(out_dir / "portrait.png")
    video = samples.write_talking_video(out_dir / "talk.mp4")  # for the README's dubbing example
    s3 = info.s3_client()
    bucket = info.buckets["data"]
    inputs = f"tenants/{TENANT}/inputs/demo/"
    s3.upload_file(str(audio), bucket, inputs + audio.name, ExtraArgs={"ContentType": "audio/wav"})
    s3.upload_file(str(image), bucket, inputs + image.name, ExtraArgs={"ContentType": "image/png"})
    s3.upload_file(str(video), bucket, inputs + video.name, ExtraArgs={"ContentType": "video/mp4"})
    print(f"sample uploaded to s3://{bucket}/{inputs} ({watch.lap('upload'):.1f} s)")

    token = info.mint_token(TENANT, ["videos:read", "videos:write"])
    request = {
        "input": {
            "audio_s3_url": f"s3://{bucket}/{inputs}{audio.name}",
            "reference_image_s3_url": f"s3://{bucket}/{inputs}{image.name}",
            "prompt": "A person talking to the camera in a bright studio.",
        },
        "output": {"s3_bucket": bucket, "s3_prefix": f"tenants/{TENANT}/outputs/demo/"},
        "options": {"resolution": "480p", "video_length": 5, "model": "tiny", "seed": 42},
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    with httpx.Client(base_url=running.api_url, headers=headers, timeout=30) as client:
        accepted = client.post("/generate-video", json=request)
        if accepted.status_code != 202:
            raise RuntimeError(f"submission refused: {accepted.status_code} {accepted.text}")
        job_id = accepted.json()["job_id"]
        print(f"job {job_id} accepted ({watch.lap('submit'):.2f} s); following it:")
        job = follow(client, job_id)
    watch.lap("render")
    if job["status"] != "succeeded":
        raise RuntimeError(f"job ended {job['status']}: {json.dumps(job.get('error'))}")

    output_url = job["output_url"]
    key = output_url.removeprefix(f"s3://{bucket}/")
    local_copy = out_dir / f"{job_id}.mp4"
    s3.download_file(bucket, key, str(local_copy))
    watch.lap("download")
    return {"job": job, "local_copy": str(local_copy), "stages_s": watch.stages}


def main() -> int:
    started = time.monotonic()
    missing = missing_parts()
    if missing:
        print("The demo cannot run yet: these parts of the product are not built:")
        for part in missing:
            print(f"  - {part}")
        return 2
    try:
        result = run()
    except StackStartError as error:
        print(error, file=sys.stderr)
        return 1
    except (RuntimeError, TimeoutError, httpx.HTTPError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        print("logs: .local/stack/logs/ (gateway.log, internal-api.log, aws.log, s3.log)")
        return 1
    job = result["job"]
    total = time.monotonic() - started
    (OUT_DIR / "timings.json").write_text(json.dumps(result["stages_s"] | {"total": total}))
    print(f"\nDone in {total:.1f} s. The video:")
    print(f"  S3:    {job['output_url']}")
    print(f"  local: {result['local_copy']}")
    print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["stages_s"].items()))
    print(
        "\nThis used the `tiny` preset: the real MultiTalk architecture with small random weights,"
        "\nso the picture is noise (the audio is the sample's). The real model needs the 14B"
        "\nweights and a GPU: deploy modal_service/app.py to Modal (see README, 'Deploying')."
    )
    print("The local stack keeps running; `make stack-down` stops it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

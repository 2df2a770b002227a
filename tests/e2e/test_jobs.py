"""End to end over real HTTP: a JWT in; an MP4 with its audio out, in the tenant's bucket."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest

from scripts.local_stack import StackInfo

pytestmark = pytest.mark.stack
FINAL = {"succeeded", "failed", "cancelled"}


def wait_final(api: httpx.Client, job_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] in FINAL:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s: {job}")


def wait_for(api: httpx.Client, job_id: str, predicate, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the expected state: {job}")


def submit(api: httpx.Client, stack: StackInfo, input_: dict[str, Any], **options: Any) -> str:
    body = {
        "input": input_,
        "output": {"s3_bucket": stack.buckets["data"], "s3_prefix": "tenants/acme/outputs/e2e/"},
        "options": {"model": "tiny", "seed": 1, **options},
    }
    response = api.post("/generate-video", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["output_url"].startswith(f"s3://{stack.buckets['data']}/tenants/acme/outputs/")
    return accepted["job_id"]


def probe(path: Path) -> tuple[int, float, str]:
    """(frames, seconds, ffmpeg's stream description) of an MP4."""
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    streams = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    return frames, seconds, streams


def fetch_output(stack: StackInfo, job: dict[str, Any], tmp_path: Path) -> Path:
    bucket = stack.buckets["data"]
    key = job["output_url"].removeprefix(f"s3://{bucket}/")
    head = stack.s3_client().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "video/mp4"
    local = tmp_path / "out.mp4"
    stack.s3_client().download_file(bucket, key, str(local))
    return local


def test_single_speaker(api: httpx.Client, stack: StackInfo, upload, tmp_path: Path) -> None:
    job_id = submit(
        api,
        stack,
        {"audio_s3_url": upload("short.wav"), "reference_image_s3_url": upload("portrait.png")},
    )
    job = wait_final(api, job_id)
    assert job["status"] == "succeeded", job
    frames, seconds, streams = probe(fetch_output(stack, job, tmp_path))
    assert 1.6 <= seconds <= 2.4
    assert frames >= 40
    assert "Video: h264" in streams
    assert "Audio: aac" in streams


def test_two_speakers(api: httpx.Client, stack: StackInfo, upload, tmp_path: Path) -> None:
    job_id = submit(
        api,
        stack,
        {
            "audio_s3_urls": [upload("short.wav"), upload("second.wav")],
            "reference_image_s3_url": upload("two.png"),
            "audio_type": "add",
        },
    )
    job = wait_final(api, job_id)
    assert job["status"] == "succeeded", job
    _, seconds, streams = probe(fetch_output(stack, job, tmp_path))
    assert seconds >= 3.6  # "add": the speakers take turns, so the video spans both tracks
    assert "Audio: aac" in streams


def test_longer_than_one_clip(api: httpx.Client, stack: StackInfo, upload, tmp_path: Path) -> None:
    job_id = submit(
        api,
        stack,
        {"audio_s3_url": upload("long.wav"), "reference_image_s3_url": upload("portrait.png")},
        video_length=10,
    )
    job = wait_final(api, job_id)
    assert job["status"] == "succeeded", job
    _, seconds, _ = probe(fetch_output(stack, job, tmp_path))
    assert 6.5 <= seconds <= 7.5


def test_infinitetalk_from_an_image_spans_the_whole_audio(
    api: httpx.Client, stack: StackInfo, upload, tmp_path: Path
) -> None:
    job_id = submit(
        api,
        stack,
        {"audio_s3_url": upload("long.wav"), "reference_image_s3_url": upload("portrait.png")},
        model="tiny-infinitetalk",
        video_length=10,
    )
    job = wait_final(api, job_id)
    assert job["status"] == "succeeded", job
    assert job["result"]["model"] == "tiny-infinitetalk"
    frames, seconds, streams = probe(fetch_output(stack, job, tmp_path))
    assert 6.5 <= seconds <= 7.5  # 7 s of audio: several clips, all of it rendered
    assert frames == job["result"]["frames"] == 175
    assert "Video: h264" in streams


def test_dubbing_a_video_gives_it_the_new_audios_length_and_sound(
    api: httpx.Client, stack: StackInfo, upload, tmp_path: Path
) -> None:
    # A 1.5 s source at 30 fps with its own tone, dubbed with 7 s of speech: it loops.
    job_id = submit(
        api,
        stack,
        {"audio_s3_url": upload("long.wav"), "video_s3_url": upload("talk.mp4")},
        model="tiny-infinitetalk",
        video_length=10,
    )
    job = wait_final(api, job_id)
    assert job["status"] == "succeeded", job
    frames, seconds, streams = probe(fetch_output(stack, job, tmp_path))
    assert frames == 175  # 25 fps, as long as the speech
    assert 6.5 <= seconds <= 7.5
    assert "Audio: aac" in streams
    assert job["result"]["audio_durations_s"] == [7.0]


@pytest.mark.fault("cancel mid-render through the API")
def test_cancel_mid_run(api: httpx.Client, stack: StackInfo, upload) -> None:
    job_id = submit(
        api,
        stack,
        {"audio_s3_url": upload("long.wav"), "reference_image_s3_url": upload("portrait.png")},
        video_length=10,
    )
    wait_for(api, job_id, lambda job: job["status"] == "processing")
    response = api.delete(f"/jobs/{job_id}")
    assert response.status_code in (200, 202), response.text
    job = wait_final(api, job_id)
    assert job["status"] == "cancelled"
    bucket = stack.buckets["data"]
    key = job["output_url"].removeprefix(f"s3://{bucket}/")
    listed = stack.s3_client().list_objects_v2(Bucket=bucket, Prefix=key)
    assert listed.get("KeyCount", 0) == 0, "a cancelled job must not leave an output behind"

"""A worker killed mid-video, then the same job run again, as Modal retries a crashed container's
input: the retry resumes after the last clip the killed worker finished and uploads the same MP4
an uninterrupted job does. Real worker subprocesses, the strict local S3, a real receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from modal_service.config import WorkerSettings
from modal_service.contracts import CreateJobRequest
from modal_service.multitalk.checkpoint import STATE_FILE
from modal_service.runner.local import worker_environment
from modal_service.worker import RendererCache, run_job
from modal_service.worker.outcome import JobOutcome
from scripts.samples import write_speech_wav
from tests.integration.modal_service.support import CallbackReceiver, S3Objects, job_request

pytestmark = pytest.mark.stack

CLIPS, FRAMES, STEPS = 4, 100, 2  # 4 s of audio on tiny: 33-frame clips, 24 new frames each
REPO_ROOT = Path(__file__).resolve().parents[3]


def _start_worker(request: CreateJobRequest, env: dict[str, str], attempt: Path):
    """One attempt, in its own temporary directory (the runner's per-call directory)."""
    (attempt / "tmp").mkdir(parents=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "modal_service.worker", "--outcome", str(attempt / "outcome.json")],
        stdin=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={**env, "MULTITALK_WORKER_TMP_DIR": str(attempt / "tmp")},
        start_new_session=True,  # its ffmpeg dies with it, as in a container that is lost
    )
    assert process.stdin is not None
    process.stdin.write(request.model_dump_json().encode())
    process.stdin.close()
    return process


def _wait_for(path: Path, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, "the worker ended before it finished a clip"
        assert time.monotonic() < deadline, f"no {path.name} within {timeout_s} s"
        time.sleep(0.01)


def _denoise_steps(events: list[Any]) -> list[int]:
    return [e.step for e in events if e.type == "job.progress" and e.stage == "denoise"]


@pytest.mark.fault("worker killed mid-video, then retried")
def test_a_retried_job_resumes_after_the_last_clip_its_killed_worker_finished(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    tmp_path: Path,
) -> None:
    wav = write_speech_wav(tmp_path / "speech.wav", duration_s=FRAMES / 25).read_bytes()
    audio_url = objects.get_url(objects.put("speech.wav", wav))
    image_url = objects.get_url(objects.put("portrait.png", media[1]))

    def request_to(key: str) -> CreateJobRequest:
        return job_request(
            audio_urls=[audio_url],
            image_url=image_url,
            put_url=objects.put_url(f"{objects.prefix}/{key}"),
            callback_url=receiver.url,
            secret=secret,
            max_duration_s=FRAMES / 25,
            deadline_s=900,
        )

    request = request_to("out.mp4")
    checkpoints = tmp_path / "checkpoints"
    env = worker_environment(
        os.environ,
        {
            "MULTITALK_CHECKPOINT_DIR": str(checkpoints),
            "MULTITALK_PROGRESS_EVERY": "0",
        },
    )
    state = checkpoints / request.job_id / STATE_FILE

    # 1. The first attempt dies as an out-of-memory kill would: no cleanup, no final callback.
    first = _start_worker(request, env, tmp_path / "first")
    _wait_for(state, first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert not (tmp_path / "first" / "outcome.json").exists()
    assert not objects.exists(f"{objects.prefix}/out.mp4")
    kept = int(torch.load(state, weights_only=True)["clip"]) + 1
    assert 1 <= kept < CLIPS
    seen = len(receiver.events)

    # 2. The retry: the same request, the same job id, a fresh process.
    second = _start_worker(request, env, tmp_path / "second")
    assert second.wait(timeout=300) == 0
    outcome = JobOutcome.model_validate_json((tmp_path / "second" / "outcome.json").read_bytes())
    assert outcome.state == "succeeded", outcome.error
    result = outcome.result
    assert (result.frames, result.duration_s) == (FRAMES, FRAMES / 25)
    assert f"resumed after a restart: {kept} of {CLIPS} clips kept from before it" in result.notes
    retried = receiver.events[seen:]
    assert min(_denoise_steps(retried)) > kept * STEPS  # the kept clips were not denoised again
    assert max(_denoise_steps(retried)) == CLIPS * STEPS
    assert receiver.final().result == result
    assert not (checkpoints / request.job_id).exists()  # removed when the job ended
    assert list((tmp_path / "second" / "tmp").iterdir()) == []

    # 3. The same MP4, byte for byte, as the job rendered without interruption.
    whole = run_job(
        request_to("whole.mp4"), renderers=RendererCache().get, settings=worker_settings
    )
    assert whole.state == "succeeded", whole.error
    assert (whole.result.sha256, whole.result.size_bytes) == (result.sha256, result.size_bytes)
    body, _ = objects.read(f"{objects.prefix}/out.mp4")
    assert len(body) == result.size_bytes

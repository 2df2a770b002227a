"""The input corpus through the public API of the running product, one S3 object per file.

Each accepted file renders (accepted audio and images are paired into jobs, so every one is in
a rendered MP4) and the MP4 is checked where the caller's file shows through the `tiny` model's
noise: the soundtrack's duration, loudness and peak, and the picture's orientation. Each refused
file gets its code, from the submit path (its first bytes) or from the worker (the decoder), and
leaves nothing behind but, in the second case, the failed job that reports it. Bombs are timed
from submission to refusal and the figures printed in the reliability summary. What the worker
makes of each file in detail (alpha background, 16-bit levels, channel mixes) is checked in
``tests/unit/media/``, on the same corpus.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyloudnorm
import pytest

from modal_service.media.ffmpeg import run_ffmpeg
from modal_service.media.probe import probe_media
from modal_service.sniff import SNIFF_BYTES, first_bytes_refusal
from scripts import samples
from scripts.corpus import CorpusCase
from scripts.corpus.audio import CORPUS_MAX_S, audio_cases
from scripts.corpus.images import image_cases
from scripts.local_stack import StackInfo, product
from tests.reliability.conftest import Footprint, problem_code

pytestmark = [pytest.mark.stack, pytest.mark.corpus]

MAX_AUDIO_S = CORPUS_MAX_S
"""The local stack's deployment maximum (``max_video_length_s``), which the corpus is built for."""
VIDEO_LENGTH_S = 2.0
"""Every job asks for 2 s: accepted audio of 1-2.5 s shows both whole tracks and noted cuts."""
FINAL = {"succeeded", "failed", "cancelled"}
CASES = {f"{case.kind}/{case.name}": case for case in [*audio_cases(), *image_cases()]}


@dataclass
class Outcome:
    """What the product did with one corpus file."""

    case: CorpusCase
    key: str
    status: int = 0
    code: str | None = None
    detail: str = ""
    job: dict[str, Any] | None = None
    added: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    """How long the refusal took: the submission's answer, or the worker's time on the job."""
    output: Path | None = None


@dataclass
class CorpusRun:
    stack: StackInfo
    http: httpx.Client
    run: str
    good_audio: str
    good_image: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def bucket(self) -> str:
        return self.stack.buckets["data"]

    def upload(self, name: str, data: bytes, content_type: str) -> str:
        key = f"tenants/acme/inputs/corpus-{self.run}/{name}"
        self.stack.s3_client().put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )
        return key

    def output_prefix(self, name: str) -> str:
        return f"tenants/acme/outputs/corpus-{self.run}/{name}/"

    def submit(self, audio_key: str, image_key: str, name: str) -> httpx.Response:
        body = {
            "input": {
                "audio_s3_url": f"s3://{self.bucket}/{audio_key}",
                "reference_image_s3_url": f"s3://{self.bucket}/{image_key}",
            },
            "output": {"s3_bucket": self.bucket, "s3_prefix": self.output_prefix(name)},
            "options": {"model": "tiny", "video_length": VIDEO_LENGTH_S, "seed": 1},
        }
        token = self.stack.mint_token("acme", ["videos:read", "videos:write"])
        return self.http.post(
            "/generate-video", json=body, headers={"Authorization": f"Bearer {token}"}
        )

    def job(self, job_id: str) -> dict[str, Any]:
        token = self.stack.mint_token("acme", ["videos:read"])
        answer = self.http.get(f"/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def objects_under(self, prefix: str) -> list[str]:
        listed = self.stack.s3_client().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [entry["Key"] for entry in listed.get("Contents", [])]


def refused_at_submit(case: CorpusCase) -> bool:
    head = case.data[:SNIFF_BYTES]
    return first_bytes_refusal(case.kind, head, len(case.data), MAX_AUDIO_S) is not None


@pytest.fixture(scope="module")
def corpus(
    stack: StackInfo, running_product: product.ProductInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorpusRun]:
    """Every corpus file submitted once; refusals at submission first (one at a time, each with
    its footprint), then every job the worker must judge, all queued at once and awaited."""
    media = tmp_path_factory.mktemp("corpus-partners")
    samples.write_speech_wav(media / "voice.wav", duration_s=1.5, seed=11)
    samples.draw_portrait(media / "face.png", size=(320, 320))
    with httpx.Client(base_url=running_product.api_url, timeout=30) as http:
        run = CorpusRun(
            stack=stack,
            http=http,
            run=uuid.uuid4().hex[:8],
            good_audio="",
            good_image="",
        )
        voice, face = (media / "voice.wav").read_bytes(), (media / "face.png").read_bytes()
        run.good_audio = run.upload("partners/voice.wav", voice, "audio/wav")
        run.good_image = run.upload("partners/face.png", face, "image/png")
        for name, case in CASES.items():
            key = run.upload(f"{name}/{case.key}", case.data, case.content_type)
            run.outcomes[name] = Outcome(case=case, key=key)

        # 1. Refused from their first bytes: nothing may be written, so each is checked alone.
        for outcome in run.outcomes.values():
            if not refused_at_submit(outcome.case):
                continue
            before = Footprint.take(stack)
            started = time.monotonic()
            answer = _submit_alone(run, outcome)
            outcome.seconds = time.monotonic() - started
            outcome.status, outcome.code = answer.status_code, problem_code(answer)
            outcome.detail = answer.json().get("detail", "")
            outcome.added = Footprint.take(stack).added_since(before)

        # 2. Everything the worker judges, queued at once: refusals first (so their time is the
        # worker's, not a wait behind renders), then the accepted files paired into jobs.
        pending: dict[str, list[Outcome]] = {}
        for outcome in run.outcomes.values():
            if outcome.case.accepted or refused_at_submit(outcome.case):
                continue
            answer = _submit_alone(run, outcome)
            assert answer.status_code == 202, (outcome.case.name, answer.text)
            pending[answer.json()["job_id"]] = [outcome]
        audio_ok = [o for o in run.outcomes.values() if o.case.kind == "audio" and o.case.accepted]
        image_ok = [o for o in run.outcomes.values() if o.case.kind == "image" and o.case.accepted]
        for index in range(max(len(audio_ok), len(image_ok))):
            pair = [audio_ok[index % len(audio_ok)], image_ok[index % len(image_ok)]]
            answer = run.submit(pair[0].key, pair[1].key, f"pair-{index}")
            assert answer.status_code == 202, (pair[0].case.name, pair[1].case.name, answer.text)
            pending[answer.json()["job_id"]] = pair

        deadline = time.monotonic() + 60 + 20 * len(pending)
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} corpus jobs never finished"
            for job_id, owners in list(pending.items()):
                job = run.job(job_id)
                if job["status"] not in FINAL:
                    continue
                del pending[job_id]
                for outcome in owners:
                    # A file in several pairs keeps its first job (any failure is kept).
                    if outcome.job is None or job["status"] != "succeeded":
                        outcome.job, outcome.seconds = job, _worker_seconds(job)
            time.sleep(0.5)

        # 3. The MP4s of accepted files, fetched for their soundtrack and picture.
        outputs = tmp_path_factory.mktemp("corpus-outputs")
        for outcome in run.outcomes.values():
            job = outcome.job
            if job is None or job["status"] != "succeeded":
                continue
            path = outputs / f"{outcome.case.name}.mp4"
            bucket, key = job["output_url"].removeprefix("s3://").split("/", 1)
            stack.s3_client().download_file(bucket, key, str(path))
            outcome.output = path
        yield run


def _worker_seconds(job: dict[str, Any]) -> float:
    """From the worker's first callback to the job's end, as the job record tells it."""
    if not job.get("started_at") or not job.get("finished_at"):
        return 0.0
    started = datetime.fromisoformat(job["started_at"])
    return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()


def _submit_alone(run: CorpusRun, outcome: Outcome) -> httpx.Response:
    """The refused file with a good partner, under an output prefix of its own."""
    if outcome.case.kind == "audio":
        return run.submit(outcome.key, run.good_image, outcome.case.name)
    return run.submit(run.good_audio, outcome.key, outcome.case.name)


def _soundtrack(path: Path) -> np.ndarray:
    """The MP4's audio as mono float32 at 48 kHz (decoded by the same bundled ffmpeg)."""
    args = ["-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "f32le", "pipe:1"]
    decoded = run_ffmpeg(args)
    assert decoded.returncode == 0, decoded.stderr[-400:]
    return np.frombuffer(decoded.stdout, dtype="<f4")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.bad_input("input corpus"))
        if not case.accepted
        else name
        for name, case in CASES.items()
    ],
)
def test_corpus_file(corpus: CorpusRun, name: str, record_property: Any) -> None:
    outcome = corpus.outcomes[name]
    case = outcome.case
    where = "at submit" if refused_at_submit(case) else "by the worker"
    record_property("corpus", {"name": name, "kind": case.kind, "expect": case.expect,
                               "where": where, "seconds": round(outcome.seconds, 2)})  # fmt: skip
    if case.accepted:
        _check_accepted(corpus, outcome)
    elif refused_at_submit(case):
        assert (outcome.status, outcome.code) == (422, case.expect), outcome.detail
        assert outcome.added == {}, outcome.added  # no job, no object, no idempotency record
        _check_names_the_input(outcome, outcome.detail)
    else:
        job = outcome.job
        assert job is not None
        assert (job["status"], (job["error"] or {}).get("code")) == ("failed", case.expect), job
        _check_names_the_input(outcome, job["error"]["message"])
        assert corpus.objects_under(corpus.output_prefix(name)) == []  # no output, whole or part


def _check_names_the_input(outcome: Outcome, message: str) -> None:
    label = "audio 1" if outcome.case.kind == "audio" else "the reference image"
    assert label in message, message
    assert ".download" not in message, message  # never the worker's own file name
    assert "/tmp" not in message, message


def _check_accepted(corpus: CorpusRun, outcome: Outcome) -> None:
    job, case = outcome.job, outcome.case
    assert job is not None, case.name
    assert job["status"] == "succeeded", (case.name, job)
    assert outcome.output is not None
    info = probe_media(outcome.output)
    result = job["result"]
    if case.kind == "image":
        width, height = case.expected["size"]
        # The bucket follows the upright picture: a portrait renders tall, a landscape wide.
        if abs(width - height) > min(width, height) // 4:
            assert (info.width > info.height) == (width > height), (case.name, info)
        return
    duration = case.expected["duration_s"]
    assert result["audio_durations_s"][0] == pytest.approx(duration, abs=0.05)
    shown = min(duration, VIDEO_LENGTH_S)
    assert info.audio_duration_s == pytest.approx(shown, abs=0.08)
    # Decoded lengths carry codec padding (an MP3 without a LAME header decodes 40 ms long):
    # the note follows what was decoded, to the frame.
    cut = [note for note in result["notes"] if "longer than video_length" in note]
    decoded = result["audio_durations_s"][0]
    assert bool(cut) == (decoded > VIDEO_LENGTH_S + 0.5 / 25), (decoded, result["notes"])
    track = _soundtrack(outcome.output)
    assert int((np.abs(track) >= 0.999).sum()) == 0  # no sample at full scale: nothing clipped
    loudness = pyloudnorm.Meter(48_000).integrated_loudness(track.astype(np.float64))
    assert loudness == pytest.approx(-23.0, abs=2.0), case.name

"""The worker's small parts: S3 refusal parsing, deadline/cancel, progress."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from modal_service.contracts import ErrorCode, JobProgress
from modal_service.worker.control import JobControl
from modal_service.worker.errors import WorkerError
from modal_service.worker.progress import Pace, ProgressReporter, job_percent
from modal_service.worker.renderers import RendererCache
from modal_service.worker.transfer import parse_refusal


def _error(code: str, message: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()


@pytest.mark.parametrize(
    ("status", "body", "expired", "transient"),
    [
        pytest.param(403, _error("AccessDenied", "Request has expired"), True, False, id="aws"),
        pytest.param(
            403, _error("RequestTimeTooSkewed", "presigned URL expired"), True, False, id="nanio"
        ),
        pytest.param(
            403, _error("SignatureDoesNotMatch", "calculated"), False, False, id="tampered"
        ),
        pytest.param(403, _error("AccessDenied", "Access Denied"), False, False, id="denied"),
        pytest.param(400, _error("ExpiredToken", "expired"), False, False, id="not-403"),
        pytest.param(503, _error("SlowDown", "reduce"), False, True, id="slowdown"),
        pytest.param(400, _error("BadDigest", "md5"), False, True, id="bad-digest"),
        pytest.param(429, b"", False, True, id="429-no-body"),
        pytest.param(404, b"<html>", False, False, id="404-html"),
    ],
)
def test_s3_refusals_are_classified(
    status: int, body: bytes, expired: bool, transient: bool
) -> None:
    refusal = parse_refusal(status, body)
    assert refusal.expired is expired
    assert refusal.transient is transient


def test_control_names_the_reason_to_stop() -> None:
    control = JobControl(datetime.now(UTC) + timedelta(minutes=1))
    assert not control.should_stop()
    control.check()
    assert 0 < control.timeout(5.0) <= 5.0
    control.cancel()
    assert control.should_stop()
    with pytest.raises(WorkerError) as cancelled:
        control.check()
    assert cancelled.value.code == ErrorCode.CANCELLED

    late = JobControl(datetime.now(UTC) - timedelta(seconds=1))
    assert late.should_stop()
    with pytest.raises(WorkerError) as expired:
        late.check()
    assert expired.value.code == ErrorCode.DEADLINE_EXCEEDED


def test_control_sleep_wakes_up_on_cancel() -> None:
    control = JobControl(datetime.now(UTC) + timedelta(minutes=1))
    threading.Timer(0.1, control.cancel).start()
    started = time.monotonic()
    with pytest.raises(WorkerError):
        control.sleep(30)
    assert time.monotonic() - started < 20


def test_progress_is_throttled_to_the_newest_value() -> None:
    sent: list[JobProgress] = []
    first_sent = threading.Event()

    def send(event: JobProgress) -> None:
        sent.append(event)
        first_sent.set()

    reporter = ProgressReporter("job_" + "0" * 26, send, interval_s=60)
    reporter.update("denoise", 1, 40)
    assert first_sent.wait(10)
    for step in range(2, 41):  # all within one interval: none of them is sent yet
        reporter.update("denoise", step, 40)
    reporter.close()
    assert [(e.stage, e.step, e.percent) for e in sent] == [("denoise", 1, 15.1)]


def test_progress_sender_failures_do_not_reach_the_render() -> None:
    attempts: list[int] = []

    def send(event: JobProgress) -> None:
        attempts.append(event.step)
        raise ConnectionError("receiver down")

    reporter = ProgressReporter("job_" + "0" * 26, send, interval_s=0)
    for step in range(5):
        reporter.update("encode", step, 4)  # step beyond total is clamped
    deadline = time.monotonic() + 10
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.01)
    reporter.close()
    assert attempts
    assert max(attempts) <= 4


def test_the_remaining_time_follows_the_pace_of_the_denoise_steps() -> None:
    now = [100.0]
    pace = Pace(clock=lambda: now[0])
    assert pace.remaining_s("audio", 0, 1) is None  # nothing timed yet: no estimate
    assert pace.remaining_s("denoise", 1, 80) is None  # one step: no pace yet
    now[0] += 30.0  # 3 steps in 30 s, a clip's decode among them
    assert pace.remaining_s("denoise", 4, 80) == pytest.approx(10.0 * 76)
    now[0] += 10.0
    assert pace.remaining_s("denoise", 5, 80) == pytest.approx(10.0 * 75)
    assert pace.remaining_s("encode", 0, 1) == 0.0


def test_one_large_preset_is_held_at_a_time() -> None:
    # tiny presets stand in for the 14B ones (which hold ~40 GB each on the GPU).
    cache = RendererCache(exclusive=lambda preset: True)
    first = cache.get("tiny")
    assert cache.get("tiny") is first  # loaded once, reused
    cache.get("tiny-infinitetalk")
    assert cache.loaded == ["tiny-infinitetalk"]  # the other one was dropped first
    shared = RendererCache()  # the default: tiny presets are small, kept side by side
    shared.get("tiny")
    shared.get("tiny-infinitetalk")
    assert shared.loaded == ["tiny", "tiny-infinitetalk"]


def test_the_jobs_percent_only_grows_across_stages() -> None:
    # Each stage's own step/total restarts at 0; the job's percent must not (the AWS side
    # refuses progress that goes back, so per-stage percents froze it at "downloading 100 %").
    events = [
        ("downloading", 0, 2), ("downloading", 2, 2), ("checking_inputs", 0, 1),
        ("loading_model", 0, 1), ("audio", 0, 1), ("audio", 1, 1), ("denoise", 1, 700),
        ("denoise", 350, 700), ("denoise", 700, 700), ("encode", 0, 1), ("encode", 1, 1),
        ("uploading", 0, 10), ("uploading", 10, 10),
    ]  # fmt: skip
    percents = [job_percent(*event) for event in events]
    assert percents == sorted(percents)
    assert (percents[0], percents[-1]) == (0.0, 100.0)
    assert job_percent("denoise", 350, 700) == 54.0

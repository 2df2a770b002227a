"""The worker's failure paths against the strict local S3 and real HTTP peers.

Each job here fails before the model runs, so no renderer is needed: ``no_render`` fails the
test if the worker ever asks for one. Every case checks the stable code, ``retryable``, that
the final callback arrived with a valid signature, and that no temporary file is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from modal_service.config import WorkerSettings
from modal_service.contracts import CallState, ErrorCode, JobInputs, JobOutput, UrlRefreshResponse
from modal_service.worker import run_job
from modal_service.worker.control import JobControl
from tests.integration.modal_service.support import (
    CallbackReceiver,
    FaultyInputs,
    S3Objects,
    free_port,
    job_request,
    new_secret,
)

pytestmark = pytest.mark.stack


def no_render(preset: str) -> Any:
    raise AssertionError(f"the worker asked for a renderer ({preset}) in a job that must fail")


def _tamper(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | {"X-Amz-Signature": "0" * 64}
    return urlunsplit(parts._replace(query=urlencode(query)))


def _request(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    *,
    audio_url: str | None = None,
    image_url: str | None = None,
    **overrides: Any,
) -> Any:
    wav, png = media
    return job_request(
        audio_urls=[audio_url or objects.get_url(objects.put("speech.wav", wav))],
        image_url=image_url or objects.get_url(objects.put("portrait.png", png)),
        put_url=objects.put_url(f"{objects.prefix}/out.mp4"),
        callback_url=receiver.url,
        secret=secret,
        **overrides,
    )


def _assert_failed(
    outcome: Any, receiver: CallbackReceiver, work_dir: Path, code: ErrorCode, retryable: bool
) -> None:
    assert outcome.state == "failed"
    assert outcome.error.code == code
    assert outcome.error.retryable is retryable
    assert outcome.callback_delivered
    final = receiver.final()
    assert final.type == "job.failed"
    assert final.error == outcome.error
    assert receiver.bad_signatures == 0
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("broken", "code", "retryable"),
    [
        pytest.param("missing", ErrorCode.INPUT_UNREADABLE, False, id="404"),
        pytest.param("tampered", ErrorCode.INPUT_UNREADABLE, False, id="403-signature"),
        pytest.param("not-audio", ErrorCode.AUDIO_INVALID, False, id="corrupt-audio"),
        pytest.param("a-page", ErrorCode.UNSUPPORTED_FORMAT, False, id="html-as-audio"),
        pytest.param("empty", ErrorCode.AUDIO_INVALID, False, id="empty-audio"),
    ],
)
def test_bad_audio_input_fails_with_a_stable_code(
    broken: str,
    code: ErrorCode,
    retryable: bool,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    urls = {
        "missing": lambda: objects.get_url(f"{objects.prefix}/absent.wav"),
        "tampered": lambda: _tamper(objects.get_url(objects.put("a.wav", media[0]))),
        "not-audio": lambda: objects.get_url(objects.put("a.wav", b"\x00\x17 noise " * 20)),
        "a-page": lambda: objects.get_url(objects.put("a.wav", b"<html>not audio</html>")),
        "empty": lambda: objects.get_url(objects.put("a.wav", b"")),
    }
    request = _request(objects, receiver, secret, media, audio_url=urls[broken]())
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    _assert_failed(outcome, receiver, work_dir, code, retryable)
    assert receiver.types()[0] == "job.started"
    assert not objects.exists(f"{objects.prefix}/out.mp4")


def test_corrupt_image_fails_as_image_invalid(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    image_url = objects.get_url(objects.put("p.png", b"\x89PNG but truncated garbage"[:5] + b"x"))
    request = _request(objects, receiver, secret, media, image_url=image_url)
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    _assert_failed(outcome, receiver, work_dir, ErrorCode.IMAGE_INVALID, False)


def test_input_over_the_size_limit_is_refused(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    request = _request(objects, receiver, secret, media, max_audio_bytes=len(media[0]) - 1)
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    _assert_failed(outcome, receiver, work_dir, ErrorCode.INPUT_TOO_LARGE, False)


@pytest.mark.fault("input server slow, truncating or failing")
@pytest.mark.parametrize(
    ("path", "code", "retryable"),
    [
        pytest.param("/stall", ErrorCode.INPUT_UNREADABLE, True, id="slow"),
        pytest.param("/truncated", ErrorCode.INPUT_UNREADABLE, True, id="truncated"),
        pytest.param("/unsized", ErrorCode.INPUT_TOO_LARGE, False, id="unsized-over-limit"),
        pytest.param("/flaky", ErrorCode.IMAGE_INVALID, False, id="503-then-ok"),
    ],
)
def test_misbehaving_input_server(
    path: str,
    code: ErrorCode,
    retryable: bool,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    faulty = FaultyInputs(media[0])
    faulty.server.start()
    try:
        # /unsized streams 4 copies with no length: over a limit of 3 copies it is cut off.
        # /flaky answers 503 once, then the audio: the job gets past it and stops at the image.
        request = _request(
            objects,
            receiver,
            secret,
            media,
            audio_url=faulty.url(path),
            image_url=objects.get_url(objects.put("p.png", b"not an image")),
            max_audio_bytes=3 * len(media[0]),
        )
        outcome = run_job(request, renderers=no_render, settings=worker_settings)
    finally:
        faulty.server.stop()
    _assert_failed(outcome, receiver, work_dir, code, retryable)
    expected_requests = {"/stall": 2, "/truncated": 2, "/unsized": 1, "/flaky": 2}
    assert faulty.requests[path] == expected_requests[path]


@pytest.mark.fault("expired input URL")
def test_expired_input_url_is_refreshed_once_then_used(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    audio_key = objects.put("speech.wav", media[0])
    image_key = objects.put("p.png", b"not an image")  # stops the job after the downloads
    out_key = f"{objects.prefix}/out.mp4"
    request = _request(
        objects,
        receiver,
        secret,
        media,
        audio_url=objects.get_url(audio_key, expires_s=1),
        image_url=objects.get_url(image_key),
    )
    receiver.refresh = lambda: UrlRefreshResponse(
        inputs=JobInputs(
            audio_urls=[objects.get_url(audio_key)], image_url=objects.get_url(image_key)
        ),
        output=JobOutput(put_url=objects.put_url(out_key)),
    )
    time.sleep(1.5)  # nanio refuses it now: 403 RequestTimeTooSkewed "presigned URL expired"
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    _assert_failed(outcome, receiver, work_dir, ErrorCode.IMAGE_INVALID, False)
    assert receiver.types().count("job.url_refresh") == 1


@pytest.mark.parametrize("refresh_answers", ["expired-again", "nothing"])
def test_expired_url_without_a_usable_refresh_fails_as_url_expired(
    refresh_answers: str,
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    audio_key = objects.put("speech.wav", media[0])
    request = _request(
        objects, receiver, secret, media, audio_url=objects.get_url(audio_key, expires_s=1)
    )
    if refresh_answers == "expired-again":
        stale = request.inputs.audio_urls[0]
        receiver.refresh = lambda: UrlRefreshResponse(
            inputs=request.inputs.model_copy(update={"audio_urls": [stale]}),
            output=request.output,
        )
    time.sleep(1.5)
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    _assert_failed(outcome, receiver, work_dir, ErrorCode.URL_EXPIRED, True)
    assert receiver.types().count("job.url_refresh") == 1


def test_deadline_already_passed_fails_before_any_download(
    objects: S3Objects,
    receiver: CallbackReceiver,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
) -> None:
    faulty = FaultyInputs(media[0])
    faulty.server.start()
    try:
        request = _request(objects, receiver, secret, media, audio_url=faulty.url("/flaky"))
        request = request.model_copy(update={"deadline": datetime.now(UTC) - timedelta(seconds=1)})
        outcome = run_job(request, renderers=no_render, settings=worker_settings)
    finally:
        faulty.server.stop()
    _assert_failed(outcome, receiver, work_dir, ErrorCode.DEADLINE_EXCEEDED, False)
    assert receiver.types() == ["job.failed"]
    assert faulty.requests == {}


@pytest.mark.fault("callback receiver down, then up")
def test_final_callback_survives_a_receiver_that_is_down_then_up(
    receiver_factory: Callable[..., CallbackReceiver],
    objects: S3Objects,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
    work_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = receiver_factory(start=False, port=free_port())
    request = _request(
        objects, receiver, secret, media, audio_url=objects.get_url(f"{objects.prefix}/absent")
    )
    result: list[Any] = []
    job = threading.Thread(
        target=lambda: result.append(
            run_job(request, renderers=no_render, settings=worker_settings)
        )
    )
    with caplog.at_level(logging.WARNING, logger="modal_service.worker"):
        job.start()
        # Wait until job.failed itself has failed to arrive at least once...
        deadline = time.monotonic() + 20
        while not any("callback job.failed attempt" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the final callback was never attempted"
            time.sleep(0.05)
        # ...then bring the receiver up, answering 503 twice before it is healthy.
        receiver.fail_first = 2
        receiver.server.start()
        job.join(timeout=30)
    assert not job.is_alive()
    outcome = result[0]
    assert outcome.callback_delivered
    assert receiver.final().error.code == ErrorCode.INPUT_UNREADABLE
    assert receiver.bad_signatures == 0
    assert list(work_dir.iterdir()) == []


@pytest.mark.fault("callback route down when the job is cancelled")
def test_a_cancelled_job_does_not_hold_the_worker_for_the_final_callback_window(
    receiver_factory: Callable[..., CallbackReceiver],
    objects: S3Objects,
    secret: str,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
) -> None:
    """The AWS side cancelled the job and settled it; with its callback route down, the worker
    gives up on telling it after the short cancelled window, not the 10-minute final one."""
    receiver = receiver_factory()
    receiver.server.stop()  # the callback route is down for the whole job
    request = _request(objects, receiver, secret, media)
    settings = worker_settings.model_copy(
        update={"final_callback_window_s": 600.0, "cancelled_callback_window_s": 0.5}
    )
    control = JobControl(request.deadline)
    control.cancel()
    result: list[Any] = []
    job = threading.Thread(
        target=lambda: result.append(
            run_job(request, renderers=no_render, settings=settings, control=control)
        ),
        daemon=True,
    )
    job.start()
    job.join(timeout=30)
    assert not job.is_alive(), "the worker is still trying to deliver a cancelled outcome"
    (outcome,) = result
    assert outcome.state == CallState.CANCELLED
    assert not outcome.callback_delivered


def test_callbacks_signed_with_another_secret_are_refused_by_the_receiver(
    objects: S3Objects,
    receiver: CallbackReceiver,
    media: tuple[bytes, bytes],
    worker_settings: WorkerSettings,
) -> None:
    request = _request(
        objects,
        receiver,
        new_secret(),  # not the receiver's
        media,
        audio_url=objects.get_url(f"{objects.prefix}/absent"),
    )
    outcome = run_job(request, renderers=no_render, settings=worker_settings)
    assert outcome.state == "failed"
    assert not outcome.callback_delivered
    assert receiver.events == []
    # job.started, a progress event and job.failed, each refused once (4xx: not retried)
    assert receiver.bad_signatures == receiver.requests >= 2

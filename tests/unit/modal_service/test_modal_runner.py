"""ModalRunner's branches, with Modal's lookups substituted at the ``modal`` API boundary.

``spawn``, ``FunctionCall.from_id(...).get`` and ``.cancel`` need a Modal account, so
``modal.Cls.from_name`` and ``modal.FunctionCall.from_id`` are replaced by stand-ins that
behave as the 1.6 client does: ``get(timeout=0)`` raises the built-in ``TimeoutError`` while
the call runs and Modal's own exception classes otherwise (the real classes are raised).
What this cannot show is Modal's service doing the same; that runs only on a deployment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import modal
import modal.exception
import pytest

from modal_service.contracts import CallState, CreateJobRequest, ErrorCode
from modal_service.runner.base import CallNotFound, RunnerUnavailable
from modal_service.runner.modal_runner import ModalRunner
from modal_service.worker.outcome import JobOutcome

REQUEST = CreateJobRequest.model_validate(
    {
        "job_id": "job_" + "0" * 26,
        "inputs": {
            "audio_urls": ["https://b.s3.amazonaws.com/a.wav?X-Amz-Signature=1"],
            "image_url": "https://b.s3.amazonaws.com/p.png?X-Amz-Signature=2",
        },
        "output": {"put_url": "https://b.s3.amazonaws.com/o.mp4?X-Amz-Signature=3"},
        "params": {"model": "tiny"},
        "callback": {"url": "https://cb.example.com/c", "secret": "whsec_" + "A" * 32},
        "deadline": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
    }
)


class StandInCall:
    """What ``FunctionCall.from_id`` returns: ``get`` answers from a script."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.cancelled_with: list[bool] = []
        self.object_id = "fc-01STANDIN"

    def get(self, timeout: float | None = None) -> Any:
        assert timeout == 0  # polling never blocks a web request
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    def cancel(self, terminate_containers: bool = False) -> None:
        self.cancelled_with.append(terminate_containers)


class StandInDict:
    """What ``modal.Dict.from_name`` returns, with the semantics of ``put(skip_if_exists)``."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def put(self, key: str, value: Any, *, skip_if_exists: bool = False) -> bool:
        if skip_if_exists and key in self.items:
            return False
        self.items[key] = value
        return True

    def get(self, key: str, default: Any = None) -> Any:
        return self.items.get(key, default)

    def pop(self, key: str, default: Any = None) -> Any:
        return self.items.pop(key, default)


class StandInMethod:
    def __init__(self, error: Exception | None = None) -> None:
        self.spawned: list[Any] = []
        self.error = error

    def spawn(self, payload: Any) -> StandInCall:
        if self.error:
            raise self.error
        self.spawned.append(payload)
        call = StandInCall(None)
        call.object_id = f"fc-{len(self.spawned)}"
        return call


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, StandInCall]:
    registry: dict[str, StandInCall] = {}

    def from_id(call_id: str, client: Any = None) -> StandInCall:
        return registry[call_id]

    monkeypatch.setattr(modal.FunctionCall, "from_id", from_id)
    return registry


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> StandInDict:
    shared = StandInDict()
    names: list[str] = []

    def from_name(name: str, **_: Any) -> StandInDict:
        names.append(name)
        return shared

    monkeypatch.setattr(modal.Dict, "from_name", from_name)
    return shared


def _lookup(monkeypatch: pytest.MonkeyPatch, method: StandInMethod) -> list[tuple[str, str]]:
    looked_up: list[tuple[str, str]] = []

    def from_name(app_name: str, name: str, **_: Any) -> Any:
        looked_up.append((app_name, name))
        return lambda: type("Worker", (), {"run_job": method})()

    monkeypatch.setattr(modal.Cls, "from_name", from_name)
    return looked_up


def test_submit_spawns_the_worker_method_with_the_request_as_json(
    monkeypatch: pytest.MonkeyPatch, registry: StandInDict
) -> None:
    method = StandInMethod()
    looked_up = _lookup(monkeypatch, method)
    runner = ModalRunner(app_name="multitalk-video", class_name="MultiTalkWorker")
    assert runner.submit(REQUEST) == "fc-1"
    assert looked_up == [("multitalk-video", "MultiTalkWorker")]
    assert CreateJobRequest.model_validate(method.spawned[0]) == REQUEST
    assert method.spawned[0]["callback"]["secret"] == REQUEST.callback.secret
    assert registry.items == {REQUEST.job_id: "fc-1"}


def test_submitting_the_same_job_again_returns_the_first_call(
    monkeypatch: pytest.MonkeyPatch, registry: StandInDict
) -> None:
    method = StandInMethod()
    _lookup(monkeypatch, method)
    # Two API containers, one shared registry: a retried POST lands on the other one.
    first = ModalRunner(app_name="a", class_name="C")
    second = ModalRunner(app_name="a", class_name="C")
    assert first.submit(REQUEST) == "fc-1"
    assert second.submit(REQUEST) == "fc-1"
    assert len(method.spawned) == 1


def test_a_submission_still_spawning_elsewhere_is_waited_for_or_refused(
    monkeypatch: pytest.MonkeyPatch, registry: StandInDict
) -> None:
    method = StandInMethod()
    _lookup(monkeypatch, method)
    monkeypatch.setattr("modal_service.runner.modal_runner._PENDING_WAIT_S", 0.3)
    registry.items[REQUEST.job_id] = "pending"  # reserved by another container, not spawned yet
    with pytest.raises(RunnerUnavailable):
        ModalRunner(app_name="a", class_name="C").submit(REQUEST)
    assert method.spawned == []


def test_submit_when_modal_refuses_is_unavailable_and_releases_the_job(
    monkeypatch: pytest.MonkeyPatch, registry: StandInDict
) -> None:
    _lookup(monkeypatch, StandInMethod(modal.exception.ConnectionError("down")))
    with pytest.raises(RunnerUnavailable):
        ModalRunner(app_name="a", class_name="C").submit(REQUEST)
    assert registry.items == {}  # so the AWS side's retry can spawn it
    working = StandInMethod()
    _lookup(monkeypatch, working)
    assert ModalRunner(app_name="a", class_name="C").submit(REQUEST) == "fc-1"


def _outcome(**fields: Any) -> dict[str, Any]:
    return JobOutcome(job_id=REQUEST.job_id, **fields).model_dump(mode="json")


@pytest.mark.parametrize(
    ("answer", "state", "code"),
    [
        pytest.param(TimeoutError(), CallState.RUNNING, None, id="running"),
        pytest.param(
            modal.exception.OutputExpiredError(), CallState.EXPIRED, None, id="output-expired"
        ),
        pytest.param(
            modal.exception.FunctionTimeoutError("t"),
            CallState.FAILED,
            ErrorCode.DEADLINE_EXCEEDED,
            id="function-timeout",
        ),
        pytest.param(
            modal.exception.InputCancellation(), CallState.CANCELLED, None, id="cancelled"
        ),
        pytest.param(
            modal.exception.RemoteError("x"), CallState.FAILED, ErrorCode.INTERNAL, id="crashed"
        ),
        pytest.param({"not": "an outcome"}, CallState.FAILED, ErrorCode.INTERNAL, id="garbage"),
        pytest.param(
            _outcome(
                state="failed",
                error={"code": "audio_invalid", "message": "silent", "retryable": False},
            ),
            CallState.FAILED,
            ErrorCode.AUDIO_INVALID,
            id="job-failed",
        ),
    ],
)
def test_status_tells_the_call_states_apart(
    answer: Any, state: CallState, code: ErrorCode | None, calls: dict[str, StandInCall]
) -> None:
    calls["fc-1"] = StandInCall(answer)
    status = ModalRunner(app_name="a", class_name="C").status("fc-1")
    assert status.call_id == "fc-1"
    assert status.state == state
    assert (status.error.code if status.error else None) == code


def test_output_expired_is_not_mistaken_for_still_running() -> None:
    # The trap the runner avoids: Modal's OutputExpiredError is a *Modal* TimeoutError.
    assert not isinstance(modal.exception.OutputExpiredError(), TimeoutError)
    assert isinstance(modal.exception.OutputExpiredError(), modal.exception.TimeoutError)


def test_a_succeeded_call_reports_its_result(calls: dict[str, StandInCall]) -> None:
    result = {
        "size_bytes": 10,
        "sha256": "0" * 64,
        "duration_s": 1.0,
        "frames": 25,
        "fps": 25.0,
        "width": 64,
        "height": 64,
        "model": "tiny",
    }
    calls["fc-2"] = StandInCall(_outcome(state="succeeded", result=result))
    status = ModalRunner(app_name="a", class_name="C").status("fc-2")
    assert status.state == CallState.SUCCEEDED
    assert status.result is not None
    assert status.result.frames == 25


@pytest.mark.parametrize(
    "error",
    [modal.exception.NotFoundError("no such call"), modal.exception.InvalidError("bad id")],
)
def test_unknown_calls_are_not_found(error: Exception, calls: dict[str, StandInCall]) -> None:
    calls["fc-gone"] = StandInCall(error)
    runner = ModalRunner(app_name="a", class_name="C")
    with pytest.raises(CallNotFound):
        runner.status("fc-gone")
    with pytest.raises(CallNotFound):
        runner.cancel("fc-gone")


def test_cancel_stops_a_running_call_and_leaves_a_final_one_alone(
    calls: dict[str, StandInCall],
) -> None:
    runner = ModalRunner(app_name="a", class_name="C")
    calls["fc-run"] = StandInCall(TimeoutError())
    assert runner.cancel("fc-run").state == CallState.CANCELLED
    assert calls["fc-run"].cancelled_with == [False]  # the container stays up for others

    calls["fc-done"] = StandInCall(
        _outcome(state="failed", error={"code": "internal", "message": "x", "retryable": True})
    )
    assert runner.cancel("fc-done").state == CallState.FAILED
    assert calls["fc-done"].cancelled_with == []

"""Jobs as Modal function calls: ``spawn`` to start, ``FunctionCall.from_id`` to find again.

The internal API may run in several containers, so this runner keeps no state: the Modal call
id is the handle. ``get(timeout=0)`` polls without waiting; its exceptions say where the call
stands:

* built-in ``TimeoutError``: still running (no output yet);
* ``modal.exception.OutputExpiredError``: finished more than 7 days ago, result gone. It derives
  from ``modal.exception.TimeoutError``, which is *not* the built-in one;
* ``modal.exception.FunctionTimeoutError``: the container hit the function's ``timeout``;
* ``modal.exception.InputCancellation``: cancelled;
* anything else: the call failed without returning an outcome.

Submitting is idempotent per ``job_id``: the AWS side retries ``POST /v1/jobs`` when an answer
is lost, and two GPU calls for one job would race on its output and its callbacks. A Modal Dict
(shared by every API container) maps job ids to call ids; an entry is reserved *before* the
spawn, so of two concurrent submissions only one spawns and the other answers with its call id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import modal
import modal.exception
from pydantic import ValidationError

from modal_service.contracts import (
    CallState,
    CreateJobRequest,
    ErrorCode,
    JobError,
    JobStatusResponse,
)
from modal_service.runner.base import (
    CallNotFound,
    RunnerUnavailable,
    running,
    status_from_outcome,
)
from modal_service.worker.outcome import JobOutcome

logger = logging.getLogger(__name__)


_PENDING = "pending"
_PENDING_WAIT_S = 10.0


class ModalRunner:
    def __init__(
        self,
        *,
        app_name: str,
        class_name: str,
        registry_name: str = "multitalk-video-calls",
        method_name: str = "run_job",
    ) -> None:
        self._app_name = app_name
        self._class_name = class_name
        self._registry_name = registry_name
        self._method_name = method_name
        self._method: Any = None
        self._registry: Any = None

    def _worker_method(self) -> Any:
        # Looked up lazily (and once): from_name needs no network until first use.
        if self._method is None:
            worker_cls = modal.Cls.from_name(self._app_name, self._class_name)
            self._method = getattr(worker_cls(), self._method_name)
        return self._method

    def _calls_by_job(self) -> Any:
        if self._registry is None:
            self._registry = modal.Dict.from_name(self._registry_name, create_if_missing=True)
        return self._registry

    def submit(self, request: CreateJobRequest) -> str:
        try:
            registry = self._calls_by_job()
            if not registry.put(request.job_id, _PENDING, skip_if_exists=True):
                return self._existing_call(registry, request.job_id)
            try:
                call = self._worker_method().spawn(request.model_dump(mode="json"))
            except modal.exception.Error:
                registry.pop(request.job_id, None)  # a later retry may spawn again
                raise
            registry.put(request.job_id, str(call.object_id))
        except modal.exception.Error as error:
            raise RunnerUnavailable(
                f"Modal did not accept the job: {type(error).__name__}"
            ) from error
        return str(call.object_id)

    @staticmethod
    def _existing_call(registry: Any, job_id: str) -> str:
        # Another container reserved this job a moment ago; its call id follows the spawn.
        deadline = time.monotonic() + _PENDING_WAIT_S
        while time.monotonic() < deadline:
            value = registry.get(job_id)
            if value is None:
                break  # the other submission failed to spawn and released the job
            if value != _PENDING:
                return str(value)
            time.sleep(0.2)
        raise RunnerUnavailable("another submission of this job is in progress; retry")

    def status(self, call_id: str) -> JobStatusResponse:
        call = self._lookup(call_id)
        try:
            value = call.get(timeout=0)
        except TimeoutError:
            return running(call_id)
        except modal.exception.OutputExpiredError:
            return JobStatusResponse(call_id=call_id, state=CallState.EXPIRED)
        except (modal.exception.NotFoundError, modal.exception.InvalidError) as error:
            raise CallNotFound(call_id) from error  # unknown, or not a Modal call id at all
        except modal.exception.FunctionTimeoutError:
            return _failed(
                call_id, ErrorCode.DEADLINE_EXCEEDED, "the GPU function timed out", False
            )
        except modal.exception.InputCancellation:
            return JobStatusResponse(call_id=call_id, state=CallState.CANCELLED)
        except modal.exception.ConnectionError as error:
            raise RunnerUnavailable("Modal is unreachable") from error
        except Exception as error:  # the call ended with an exception instead of an outcome
            logger.warning("call %s ended without an outcome: %s", call_id, type(error).__name__)
            return _failed(call_id, ErrorCode.INTERNAL, "the GPU call ended without a result", True)
        try:
            return status_from_outcome(call_id, JobOutcome.model_validate(value))
        except ValidationError:
            logger.error("call %s returned something that is not a JobOutcome", call_id)
            return _failed(call_id, ErrorCode.INTERNAL, "the GPU call returned no outcome", True)

    def cancel(self, call_id: str) -> JobStatusResponse:
        current = self.status(call_id)
        if current.state != CallState.RUNNING:
            return current  # already final: cancelling changes nothing
        call = self._lookup(call_id)
        try:
            # Containers stay up: the worker sees InputCancellation, reports and cleans up.
            call.cancel(terminate_containers=False)
        except modal.exception.NotFoundError as error:
            raise CallNotFound(call_id) from error
        except modal.exception.ConnectionError as error:
            raise RunnerUnavailable("Modal is unreachable") from error
        return JobStatusResponse(call_id=call_id, state=CallState.CANCELLED)

    def close(self) -> None:
        """Nothing to release: Modal holds the calls."""

    @staticmethod
    def _lookup(call_id: str) -> Any:
        try:
            return modal.FunctionCall.from_id(call_id)
        except modal.exception.NotFoundError as error:
            raise CallNotFound(call_id) from error


def _failed(call_id: str, code: ErrorCode, message: str, retryable: bool) -> JobStatusResponse:
    return JobStatusResponse(
        call_id=call_id,
        state=CallState.FAILED,
        error=JobError(code=code, message=message, retryable=retryable),
    )

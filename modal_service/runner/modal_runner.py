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
"""

from __future__ import annotations

import logging
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


class ModalRunner:
    def __init__(self, *, app_name: str, class_name: str, method_name: str = "run_job") -> None:
        self._app_name = app_name
        self._class_name = class_name
        self._method_name = method_name
        self._method: Any = None

    def _worker_method(self) -> Any:
        # Looked up lazily (and once): from_name needs no network until first use.
        if self._method is None:
            worker_cls = modal.Cls.from_name(self._app_name, self._class_name)
            self._method = getattr(worker_cls(), self._method_name)
        return self._method

    def submit(self, request: CreateJobRequest) -> str:
        try:
            call = self._worker_method().spawn(request.model_dump(mode="json"))
        except modal.exception.Error as error:
            raise RunnerUnavailable(
                f"Modal did not accept the job: {type(error).__name__}"
            ) from error
        return str(call.object_id)

    def status(self, call_id: str) -> JobStatusResponse:
        call = self._lookup(call_id)
        try:
            value = call.get(timeout=0)
        except TimeoutError:
            return running(call_id)
        except modal.exception.OutputExpiredError:
            return JobStatusResponse(call_id=call_id, state=CallState.EXPIRED)
        except modal.exception.NotFoundError as error:
            raise CallNotFound(call_id) from error
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

"""The job runner interface: what the internal API needs to start, watch and cancel a job."""

from __future__ import annotations

from typing import Protocol

from modal_service.contracts import CallState, CreateJobRequest, JobStatusResponse
from modal_service.worker.outcome import JobOutcome


class CallNotFound(LookupError):
    """No call with this id is known to the runner."""


class RunnerUnavailable(RuntimeError):
    """The runner cannot take or answer requests right now (e.g. Modal unreachable)."""


class JobRunner(Protocol):
    """Starts jobs and reports on them by call id. Implementations: Modal and local."""

    def submit(self, request: CreateJobRequest) -> str:
        """Start the job in the background and return its call id at once.

        Idempotent per ``job_id``: submitting the same job again returns the first call id.
        """
        ...

    def status(self, call_id: str) -> JobStatusResponse:
        """Where the call stands; raises :class:`CallNotFound` for an unknown id."""
        ...

    def cancel(self, call_id: str) -> JobStatusResponse:
        """Ask the call to stop; idempotent. Raises :class:`CallNotFound` for an unknown id."""
        ...

    def close(self) -> None:
        """Release what the runner holds (local processes); a no-op for Modal."""
        ...


def status_from_outcome(call_id: str, outcome: JobOutcome) -> JobStatusResponse:
    return JobStatusResponse(
        call_id=call_id, state=outcome.state, result=outcome.result, error=outcome.error
    )


def running(call_id: str) -> JobStatusResponse:
    return JobStatusResponse(call_id=call_id, state=CallState.RUNNING)

"""Deadline and cancellation of one job, checked between every unit of work."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from modal_service.contracts import ErrorCode
from modal_service.worker.errors import WorkerError


class JobControl:
    """Answers "should this job stop, and why?" for the transfer loops and the renderer.

    The deadline is an absolute UTC time from the request; it is turned into a monotonic one
    once, so a wall-clock jump during the job does not move it.
    """

    def __init__(self, deadline: datetime) -> None:
        remaining = (deadline - datetime.now(UTC)).total_seconds()
        self._deadline_monotonic = time.monotonic() + remaining
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop (signal handler or runner); safe from any thread."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining_s(self) -> float:
        return self._deadline_monotonic - time.monotonic()

    def should_stop(self) -> bool:
        return self.cancelled or self.remaining_s() <= 0

    def check(self) -> None:
        """Raise the failure that applies when the job must stop; cancellation wins."""
        if self.cancelled:
            raise WorkerError(ErrorCode.CANCELLED, "the job was cancelled", retryable=False)
        if self.remaining_s() <= 0:
            raise WorkerError(
                ErrorCode.DEADLINE_EXCEEDED, "the job's deadline has passed", retryable=False
            )

    def timeout(self, cap_s: float) -> float:
        """A network timeout that never outlives the deadline (at least a few ms)."""
        return max(0.01, min(cap_s, self.remaining_s()))

    def sleep(self, seconds: float) -> None:
        """Back off, waking early when cancelled; then raise if the job must stop."""
        self._cancelled.wait(timeout=max(0.0, min(seconds, self.remaining_s())))
        self.check()

"""Throttled progress callbacks that never slow the render down.

The renderer calls :meth:`ProgressReporter.update` as often as it likes (every denoising step);
the call only stores the newest value. A background thread sends at most one ``job.progress``
per interval, always the newest, so a slow or unreachable receiver costs the render nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from modal_service.contracts import JobProgress

logger = logging.getLogger(__name__)


class ProgressReporter:
    def __init__(
        self, job_id: str, send: Callable[[JobProgress], None], *, interval_s: float
    ) -> None:
        self._job_id = job_id
        self._send = send
        self._interval_s = interval_s
        self._pending: JobProgress | None = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="progress-callbacks", daemon=True)
        self._thread.start()

    def update(self, stage: str, step: int, total: int) -> None:
        """Record the newest progress (cheap; callable from any thread)."""
        total = max(total, 0)
        step = min(max(step, 0), total) if total else max(step, 0)
        percent = round(100.0 * step / total, 1) if total else 0.0
        event = JobProgress(
            job_id=self._job_id, stage=stage[:64], step=step, total=total, percent=percent
        )
        with self._wake:
            self._pending = event
            self._wake.notify()

    def close(self) -> None:
        """Stop the sender; a pending progress value is dropped (a final event follows)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                event, self._pending = self._pending, None
            try:
                self._send(event)
            except Exception as error:  # progress is best effort; the job goes on
                logger.warning("progress callback dropped: %s", type(error).__name__)
            with self._wake:
                # Sleep out the interval unless closed; a new stage still waits its turn.
                self._wake.wait_for(lambda: self._closed, timeout=self._interval_s)

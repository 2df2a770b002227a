"""Throttled progress callbacks that never slow the render down.

The renderer calls :meth:`ProgressReporter.update` as often as it likes (every denoising step);
the call only stores the newest value. A background thread sends at most one ``job.progress``
per interval, always the newest, so a slow or unreachable receiver costs the render nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from modal_service.contracts import JobProgress

logger = logging.getLogger(__name__)


STAGE_BANDS: dict[str, tuple[float, float]] = {
    "downloading": (0.0, 5.0),
    "checking_inputs": (5.0, 7.0),
    "loading_model": (7.0, 10.0),
    "audio": (10.0, 12.0),
    "conditioning": (12.0, 13.0),
    "denoise": (13.0, 95.0),
    "encode": (95.0, 97.0),
    "uploading": (97.0, 100.0),
}
"""The share of a whole job each stage stands for, in order: ``percent`` is the job's, so it only
grows from stage to stage (the AWS side refuses progress that would go back). Denoising is
where the time goes; the bands are a fair split of a render, not a measurement."""


def job_percent(stage: str, step: int, total: int) -> float:
    """The job's completion in percent at ``step`` of ``total`` in ``stage``."""
    start, end = STAGE_BANDS.get(stage, (0.0, 0.0))
    fraction = step / total if total else 0.0
    return round(start + (end - start) * fraction, 1)


class Pace:
    """Seconds left in the denoise stage, from its measured pace.

    The denoise steps of every clip count as one stage (``step`` of ``clips x steps``), so the
    time per step measured since the first one includes each finished clip's conditioning,
    decode and encode: the estimate holds for long videos, where those add up. Before two steps
    have been timed there is no pace, and no estimate is made up.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: tuple[int, float] | None = None

    def remaining_s(self, stage: str, step: int, total: int) -> float | None:
        if stage != "denoise" or not total:
            return 0.0 if stage == "encode" else None
        now = self._clock()
        if self._first is None or step < self._first[0]:
            self._first = (step, now)
            return None
        done = step - self._first[0]
        if done < 1:
            return None
        return round((now - self._first[1]) / done * (total - step), 1)


class ProgressReporter:
    def __init__(
        self, job_id: str, send: Callable[[JobProgress], None], *, interval_s: float
    ) -> None:
        self._job_id = job_id
        self._send = send
        self._interval_s = interval_s
        self._pending: JobProgress | None = None
        self._pace = Pace()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="progress-callbacks", daemon=True)
        self._thread.start()

    def update(self, stage: str, step: int, total: int) -> None:
        """Record the newest progress (cheap; callable from any thread)."""
        total = max(total, 0)
        step = min(max(step, 0), total) if total else max(step, 0)
        percent = job_percent(stage, step, total)
        event = JobProgress(
            job_id=self._job_id,
            stage=stage[:64],
            step=step,
            total=total,
            percent=percent,
            remaining_s=self._pace.remaining_s(stage, step, total),
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

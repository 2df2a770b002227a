"""Jobs as local worker subprocesses: the developer stack's stand-in for Modal.

Each job runs ``python -m modal_service.worker`` in its own process, so a crash, a leak or a
cancel never touches the API process. At most ``max_workers`` run at once; the rest wait in
order (``max_workers=0`` accepts jobs and never starts them, for tests of the AWS side that
play the worker themselves). The worker's environment is the API's minus every ``AWS_*``
variable: the worker must work from the pre-signed URLs alone, as on Modal (and refuses to start
otherwise).

Cancel sends SIGTERM (the worker reports itself cancelled and cleans up) and SIGKILL after a
grace period.

Every worker of a runner shares one checkpoint directory (``MULTITALK_CHECKPOINT_DIR``, by
default ``checkpoints/`` in the runner's directory), so a job run again after its worker was
killed resumes after its last finished clip, as a Modal retry does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from modal_service.contracts import (
    CallState,
    CreateJobRequest,
    ErrorCode,
    JobError,
    JobStatusResponse,
)
from modal_service.runner.base import CallNotFound, running, status_from_outcome
from modal_service.worker.outcome import JobOutcome

logger = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]


def worker_environment(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: ``base`` without any ``AWS_*`` variable, plus ``overrides``."""
    env = {name: value for name, value in base.items() if not name.upper().startswith("AWS_")}
    env.update(overrides)
    env.setdefault("MODAL_SERVICE_MODE", "local")
    return env


@dataclass
class _Call:
    call_id: str
    request_json: bytes
    outcome_path: Path
    log_path: Path
    tmp_dir: Path
    """The worker's temporary files; removed when it ends, even if it was killed."""
    process: subprocess.Popen[bytes] | None = None
    cancel_requested_at: float | None = None
    final: JobStatusResponse | None = None


class LocalRunner:
    def __init__(
        self,
        *,
        max_workers: int = 1,
        worker_env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        python: str = sys.executable,
        kill_grace_s: float = 10.0,
        poll_interval_s: float = 0.1,
    ) -> None:
        self._max_workers = max_workers
        self._owns_dir = work_dir is None
        self._dir = Path(work_dir or tempfile.mkdtemp(prefix="multitalk-runner-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._env = worker_environment(
            os.environ,
            {"MULTITALK_CHECKPOINT_DIR": str(self._dir / "checkpoints"), **(worker_env or {})},
        )
        self._python = python
        self._kill_grace_s = kill_grace_s
        self._poll_interval_s = poll_interval_s
        self._calls: dict[str, _Call] = {}
        self._call_by_job: dict[str, str] = {}
        self._queue: deque[_Call] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._pump_thread = threading.Thread(target=self._pump_forever, daemon=True)
        self._pump_thread.start()

    # --- the JobRunner interface -----------------------------------------------------------

    def submit(self, request: CreateJobRequest) -> str:
        call_id = f"lc-{uuid.uuid4().hex}"
        call = _Call(
            call_id=call_id,
            request_json=request.model_dump_json().encode("utf-8"),
            outcome_path=self._dir / f"{call_id}.outcome.json",
            log_path=self._dir / f"{call_id}.log",
            # Under the configured temporary directory, if any, one directory per call.
            tmp_dir=Path(self._env.get("MULTITALK_WORKER_TMP_DIR") or self._dir) / call_id,
        )
        with self._lock:
            if self._closed:
                raise RuntimeError("the runner is closed")
            if request.job_id in self._call_by_job:  # a retried submission
                return self._call_by_job[request.job_id]
            self._call_by_job[request.job_id] = call_id
            self._calls[call_id] = call
            self._queue.append(call)
            self._lock.notify_all()
        return call_id

    def status(self, call_id: str) -> JobStatusResponse:
        with self._lock:
            call = self._get(call_id)
            self._pump_locked()
            return call.final or running(call_id)

    def cancel(self, call_id: str) -> JobStatusResponse:
        with self._lock:
            call = self._get(call_id)
            self._pump_locked()
            if call.final is not None:
                return call.final
            if call.process is None:  # still queued: it never starts
                self._queue.remove(call)
                call.final = JobStatusResponse(call_id=call_id, state=CallState.CANCELLED)
                return call.final
            if call.cancel_requested_at is None:
                call.cancel_requested_at = time.monotonic()
                call.process.terminate()
            return JobStatusResponse(call_id=call_id, state=CallState.CANCELLED)

    def worker_pid(self, call_id: str) -> int | None:
        """The worker process id while it runs (tests inspect its environment)."""
        with self._lock:
            call = self._get(call_id)
            if call.process is None or call.final is not None:
                return None
            return call.process.pid

    def close(self) -> None:
        """Stop every worker and what it started (SIGTERM to its process group, SIGKILL after
        the kill grace) and remove the runner's files. Idempotent."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            running = [c for c in self._calls.values() if c.process and not c.final]
            self._lock.notify_all()
        for call in running:
            _signal_group(call.process, signal.SIGTERM)
        deadline = time.monotonic() + self._kill_grace_s
        for call in running:
            try:
                call.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(call.process, signal.SIGKILL)
                call.process.wait()
            shutil.rmtree(call.tmp_dir, ignore_errors=True)
        self._pump_thread.join(timeout=5)
        if self._owns_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    # --- the pump: reap finished workers, escalate cancels, start queued jobs --------------

    def _get(self, call_id: str) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise CallNotFound(call_id)
        return call

    def _pump_forever(self) -> None:
        with self._lock:
            while not self._closed:
                self._pump_locked()
                self._lock.wait(timeout=self._poll_interval_s)

    def _pump_locked(self) -> None:
        active = 0
        for call in self._calls.values():
            if call.process is None or call.final is not None:
                continue
            code = call.process.poll()
            if code is None:
                active += 1
                if (
                    call.cancel_requested_at is not None
                    and time.monotonic() - call.cancel_requested_at > self._kill_grace_s
                ):
                    _signal_group(call.process, signal.SIGKILL)
                continue
            call.final = self._finish(call, code)
            self._lock.notify_all()
        while self._queue and active < self._max_workers and not self._closed:
            self._start(self._queue.popleft())
            active += 1

    def _start(self, call: _Call) -> None:
        call.tmp_dir.mkdir()
        with call.log_path.open("wb") as log:
            call.process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
                [
                    self._python,
                    "-m",
                    "modal_service.worker",
                    "--outcome",
                    str(call.outcome_path),
                    "--call-id",
                    call.call_id,
                ],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=_REPO_ROOT,
                env={**self._env, "MULTITALK_WORKER_TMP_DIR": str(call.tmp_dir)},
                start_new_session=True,
            )
        assert call.process.stdin is not None
        # The request (with its callback secret) goes through a pipe, never to disk.
        try:
            call.process.stdin.write(call.request_json)
            call.process.stdin.close()
        except BrokenPipeError:
            logger.warning("worker for %s exited before reading its request", call.call_id)

    def _finish(self, call: _Call, exit_code: int) -> JobStatusResponse:
        # A worker cleans up after itself unless it was killed; then this is the only chance.
        shutil.rmtree(call.tmp_dir, ignore_errors=True)
        try:
            outcome = JobOutcome.model_validate_json(call.outcome_path.read_bytes())
        except (OSError, ValidationError):
            outcome = None
        if outcome is not None:
            return status_from_outcome(call.call_id, outcome)
        if call.cancel_requested_at is not None:
            return JobStatusResponse(call_id=call.call_id, state=CallState.CANCELLED)
        logger.error("worker for %s exited with %d and no outcome", call.call_id, exit_code)
        return JobStatusResponse(
            call_id=call.call_id,
            state=CallState.FAILED,
            error=JobError(
                code=ErrorCode.INTERNAL,
                message=f"the worker process exited with status {exit_code} without an outcome",
                retryable=True,
            ),
        )


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Each worker leads its own session (with ffmpeg beneath it): signal all of it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)

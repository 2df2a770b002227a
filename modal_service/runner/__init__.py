"""Job runners: where the internal API sends jobs (Modal GPU calls, or local subprocesses)."""

from __future__ import annotations

from modal_service.runner.base import CallNotFound, JobRunner, RunnerUnavailable
from modal_service.runner.local import LocalRunner

__all__ = ["CallNotFound", "JobRunner", "LocalRunner", "RunnerUnavailable"]

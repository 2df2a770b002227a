"""The GPU worker: one job from pre-signed inputs to a pre-signed output, with signed callbacks.

Plain Python, importable and testable without Modal: ``app.py`` calls :func:`run_job` inside a
GPU container, the local runner runs ``python -m modal_service.worker`` in a subprocess.
"""

from __future__ import annotations

from modal_service.worker.control import JobControl
from modal_service.worker.errors import WorkerError
from modal_service.worker.job import run_job
from modal_service.worker.outcome import JobOutcome
from modal_service.worker.renderers import RendererCache

__all__ = ["JobControl", "JobOutcome", "RendererCache", "WorkerError", "run_job"]

"""Errors of the batch handlers: each carries the stable code reported with SendTaskFailure."""

from __future__ import annotations


class BatchError(Exception):
    """The batch (or one of its items) cannot proceed; ``code`` becomes the task's error name."""

    def __init__(self, message: str, *, code: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable

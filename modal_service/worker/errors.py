"""Worker failures, each with a stable code and whether a retry could help."""

from __future__ import annotations

from modal_service.contracts import ErrorCode, JobError

_MAX_MESSAGE = 1000


class WorkerError(Exception):
    """A job failure to report as ``job.failed``. Messages never contain URLs or secrets."""

    def __init__(self, code: ErrorCode, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message[:_MAX_MESSAGE]
        self.retryable = retryable

    def to_job_error(self) -> JobError:
        return JobError(code=self.code, message=self.message, retryable=self.retryable)


class UrlExpiredError(WorkerError):
    """A pre-signed URL answered 403 because it expired; the job may ask once for fresh ones."""

    def __init__(self, what: str) -> None:
        super().__init__(
            ErrorCode.URL_EXPIRED,
            f"the pre-signed URL for {what} has expired",
            retryable=True,
        )

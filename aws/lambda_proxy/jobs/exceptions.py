"""Errors of the jobs feature."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import ConflictError, NotFoundError, ProxyError


class JobNotFoundError(NotFoundError):
    """No job with this id for this tenant."""

    code = "job_not_found"


class JobFinalError(ConflictError):
    """The job already reached a final state, which never changes."""

    code = "job_final"


class SubmitError(ProxyError):
    """Submitting a job failed; ``code`` says why (stable, see :mod:`.submit`).

    ``job_id`` is set when a job record was created before the failure (it is then ``failed``
    in the table with the same code), so callers and batch items can point at it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        title: str,
        job_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        extra = {"job_id": job_id} if job_id else {}
        super().__init__(message, code=code, status=status, extra=extra)
        self.title = title  # the cause's, so a refusal never reads "Internal error"
        self.job_id = job_id
        self.retryable = retryable

"""Errors of the tenants feature."""

from __future__ import annotations

from aws.lambda_proxy.jobs.exceptions import SubmitError


class QuotaExceededError(SubmitError):
    """A tenant limit refused a submission; nothing was written. ``retry_after_s`` is when a
    retry may pass (the ``Retry-After`` header; a batch item waits that long)."""

    def __init__(self, message: str, *, limit: str, retry_after_s: int) -> None:
        super().__init__(
            message,
            code="tenant_quota_exceeded",
            status=429,
            title="Tenant quota exceeded",
            retryable=True,
        )
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.extra.update(limit=limit, retry_after_s=retry_after_s)

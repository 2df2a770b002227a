"""Errors that belong to no single feature, and the base every feature error derives from.

Each error carries a stable machine ``code`` (shown to callers in problem+json and used in
metrics) and an HTTP ``status``; the message is for humans and never contains a secret.
"""

from __future__ import annotations

from typing import Any


class ProxyError(Exception):
    """Base of every expected failure in the proxy. Unexpected ones are bugs (500)."""

    status: int = 500
    code: str = "internal"
    title: str = "Internal error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra or {}


class ConfigurationError(ProxyError):
    """The Lambda's environment is incomplete or invalid (a deployment bug)."""

    status = 500
    code = "configuration_invalid"
    title = "Service misconfigured"


class BadRequestError(ProxyError):
    """The request is syntactically fine but asks for something the API refuses."""

    status = 422
    code = "request_invalid"
    title = "Request refused"


class ForbiddenError(ProxyError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFoundError(ProxyError):
    """The resource does not exist for this caller (other tenants' jobs look missing too)."""

    status = 404
    code = "not_found"
    title = "Not found"


class ConflictError(ProxyError):
    """The resource's state does not allow the request."""

    status = 409
    code = "conflict"
    title = "Conflict"


class UpstreamError(ProxyError):
    """A dependency (Modal, S3, DynamoDB) failed in a way the caller can retry."""

    status = 503
    code = "upstream_unavailable"
    title = "Dependency unavailable"

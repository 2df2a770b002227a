"""Errors of the caller-webhook feature."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import BadRequestError


class WebhookUrlRefusedError(BadRequestError):
    """The webhook URL is not https, or names/resolves to an address we never call."""

    code = "webhook_url_refused"

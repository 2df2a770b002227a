"""Errors of the Modal client."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import ProxyError, UpstreamError


class ModalUnavailableError(UpstreamError):
    """Modal answered 5xx or not at all, through every retry."""

    code = "modal_unavailable"


class ModalRejectedError(ProxyError):
    """Modal refused the request (4xx): a contract or credential problem, not worth retrying."""

    status = 502
    code = "modal_rejected"
    title = "Render service refused the job"

"""Errors of the callback feature."""

from __future__ import annotations

from aws.lambda_proxy.exceptions import BadRequestError, ProxyError


class SignatureInvalidError(ProxyError):
    """Missing or wrong Standard Webhooks headers/signature, or a timestamp out of tolerance.

    Codes: ``signature_headers_missing``, ``signature_invalid``, ``timestamp_out_of_tolerance``.
    """

    status = 401
    code = "signature_invalid"
    title = "Signature refused"


class CallbackInvalidError(BadRequestError):
    """The (authentic) callback body is not a known event for this job."""

    code = "callback_invalid"

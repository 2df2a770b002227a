"""Which URLs the GPU side may touch.

The contract (:mod:`modal_service.contracts`) already refuses ``s3://`` URLs and anything that
looks like an AWS credential. This module adds the policy that depends on where the service
runs: on Modal every URL must be ``https``; in local mode (the developer stack on 127.0.0.1)
plain ``http`` is allowed, but only to a loopback address, so a local run can never be pointed
at a plaintext endpoint elsewhere.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from modal_service.contracts import CreateJobRequest, JobInputs, JobOutput


class UrlPolicyError(ValueError):
    """A URL that the service refuses to fetch from or send to."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, field: str, allow_loopback_http: bool) -> None:
    """Raise :class:`UrlPolicyError` unless ``url`` may be used by the worker."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlPolicyError(f"{field}: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlPolicyError(f"{field}: credentials in the URL's authority are refused")
    if parts.fragment:
        raise UrlPolicyError(f"{field}: a URL fragment is refused")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_loopback_http and _is_loopback(host):
        return
    if parts.scheme == "http" and allow_loopback_http:
        raise UrlPolicyError(f"{field}: plain http is allowed only to a loopback address")
    raise UrlPolicyError(f"{field}: only https URLs are accepted")


def check_transfer_urls(inputs: JobInputs, output: JobOutput, *, allow_loopback_http: bool) -> None:
    """Apply :func:`check_url` to every pre-signed URL of a job (also to refreshed ones)."""
    for index, url in enumerate(inputs.audio_urls):
        check_url(url, field=f"inputs.audio_urls[{index}]", allow_loopback_http=allow_loopback_http)
    for field in ("image_url", "video_url"):  # exactly one of them is set
        url = getattr(inputs, field)
        if url is not None:
            check_url(url, field=f"inputs.{field}", allow_loopback_http=allow_loopback_http)
    check_url(output.put_url, field="output.put_url", allow_loopback_http=allow_loopback_http)


def check_request_urls(request: CreateJobRequest, *, allow_loopback_http: bool) -> None:
    """Apply :func:`check_url` to every URL a job request carries."""
    check_transfer_urls(request.inputs, request.output, allow_loopback_http=allow_loopback_http)
    check_url(request.callback.url, field="callback.url", allow_loopback_http=allow_loopback_http)

"""The issuer's signing keys, fetched over HTTPS and cached for the container's lifetime.

Keys are refreshed every ``ttl_s``. A token with an unknown ``kid`` triggers a refetch (the
issuer may have rotated keys), but at most once per ``cooldown_s``: otherwise a flood of
tokens with random ``kid`` values would turn every request into a JWKS download. When a refresh
fails, keys already cached keep working; with none cached, verification fails closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from aws.lambda_proxy.auth.exceptions import JwksUnavailableError, TokenInvalidError
from aws.lambda_proxy.exceptions import ConfigurationError

MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 32
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _fetch(url: str, timeout_s: float) -> dict[str, Any]:
    answer = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    answer.raise_for_status()
    if len(answer.content) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return answer.json()


class JwksCache:
    """``kid`` -> key lookups backed by one JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        cooldown_s: float,
        timeout_s: float = 3.0,
        fetch: Callable[[str, float], dict[str, Any]] = _fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ConfigurationError(
                "JWT_JWKS_URL must be https (http only for a loopback dev issuer)"
            )
        self._url = url
        self._ttl_s = ttl_s
        self._cooldown_s = cooldown_s
        self._timeout_s = timeout_s
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0
        """How many times the JWKS was downloaded (observability; tests read it)."""

    def get(self, kid: str) -> PyJWK:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._ttl_s:
                self._refresh(now)
            key = self._keys.get(kid)
            if key is None and (
                self._attempted_at is None or now - self._attempted_at >= self._cooldown_s
            ):
                self._refresh(now)
                key = self._keys.get(kid)
        if key is None:
            raise TokenInvalidError("the token's signing key is unknown", code="token_key_unknown")
        return key

    def _refresh(self, now: float) -> None:
        if self._attempted_at is not None and now - self._attempted_at < min(1.0, self._cooldown_s):
            return  # a refresh just happened (or just failed): do not hammer the issuer
        self._attempted_at = now
        self.fetch_count += 1
        try:
            document = self._fetch(self._url, self._timeout_s)
            keys = PyJWKSet.from_dict(document).keys[:MAX_KEYS]
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
            if not self._keys:
                raise JwksUnavailableError(
                    f"the issuer's keys could not be fetched ({type(exc).__name__})"
                ) from None
            return  # keep serving the keys we have
        self._keys = {key.key_id: key for key in keys if key.key_id and _is_signing_key(key)}
        self._fetched_at = now


def _is_signing_key(key: PyJWK) -> bool:
    return key.public_key_use in (None, "sig")

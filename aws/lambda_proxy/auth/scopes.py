"""Scope checks on a verified caller.

Apart from :mod:`.verifier` so that the API handler can import it at cold start without pyjwt
and its crypto backend, which only the first verification needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws.lambda_proxy.auth.exceptions import ScopeMissingError

if TYPE_CHECKING:
    from aws.lambda_proxy.auth.models import TenantContext


def require_scope(context: TenantContext, scope: str) -> None:
    """Raise 403 ``insufficient_scope`` unless the caller's token grants ``scope``."""
    if scope not in context.scopes:
        raise ScopeMissingError(scope)

"""Which S3 locations a tenant may read inputs from and write outputs to.

A location is allowed when it lies under one of the tenant's configured ``s3://bucket/prefix/``
entries. Prefixes end in ``/`` (checked in config), so ``tenants/acme/`` never admits
``tenants/acme-evil/``; keys were already refused if they contain ``..`` segments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws.lambda_proxy.storage.exceptions import LocationForbiddenError
from aws.lambda_proxy.storage.s3_url import parse_s3_url

if TYPE_CHECKING:
    from aws.lambda_proxy.config import TenantConfig
    from aws.lambda_proxy.jobs.models import S3Location


def _allowed(location: S3Location, prefixes: list[str]) -> bool:
    for prefix in prefixes:
        allowed = parse_s3_url(prefix + "x", what="configured prefix")
        allowed_key_prefix = allowed.key[:-1]
        if location.bucket == allowed.bucket and location.key.startswith(allowed_key_prefix):
            return True
    return False


class TenantLocations:
    """The read/write allow-lists of one tenant."""

    def __init__(self, tenant_id: str, config: TenantConfig) -> None:
        self.tenant_id = tenant_id
        self._config = config

    def check_read(self, location: S3Location) -> None:
        if not _allowed(location, self._config.read):
            raise LocationForbiddenError(
                f"tenant {self.tenant_id!r} may not read {location.url}; allowed: "
                + ", ".join(self._config.read)
            )

    def check_write(self, location: S3Location) -> None:
        if not _allowed(location, self._config.write):
            raise LocationForbiddenError(
                f"tenant {self.tenant_id!r} may not write {location.url}; allowed: "
                + ", ".join(self._config.write)
            )

    @property
    def default_reference_image(self) -> str | None:
        return self._config.default_reference_image

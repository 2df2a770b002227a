"""Who is calling: the tenant and scopes taken from a verified token (or a batch execution)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from aws.lambda_proxy.config import TENANT_PATTERN

SCOPE_READ = "videos:read"
SCOPE_WRITE = "videos:write"


class TenantContext(BaseModel):
    """The caller after authentication. Batch submissions build one from the execution input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(pattern=TENANT_PATTERN)
    subject: str = Field(default="", max_length=256)
    scopes: frozenset[str] = frozenset()

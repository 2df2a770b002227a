"""What one tenant may use: the limits a deployment sets per tenant (Terraform ``tenants`` and
``tenant_limits``), read by :mod:`aws.lambda_proxy.config` and enforced by :mod:`.quota`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TenantLimits(BaseModel):
    """Per-tenant limits; a tenant without its own gets the deployment's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active: int = Field(default=10, ge=1, le=10_000)
    """Jobs queued or processing at once (batch items over it wait; API calls get 429)."""
    per_minute: int = Field(default=60, ge=1, le=100_000)
    """Submissions admitted per UTC minute."""
    gpu_seconds_per_day: float | None = Field(default=None, gt=0)
    """GPU-seconds of finished jobs per UTC day; None: no daily budget."""

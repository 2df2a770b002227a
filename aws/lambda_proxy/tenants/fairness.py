"""The fair share of the GPUs: how many jobs one tenant may hold while others want some too.

A deployment runs ``gpu_slots`` jobs at once (Modal's ``max_containers``). The tenants that
*want* GPUs now are those holding active jobs, those whose batch items are waiting for a slot,
and the one asking. Each may hold ``gpu_slots // wanting`` jobs (at least one) wherever the
deployment stands; beyond its share a tenant gets only spare slots (the deployment below
``gpu_slots``). So a tenant alone takes every slot, and as soon as a second one asks, the first
gets no new slot until it is back under its share: the GPUs shift to the newcomer as the first
tenant's jobs finish, within one job's time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws.lambda_proxy.tenants.usage_table import UsageSnapshot


def wanting_tenants(tenant_id: str, snapshot: UsageSnapshot, *, now_iso: str) -> set[str]:
    """Tenants holding jobs or with batch items waiting, and the one asking."""
    holding = {tenant for tenant, active in snapshot.active.items() if active > 0}
    waiting = {tenant for tenant, until in snapshot.waiting_until.items() if until > now_iso}
    return holding | waiting | {tenant_id}


def fair_share(tenant_id: str, snapshot: UsageSnapshot, *, gpu_slots: int, now_iso: str) -> int:
    """How many active jobs ``tenant_id`` may hold whether or not the deployment is full."""
    return max(1, gpu_slots // len(wanting_tenants(tenant_id, snapshot, now_iso=now_iso)))

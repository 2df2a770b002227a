"""The fair share: the GPU slots divided among the tenants that want GPUs now."""

from __future__ import annotations

from aws.lambda_proxy.tenants.fairness import fair_share
from aws.lambda_proxy.tenants.usage_table import UsageSnapshot

NOW = "2026-12-02T12:00:00.000000Z"
LATER = "2026-12-02T12:00:30.000000Z"
EARLIER = "2026-12-02T11:59:30.000000Z"


def snapshot(active: dict[str, int], waiting: dict[str, str] | None = None) -> UsageSnapshot:
    return UsageSnapshot(
        active=active, waiting_until=waiting or {}, deployment_active=sum(active.values())
    )


def test_a_tenant_alone_may_take_every_slot() -> None:
    assert fair_share("acme", snapshot({"acme": 7, "globex": 0}), gpu_slots=10, now_iso=NOW) == 10


def test_a_newcomer_halves_the_share_of_the_tenant_holding_the_slots() -> None:
    held = snapshot({"acme": 10, "globex": 0})
    assert fair_share("globex", held, gpu_slots=10, now_iso=NOW) == 5
    # acme's next batch item sees globex once globex holds a job or waits for one.
    assert fair_share("acme", snapshot({"acme": 10, "globex": 1}), gpu_slots=10, now_iso=NOW) == 5
    waiting = snapshot({"acme": 10, "globex": 0}, {"globex": LATER})
    assert fair_share("acme", waiting, gpu_slots=10, now_iso=NOW) == 5


def test_a_wait_that_ended_no_longer_counts() -> None:
    stale = snapshot({"acme": 4, "globex": 0}, {"globex": EARLIER})
    assert fair_share("acme", stale, gpu_slots=10, now_iso=NOW) == 10


def test_more_tenants_than_slots_still_get_one_each() -> None:
    crowd = snapshot({f"t{i}": 1 for i in range(5)})
    assert fair_share("t0", crowd, gpu_slots=3, now_iso=NOW) == 1
    assert fair_share("t0", snapshot({"t0": 2, "t1": 1, "t2": 1}), gpu_slots=10, now_iso=NOW) == 3

"""Tenants sharing one deployment: per-tenant limits, their usage counters and the fair share
of the GPUs (see :mod:`.quota`)."""

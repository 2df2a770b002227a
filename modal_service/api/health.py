"""``GET /v1/health``: liveness plus what the service is configured as (no secrets)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from modal_service.config import ServiceSettings
from modal_service.contracts import CONTRACT_VERSION

router = APIRouter(prefix="/v1", tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    mode: Literal["modal", "local"]
    runner: Literal["modal", "local"]
    contract_version: str = CONTRACT_VERSION


@router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    settings: ServiceSettings = request.app.state.settings
    return Health(mode=settings.mode, runner=settings.runner_kind)

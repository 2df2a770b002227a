"""The internal API (Lambda -> Modal): FastAPI routers over a job runner."""

from __future__ import annotations

from modal_service.api.app import create_app, create_app_from_env, runner_from_settings

__all__ = ["create_app", "create_app_from_env", "runner_from_settings"]

"""The internal API's FastAPI application: the same object on Modal and under local uvicorn.

On Modal, ``app.py`` serves it with ``requires_proxy_auth=True``: Modal refuses any request
without the workspace's ``Modal-Key``/``Modal-Secret`` before it reaches this code. Locally the
same check can be switched on (``MODAL_SERVICE_PROXY_KEY``/``_SECRET``) so the AWS side is
exercised with the headers it sends in production.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import Lifespan

from modal_service.api import health, jobs
from modal_service.api.problems import Problem, handle_problem, problem_response
from modal_service.config import ServiceSettings
from modal_service.runner.base import JobRunner

_OPEN_PATHS = {"/v1/health"}


def create_app(
    settings: ServiceSettings, runner: JobRunner, lifespan: Lifespan[FastAPI] | None = None
) -> FastAPI:
    """Build the API around a runner (Modal calls, or local worker subprocesses)."""
    app = FastAPI(
        lifespan=lifespan,
        title="MultiTalk internal API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.runner = runner
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.add_exception_handler(Problem, handle_problem)

    @app.exception_handler(RequestValidationError)
    async def invalid_path(_request: Request, error: RequestValidationError) -> Response:
        # Only path parameters reach here (bodies are parsed by the routes themselves).
        return problem_response(Problem(404, "not_found", "no such call"))

    if settings.mode == "local" and settings.local_proxy_key and settings.local_proxy_secret:
        key, secret = settings.local_proxy_key, settings.local_proxy_secret

        @app.middleware("http")
        async def proxy_auth(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.url.path not in _OPEN_PATHS:
                given_key = request.headers.get("modal-key", "")
                given_secret = request.headers.get("modal-secret", "")
                # Both compared in constant time, and both always compared.
                key_ok = hmac.compare_digest(given_key.encode(), key.encode())
                secret_ok = hmac.compare_digest(given_secret.encode(), secret.encode())
                if not (key_ok and secret_ok):
                    return problem_response(
                        Problem(401, "unauthorized", "missing or invalid Modal-Key/Modal-Secret")
                    )
            return await call_next(request)

    return app


def runner_from_settings(settings: ServiceSettings) -> JobRunner:
    """The runner the settings name; Modal's is imported only when chosen."""
    if settings.runner_kind == "local":
        from modal_service.runner.local import LocalRunner

        # Cancels escalate, and shutdown completes, inside the local stack's stop grace (5 s).
        return LocalRunner(max_workers=settings.max_local_workers, kill_grace_s=3.0)
    from modal_service.runner.modal_runner import ModalRunner

    return ModalRunner(
        app_name=settings.app_name,
        class_name=settings.worker_class,
        registry_name=settings.call_registry,
    )


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory modal_service.api:create_app_from_env`` (local mode).

    The app owns its runner here: shutting the server down stops the runner too, so no local
    worker outlives the API that started it.
    """
    settings = ServiceSettings.from_env()
    runner = runner_from_settings(settings)

    @asynccontextmanager
    async def close_runner_on_shutdown(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(runner.close)

    return create_app(settings, runner, lifespan=close_runner_on_shutdown)

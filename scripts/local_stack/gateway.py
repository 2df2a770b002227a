"""A small local stand-in for API Gateway HTTP APIs: HTTP in, payload-format-2.0 events to the real
Lambda handlers in process, their responses back out.

No emulator here routes API Gateway requests (moto stores configuration only), so end-to-end tests
and the demo use this. It does what the deployed HTTP API does for this product: match a route key,
build the v2 event (headers lower-cased, query string, path parameters, base64 for binary bodies,
``requestContext.http``), call the handler with a Lambda context, and map the result back
(``statusCode``/``headers``/``body``/``isBase64Encoded``, or a bare value as 200 JSON).
JWT checks stay in the Lambda, as the product's default configuration does.

It throttles as the stage Terraform creates does: a token bucket per route (``rate`` tokens a
second, at most ``burst`` saved), the default route settings for every route unless the route
has its own, and ``429 {"message": "Too Many Requests"}`` before any handler runs.
``LOCAL_GATEWAY_THROTTLING`` (JSON of :class:`ThrottlingSettings`) sets the limits.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .config import WEBHOOK_CA_FILE_ENV, WEBHOOK_NETWORKS_ENV

if TYPE_CHECKING:
    from aws.lambda_proxy.webhooks.address_policy import AddressPolicy

Handler = Callable[[dict[str, Any], Any], Any]
_TEXT_TYPES = re.compile(r"^(text/|application/(json|problem\+json|xml|x-www-form-urlencoded))")

PRODUCT_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST /callbacks/{job_id}", "aws.lambda_proxy.handlers.callbacks.handler"),
    ("ANY /{proxy+}", "aws.lambda_proxy.handlers.api.handler"),
)
"""Route keys as Terraform declares them: signed callbacks (no JWT); everything else to the API."""


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_s: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


class RouteThrottle(BaseModel):
    """``throttling_rate_limit`` and ``throttling_burst_limit`` of a stage's route settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit: float = Field(gt=0)
    burst_limit: int = Field(ge=1)


class ThrottlingSettings(BaseModel):
    """The stage's throttling, with Terraform's defaults (``api_throttling``,
    ``callback_throttling`` in terraform/variables.tf)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: RouteThrottle = RouteThrottle(rate_limit=50, burst_limit=100)
    routes: dict[str, RouteThrottle] = {
        "POST /callbacks/{job_id}": RouteThrottle(rate_limit=25, burst_limit=50)
    }

    @classmethod
    def from_env(cls) -> ThrottlingSettings:
        raw = os.environ.get("LOCAL_GATEWAY_THROTTLING")
        return cls.model_validate_json(raw) if raw else cls()


class TokenBucket:
    """Starts full; each request takes a token; tokens come back at ``rate_limit`` a second."""

    def __init__(self, limits: RouteThrottle, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = limits.rate_limit
        self._capacity = float(limits.burst_limit)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def load_handler(path: str) -> Handler:
    """``package.module.function`` (a Lambda handler setting) -> the function."""
    module_name, function_name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler_path: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, route_key: str, handler_path: str) -> Route:
        method, template = route_key.split(" ", 1)
        regex = ""
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return cls(method, template, handler_path, re.compile(f"^{regex}$"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.match(path)
        return found.groupdict() if found else None


class LocalGateway:
    """An ASGI app mapping route keys to handler import paths; serve it with uvicorn."""

    def __init__(
        self,
        routes: tuple[tuple[str, str], ...] = PRODUCT_ROUTES,
        throttling: ThrottlingSettings | None = None,
    ) -> None:
        # API Gateway picks the most specific route; declaration order is ours to keep that way.
        self.routes = [Route.parse(key, handler) for key, handler in routes]
        throttling = throttling or ThrottlingSettings()
        self._buckets = {
            route.key: TokenBucket(throttling.routes.get(route.key, throttling.default))
            for route in self.routes
        }
        self._handlers: dict[str, Handler] = {}
        self._locks: dict[str, threading.Lock] = {}

    def _handler(self, path: str) -> Handler:
        if path not in self._handlers:
            self._handlers[path] = load_handler(path)
        return self._handlers[path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        for route in self.routes:
            parameters = route.match(request.method, request.url.path)
            if parameters is not None:
                break
        else:
            await _json(404, {"message": "Not Found"})(scope, receive, send)
            return
        if not self._buckets[route.key].take():
            await _json(429, {"message": "Too Many Requests"})(scope, receive, send)
            return
        event = build_event(request, body, route, parameters)
        context = LambdaContext(function_name=route.handler_path.split(".")[-2])
        result = await run_in_threadpool(self._invoke, route.handler_path, event, context)
        await to_response(result)(scope, receive, send)

    def _invoke(self, handler_path: str, event: dict[str, Any], context: LambdaContext) -> Any:
        # A Lambda execution environment handles one event at a time, and handler modules keep
        # per-invocation state in globals (powertools resolvers do): one lock per function.
        with self._locks.setdefault(handler_path, threading.Lock()):
            return self._handler(handler_path)(event, context)


def build_event(
    request: Request, body: bytes, route: Route, parameters: dict[str, str]
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-format-2.0 event for ``request``."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    content_type = headers.get("content-type", "")
    is_text = not body or bool(_TEXT_TYPES.match(content_type))
    now = time.time()
    query: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        query[name] = f"{query[name]},{value}" if name in query else value
    client = request.client
    return {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": request.url.path,
        "rawQueryString": request.url.query,
        "cookies": [f"{k}={v}" for k, v in request.cookies.items()] or None,
        "headers": headers,
        "queryStringParameters": query or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": request.url.hostname or "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": request.url.path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": client.host if client else "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": (body.decode() if is_text else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": not is_text,
    }


def to_response(result: Any) -> Response:
    """Map a handler's return value back to HTTP the way API Gateway does for format 2.0."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return _json(200, result)
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(content=content, status_code=int(result["statusCode"]))
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.append(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    return response


def _json(status: int, payload: Any) -> Response:
    return Response(content=json.dumps(payload), status_code=status, media_type="application/json")


def create_app() -> LocalGateway:
    """Factory for ``uvicorn --factory scripts.local_stack.gateway:create_app``.

    The handlers run with the product's own services, so caller webhooks get the production
    address policy: public addresses only, ports 443 and 8443, publicly trusted TLS. Local
    receivers listen on loopback with the stack's own CA; a gateway meant to reach one is started
    with ``LOCAL_WEBHOOK_ALLOWED_NETWORKS`` (and ``LOCAL_WEBHOOK_CA_FILE``) set, which only
    :func:`scripts.local_stack.product.lambda_environment` with ``loopback_webhooks=True`` does.
    Then the policy also admits those networks on any port and trusts that CA; https stays
    mandatory and every other refusal of the default policy still holds.
    """
    networks = os.environ.get(WEBHOOK_NETWORKS_ENV)
    if networks:
        from aws.lambda_proxy.config import Settings
        from aws.lambda_proxy.services import Services, set_services

        trust = _trusting(os.environ.get(WEBHOOK_CA_FILE_ENV))
        set_services(
            Services(
                Settings.from_env(),
                webhook_policy=loopback_webhook_policy(networks),
                webhook_ssl_context=trust,
            )
        )
    return LocalGateway(throttling=ThrottlingSettings.from_env())


def loopback_webhook_policy(networks: str) -> AddressPolicy:
    """The production policy widened to ``networks`` (comma-separated), on any port: local
    receivers listen wherever the OS put them."""
    from aws.lambda_proxy.webhooks.address_policy import AddressPolicy

    return AddressPolicy(
        allowed_networks=[network.strip() for network in networks.split(",") if network.strip()],
        allowed_ports=None,
    )


def _trusting(ca_file: str | None) -> ssl.SSLContext:
    if not ca_file:
        # A widened policy without the stack's CA could reach no local receiver: say so at start.
        raise RuntimeError(f"{WEBHOOK_NETWORKS_ENV} needs {WEBHOOK_CA_FILE_ENV} (the stack's CA)")
    return ssl.create_default_context(cafile=ca_file)

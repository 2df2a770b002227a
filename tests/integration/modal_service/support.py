"""Real local servers for the Modal service's tests: a uvicorn thread, a callback receiver that
verifies every Standard Webhooks signature, a misbehaving input server, and job builders that
pre-sign URLs against the strict local S3 (nanio) like the AWS side does."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from modal_service.contracts import (
    CALLBACK_EVENT_ADAPTER,
    CreateJobRequest,
    GenerationParams,
    JobInputs,
    JobOutput,
    PresetName,
    UrlRefreshResponse,
)
from scripts.local_stack import StackInfo
from scripts.samples import draw_portrait, write_speech_wav


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_job_id() -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "job_" + "".join(secrets.choice(alphabet) for _ in range(26))


class CallbackReceiver:
    """The AWS side's callback endpoint, reduced to what the worker relies on.

    Every request is verified with the job's secret; a bad signature is answered 401 and
    counted. ``job.url_refresh`` is answered with ``refresh()``. ``fail_first`` answers 503 to
    that many requests first (a receiver that is briefly unhealthy).
    """

    def __init__(self, secret: str, *, port: int | None = None) -> None:
        self.webhook = Webhook(secret)
        self.events: list[Any] = []
        self.message_ids: list[str] = []
        self.bad_signatures = 0
        self.requests = 0
        self.fail_first = 0
        self.refresh: Callable[[], UrlRefreshResponse] | None = None
        self._lock = threading.Lock()
        app = FastAPI()
        app.add_api_route("/callbacks", self._receive, methods=["POST"])
        self.server = ServerThread(app, port)
        self.url = f"{self.server.url}/callbacks"

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.requests += 1
            if self.fail_first > 0:
                self.fail_first -= 1
                return Response(status_code=503)
        try:
            self.webhook.verify(body, dict(request.headers))
        except WebhookVerificationError:
            with self._lock:
                self.bad_signatures += 1
            return Response(status_code=401)
        event = CALLBACK_EVENT_ADAPTER.validate_json(body)
        with self._lock:
            self.events.append(event)
            self.message_ids.append(request.headers["webhook-id"])
        if event.type == "job.url_refresh":
            if self.refresh is None:
                return Response(status_code=404)
            fresh = await asyncio.to_thread(self.refresh)
            return Response(fresh.model_dump_json(), media_type="application/json")
        return Response(status_code=204)

    def types(self) -> list[str]:
        with self._lock:
            return [event.type for event in self.events]

    def final(self) -> Any:
        with self._lock:
            finals = [e for e in self.events if e.type in ("job.succeeded", "job.failed")]
        assert len(finals) == 1, f"expected one final event, got {self.types()}"
        return finals[0]

    def wait_final(self, timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(t in ("job.succeeded", "job.failed") for t in self.types()):
                return self.final()
            time.sleep(0.05)
        raise AssertionError(f"no final callback within {timeout_s} s: {self.types()}")


class S3Objects:
    """Puts objects into the strict local S3 and pre-signs URLs for them (the AWS side's role)."""

    def __init__(self, stack: StackInfo) -> None:
        self.stack = stack
        self.client = stack.s3_client()
        self.bucket = stack.buckets["data"]
        self.prefix = f"tests/modal-service/{uuid.uuid4().hex}"

    def put(self, name: str, body: bytes) -> str:
        key = f"{self.prefix}/{name}"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def get_url(self, key: str, expires_s: int = 300) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
            )
        )

    def put_url(self, key: str, expires_s: int = 300) -> str:
        return str(
            self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": "video/mp4"},
                ExpiresIn=expires_s,
            )
        )

    def read(self, key: str) -> tuple[bytes, str]:
        answer = self.client.get_object(Bucket=self.bucket, Key=key)
        return answer["Body"].read(), answer["ContentType"]

    def exists(self, key: str) -> bool:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key)
        return bool(listing.get("Contents"))


def sample_media(directory: Path) -> tuple[bytes, bytes]:
    """A short synthetic speech WAV and a drawn portrait PNG (no downloads)."""
    wav = write_speech_wav(directory / "speech.wav", duration_s=1.0)
    png = draw_portrait(directory / "portrait.png", size=(256, 256))
    return wav.read_bytes(), png.read_bytes()


def job_request(
    *,
    audio_urls: list[str],
    image_url: str | None = None,
    put_url: str,
    callback_url: str,
    secret: str,
    deadline_s: float = 300.0,
    max_audio_bytes: int = 100 * 1024 * 1024,
    max_duration_s: float = 1.0,
    video_url: str | None = None,
    video_name: str | None = None,
    model: PresetName = "tiny",
) -> CreateJobRequest:
    return CreateJobRequest(
        job_id=new_job_id(),
        inputs=JobInputs(
            audio_urls=audio_urls,
            image_url=image_url,
            video_url=video_url,
            video_name=video_name,
            max_audio_bytes=max_audio_bytes,
        ),
        output=JobOutput(put_url=put_url),
        params=GenerationParams(model=model, max_duration_s=max_duration_s, seed=1, sample_steps=2),
        callback={"url": callback_url, "secret": secret},
        deadline=datetime.now(UTC) + timedelta(seconds=deadline_s),
    )


class FaultyInputs:
    """An input server that misbehaves on purpose, for what the strict S3 never does by itself:
    stalling, cutting a body short, failing transiently, streaming without a length."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.requests: dict[str, int] = {}
        self.server = ServerThread(self._app)

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.requests[path] = self.requests.get(path, 0) + 1
        if path == "/stall":
            await asyncio.sleep(3)
            await self._send(send, 200, self.payload)
        elif path == "/truncated":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(self.payload) + 1000).encode())],
                }
            )
            await send({"type": "http.response.body", "body": self.payload[:10]})
        elif path == "/flaky" and self.requests[path] == 1:
            await self._send(send, 503, b"<Error><Code>SlowDown</Code></Error>")
        elif path == "/flaky":
            await self._send(send, 200, self.payload)
        elif path == "/unsized":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(4):
                await send({"type": "http.response.body", "body": self.payload, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            await self._send(send, 404, b"<Error><Code>NoSuchKey</Code></Error>")

    @staticmethod
    async def _send(send: Any, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def url(self, path: str) -> str:
        return f"{self.server.url}{path}?X-Amz-Signature=stand-in"

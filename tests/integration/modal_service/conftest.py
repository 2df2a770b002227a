"""Fixtures for the Modal service's integration tests (strict local S3, real HTTP servers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modal_service.config import WorkerSettings
from scripts.local_stack import StackInfo
from tests.integration.modal_service.support import (
    CallbackReceiver,
    S3Objects,
    new_secret,
    sample_media,
)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(wav bytes, png bytes)."""
    return sample_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
def objects(stack: StackInfo) -> S3Objects:
    return S3Objects(stack)


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def receiver_factory(secret: str) -> Iterator[Callable[..., CallbackReceiver]]:
    """Make receivers (started or not); all are stopped at the end."""
    made: list[CallbackReceiver] = []

    def make(*, start: bool = True, port: int | None = None) -> CallbackReceiver:
        receiver = CallbackReceiver(secret, port=port)
        made.append(receiver)
        if start:
            receiver.server.start()
        return receiver

    yield make
    for receiver in made:
        receiver.server.stop()


@pytest.fixture
def receiver(receiver_factory: Callable[..., CallbackReceiver]) -> CallbackReceiver:
    return receiver_factory()


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "worker-tmp"
    path.mkdir()
    return path


@pytest.fixture
def worker_settings(work_dir: Path) -> WorkerSettings:
    """Local mode with short timeouts and backoffs, so fault tests take seconds."""
    return WorkerSettings(
        mode="local",
        tmp_dir=work_dir,
        transfer_attempts=2,
        transfer_backoff_s=0.05,
        connect_timeout_s=2.0,
        read_timeout_s=1.0,
        progress_interval_s=0.2,
        callback_timeout_s=2.0,
        callback_initial_delay_s=0.1,
        callback_max_delay_s=0.5,
        final_callback_window_s=30.0,
    )

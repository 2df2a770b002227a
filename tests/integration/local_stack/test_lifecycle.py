"""Bringing a stack up and down: health, persistence, clean shutdown, clear start failures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scripts.local_stack import LocalStack, StackStartError, processes


def test_down_stops_every_process_and_keeps_data(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path / "state")
    info = stack.up()
    try:
        assert set(info.pids) == {"s3", "aws", "jwks"}
        assert all(processes.is_running(pid) for pid in info.pids.values())
        assert stack.up() == info  # idempotent while running
        info.s3_client().put_object(Bucket=info.buckets["data"], Key="keep/me.txt", Body=b"kept")
        jwks_before = (tmp_path / "state" / "jwt" / "rs256.pem").read_bytes()
    finally:
        stopped = stack.down()
    assert stopped == ["aws", "jwks", "s3"]
    assert not any(processes.is_running(pid) for pid in info.pids.values())
    assert stack.info() is None

    again = stack.up()
    try:
        body = again.s3_client().get_object(Bucket=again.buckets["data"], Key="keep/me.txt")
        assert body["Body"].read() == b"kept"
        assert (tmp_path / "state" / "jwt" / "rs256.pem").read_bytes() == jwks_before
    finally:
        stack.down()


def test_a_part_that_dies_is_named_with_its_log(tmp_path: Path) -> None:
    process = processes.start(
        "broken-part",
        [sys.executable, "-c", "import sys; print('cannot bind'); sys.exit(3)"],
        state_dir=tmp_path,
    )
    with pytest.raises(StackStartError) as error:
        processes.wait_until_healthy("broken-part", process, lambda: False, state_dir=tmp_path)
    assert error.value.part == "broken-part"
    assert "exited with code 3" in str(error.value)
    assert "cannot bind" in str(error.value)
    processes.stop_all(tmp_path)


def test_a_part_that_never_gets_healthy_is_stopped_and_named(tmp_path: Path) -> None:
    process = processes.start(
        "slow-part", [sys.executable, "-c", "import time; time.sleep(60)"], state_dir=tmp_path
    )
    with pytest.raises(StackStartError, match="slow-part failed to start: not healthy"):
        processes.wait_until_healthy(
            "slow-part", process, lambda: False, state_dir=tmp_path, timeout_s=0.5
        )
    assert processes.stop_all(tmp_path) == ["slow-part"]
    assert not processes.is_running(process.pid)

"""Bringing a stack up and down: health, persistence, clean shutdown, clear start failures."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from scripts.local_stack import LocalStack, StackStartError, processes, product
from tests.support import call_of, worker_processes


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


def test_down_with_a_job_mid_render_leaves_no_worker_behind(
    tmp_path: Path, media_dir: Path
) -> None:
    """Workers run in sessions of their own (so a cancel reaches their ffmpeg too); stopping the
    internal API must still stop them, rather than leave them rendering for nobody."""
    stack = LocalStack(tmp_path / "state")
    info = stack.up()
    try:
        running = product.up(info)
        bucket = info.buckets["data"]
        for name, kind in (("long.wav", "audio/wav"), ("portrait.png", "image/png")):
            info.s3_client().upload_file(
                str(media_dir / name), bucket, f"tenants/acme/inputs/{name}", {"ContentType": kind}
            )
        token = info.mint_token("acme", ["videos:read", "videos:write"])
        accepted = httpx.post(
            f"{running.api_url}/generate-video",
            json={
                "input": {
                    "audio_s3_url": f"s3://{bucket}/tenants/acme/inputs/long.wav",
                    "reference_image_s3_url": f"s3://{bucket}/tenants/acme/inputs/portrait.png",
                },
                "output": {"s3_bucket": bucket, "s3_prefix": "tenants/acme/outputs/"},
                "options": {"model": "tiny", "video_length": 7, "sample_steps": 40},
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert accepted.status_code == 202, accepted.text
        call_id = call_of(info, accepted.json()["job_id"])
        deadline = time.monotonic() + 60
        while not (workers := worker_processes(call_id)):
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.1)
    finally:
        stack.down()
    (pid,) = workers
    assert not processes.is_running(pid)
    assert worker_processes(call_id) == {}

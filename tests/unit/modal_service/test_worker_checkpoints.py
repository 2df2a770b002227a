"""A job's checkpoint directory: orphans past the TTL go, live ones stay, a finished job's goes,
and every removal is committed to the Volume (a recording stand-in: Modal is not reachable
here); a root that cannot be used turns checkpoints off instead of failing the job."""

from __future__ import annotations

import os
import time
from pathlib import Path

from modal_service.runner.local import LocalRunner
from modal_service.worker.checkpoints import JobCheckpoints

TTL_S = 3600.0


class RecordingVolume:
    def __init__(self, fail_reload: bool = False) -> None:
        self.calls: list[str] = []
        self._fail_reload = fail_reload

    def commit(self) -> None:
        self.calls.append("commit")

    def reload(self) -> None:
        self.calls.append("reload")
        if self._fail_reload:
            raise RuntimeError("there are open files")


def _checkpoint(root: Path, job_id: str, age_s: float) -> Path:
    directory = root / job_id
    directory.mkdir(parents=True)
    (directory / "state.pt").write_bytes(b"state")
    stamp = time.time() - age_s
    os.utime(directory, (stamp, stamp))
    return directory


def test_opening_reloads_then_removes_only_orphans_past_the_ttl(tmp_path: Path) -> None:
    orphan = _checkpoint(tmp_path, "job_orphan", age_s=TTL_S + 60)
    live = _checkpoint(tmp_path, "job_live", age_s=TTL_S - 60)
    own = _checkpoint(tmp_path, "job_own", age_s=TTL_S + 60)  # its retry, however late
    volume = RecordingVolume()

    assert JobCheckpoints(tmp_path, "job_own", ttl_s=TTL_S, volume=volume).open()
    assert (orphan.exists(), live.exists(), own.exists()) == (False, True, True)
    assert volume.calls == ["reload", "commit"]

    volume.calls.clear()
    assert JobCheckpoints(tmp_path, "job_own", ttl_s=TTL_S, volume=volume).open()
    assert volume.calls == ["reload"]  # nothing removed, nothing to commit


def test_a_failed_reload_is_survived(tmp_path: Path) -> None:
    volume = RecordingVolume(fail_reload=True)
    assert JobCheckpoints(tmp_path / "root", "job_a", ttl_s=TTL_S, volume=volume).open()
    assert (tmp_path / "root").is_dir()


def test_an_unusable_root_turns_checkpoints_off(tmp_path: Path) -> None:
    (tmp_path / "root").write_text("a file where the directory should be")
    assert not JobCheckpoints(tmp_path / "root", "job_a", ttl_s=TTL_S).open()


def test_discarding_removes_the_job_directory_and_commits(tmp_path: Path) -> None:
    volume = RecordingVolume()
    checkpoints = JobCheckpoints(tmp_path, "job_done", ttl_s=TTL_S, volume=volume)
    _checkpoint(tmp_path, "job_done", age_s=0)
    checkpoints.discard()
    assert not checkpoints.directory.exists()
    assert volume.calls == ["commit"]
    checkpoints.discard()  # already gone: nothing to commit
    assert volume.calls == ["commit"]


def test_every_local_worker_of_a_runner_shares_one_checkpoint_directory(tmp_path: Path) -> None:
    runner = LocalRunner(max_workers=0, work_dir=tmp_path)
    try:
        assert runner._env["MULTITALK_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints")
    finally:
        runner.close()
    chosen = LocalRunner(
        max_workers=0, work_dir=tmp_path, worker_env={"MULTITALK_CHECKPOINT_DIR": "/elsewhere"}
    )
    try:
        assert chosen._env["MULTITALK_CHECKPOINT_DIR"] == "/elsewhere"
    finally:
        chosen.close()

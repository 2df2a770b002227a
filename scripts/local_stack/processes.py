"""Start, health-check and stop the stack's server processes, tracked by PID in the state directory.

Each process runs in its own session (process group), so ``stop`` ends it and anything it spawned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

PIDS_FILE = "pids.json"


class StackStartError(RuntimeError):
    """A part of the stack did not come up; the message names the part and why."""

    def __init__(self, part: str, reason: str, log_file: Path | None = None) -> None:
        tail = ""
        if log_file is not None and log_file.exists():
            lines = log_file.read_text(errors="replace").splitlines()[-15:]
            tail = "\n  last log lines:\n    " + "\n    ".join(lines)
        super().__init__(f"local stack: {part} failed to start: {reason}{tail}")
        self.part = part


def free_port() -> int:
    """A port the OS considers free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    name: str,
    command: list[str],
    *,
    state_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    base_env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, logging to ``<state_dir>/logs/<name>.log``.

    Its environment is ``base_env`` (default: this process's) updated with ``env``.
    """
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / f"{name}.log").open("ab")
    try:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**(os.environ if base_env is None else base_env), **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:
        raise StackStartError(name, f"cannot execute {command[0]}: {error}") from error
    finally:
        log.close()
    record_pid(state_dir, name, process.pid)
    return process


def wait_until_healthy(
    name: str,
    process: subprocess.Popen[bytes],
    check: Callable[[], bool],
    *,
    state_dir: Path,
    timeout_s: float = 20.0,
) -> None:
    """Poll ``check`` until it passes; fail fast (with the log tail) if the process dies."""
    deadline = time.monotonic() + timeout_s
    log_file = state_dir / "logs" / f"{name}.log"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackStartError(name, f"process exited with code {process.returncode}", log_file)
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise StackStartError(name, f"not healthy after {timeout_s:.0f} s", log_file)


def log_size(state_dir: Path, name: str) -> int:
    """Bytes in the part's log (logs are appended to across runs)."""
    path = state_dir / "logs" / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def log_text(state_dir: Path, name: str, since: int = 0) -> str:
    """What the part ``name`` wrote to its log after byte ``since`` ("" if nothing yet)."""
    path = state_dir / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    with path.open("rb") as log:
        log.seek(since)
        return log.read().decode(errors="replace")


def http_ok(url: str) -> bool:
    """Health probe: does ``url`` (loopback http) answer 200?"""
    with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback http)
        return bool(response.status == 200)


def read_pids(state_dir: Path) -> dict[str, int]:
    path = state_dir / PIDS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def record_pid(state_dir: Path, name: str, pid: int) -> None:
    pids = read_pids(state_dir)
    pids[name] = pid
    (state_dir / PIDS_FILE).write_text(json.dumps(pids, indent=2))


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return True


def stop_all(state_dir: Path, grace_s: float = 5.0) -> list[str]:
    """Stop every recorded process group: SIGTERM, then SIGKILL after ``grace_s``."""
    return stop_some(state_dir, list(read_pids(state_dir)), grace_s)


def stop_some(state_dir: Path, names: list[str], grace_s: float = 5.0) -> list[str]:
    """Stop the named process groups (SIGTERM, then SIGKILL) and forget their PIDs."""
    recorded = read_pids(state_dir)
    pids = {name: recorded[name] for name in names if name in recorded}
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(is_running(pid) for pid in pids.values()):
        time.sleep(0.05)
    for pid in pids.values():
        if is_running(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    for pid in pids.values():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    remaining = {name: pid for name, pid in recorded.items() if name not in pids}
    if remaining:
        (state_dir / PIDS_FILE).write_text(json.dumps(remaining, indent=2))
    else:
        (state_dir / PIDS_FILE).unlink(missing_ok=True)
    return sorted(pids)

"""Helpers for tests that look inside the running product: its job records and its processes."""

from __future__ import annotations

from pathlib import Path

from scripts.local_stack import StackInfo


def call_of(stack: StackInfo, job_id: str) -> str:
    """The job's Modal call id (kept off the public API)."""
    item = stack.client("dynamodb").get_item(
        TableName=stack.tables["jobs"], Key={"job_id": {"S": job_id}}
    )["Item"]
    return item["call_id"]["S"]


def worker_processes(call_id: str = "") -> dict[int, dict[str, str]]:
    """Local worker processes (rendering ``call_id``, or any): pid -> environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"modal_service.worker" in argv and (not call_id or call_id.encode() in argv):
                raw = (entry / "environ").read_bytes().split(b"\0")
                found[int(entry.name)] = dict(
                    item.decode().split("=", 1) for item in raw if b"=" in item
                )
        except OSError:  # it ended while we looked
            continue
    return found

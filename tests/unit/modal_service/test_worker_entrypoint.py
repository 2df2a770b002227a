"""``python -m modal_service.worker`` refuses to run with AWS credentials or a bad request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(tmp_path: Path, stdin: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "modal_service.worker", "--outcome", str(tmp_path / "o.json")],
        input=stdin,
        capture_output=True,
        cwd=REPO_ROOT,
        env={**clean, **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    "variable",
    ["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"],
)
def test_refuses_to_start_with_aws_credentials(tmp_path: Path, variable: str) -> None:
    done = _run(tmp_path, b"{}", **{variable: "anything"})
    assert done.returncode == 3
    assert variable.encode() in done.stderr
    assert b"anything" not in done.stderr
    assert not (tmp_path / "o.json").exists()


def test_refuses_an_invalid_request_without_echoing_it(tmp_path: Path) -> None:
    secret = b"whsec_" + b"S" * 40
    done = _run(tmp_path, b'{"job_id": "nope", "callback": {"secret": "' + secret + b'"}}')
    assert done.returncode == 3
    assert b"invalid job request" in done.stderr
    assert secret not in done.stderr
    assert not (tmp_path / "o.json").exists()

"""The CLI against the local stack: development tokens, stack status, clear errors."""

from __future__ import annotations

import shlex

import boto3
import jwt
import pytest
from typer.testing import CliRunner

from scripts.cli import app
from scripts.local_stack import StackInfo

pytestmark = pytest.mark.stack


@pytest.fixture
def stack_env(stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> StackInfo:
    monkeypatch.setenv("LOCAL_STACK_STATE_DIR", str(stack.state_dir))
    return stack


def test_token_is_minted_by_the_local_issuer(stack_env: StackInfo) -> None:
    result = CliRunner().invoke(app, ["token", "--tenant", "globex", "--scope", "videos:read"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    key = jwt.PyJWKClient(stack_env.jwks_url).get_signing_key_from_jwt(token).key
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience=stack_env.audience, issuer=stack_env.issuer
    )
    assert claims["tenant_id"] == "globex"
    assert claims["scope"] == "videos:read"


def test_local_status_shows_endpoints_without_the_s3_secret(stack_env: StackInfo) -> None:
    result = CliRunner().invoke(app, ["local", "status"])
    assert result.exit_code == 0, result.output
    assert stack_env.s3_endpoint in result.output
    assert stack_env.s3_secret_key not in result.output


def test_unreachable_api_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        app,
        ["status", "job_x", "--api-url", "http://127.0.0.1:9", "--token", "t"],
    )
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_env_exports_point_the_aws_sdk_at_the_stack(
    stack: StackInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts.local_stack.__main__ import main

    assert main(["--state-dir", str(stack.state_dir), "env"]) == 0
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in capsys.readouterr().out.splitlines()
    )
    assert exports["AWS_ENDPOINT_URL_S3"] == stack.s3_endpoint
    session = boto3.Session(
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        region_name=exports["AWS_REGION"],
    )
    s3 = session.client("s3", endpoint_url=exports["AWS_ENDPOINT_URL_S3"])
    assert stack.buckets["data"] in {b["Name"] for b in s3.list_buckets()["Buckets"]}

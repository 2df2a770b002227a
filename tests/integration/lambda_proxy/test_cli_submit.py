"""``multitalk submit`` through the real HTTP gateway and API handler: the options it sends."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scripts.cli import app
from tests.integration.lambda_proxy.conftest import Proxy

pytestmark = pytest.mark.stack


def _job_id(output: str) -> str:
    # The gateway runs the handlers in this process: their log and metric lines come first.
    return json.loads(output[output.rindex("{\n") :])["job_id"]


def _submit(proxy: Proxy, *extra: str) -> tuple[int, str]:
    body = proxy.body()
    result = CliRunner().invoke(
        app,
        [
            "submit",
            body["input"]["audio_s3_url"],
            "--image",
            body["input"]["reference_image_s3_url"],
            "--output-bucket",
            proxy.bucket,
            "--output-prefix",
            body["output"]["s3_prefix"],
            "--model",
            "tiny",
            "--length",
            "5",
            "--api-url",
            proxy.gateway_url,
            "--token",
            proxy.token(),
            *extra,
        ],
    )
    return result.exit_code, result.output


@pytest.mark.parametrize("speed", ["quality", "balanced", "turbo"])
def test_speed_is_sent_as_options_speed(proxy: Proxy, speed: str) -> None:
    code, output = _submit(proxy, "--speed", speed)
    assert code == 0, output
    job = proxy.services.jobs.get(_job_id(output))
    assert job.params.speed == speed


def test_without_speed_the_deployment_default_applies(proxy: Proxy) -> None:
    code, output = _submit(proxy)
    assert code == 0, output
    job = proxy.services.jobs.get(_job_id(output))
    assert job.params.speed == proxy.services.settings.default_speed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--speed", "fast"], "'fast' is not one of 'quality', 'balanced', 'turbo'"),
        (["--turbo"], "No such option: --turbo"),
    ],
)
def test_unknown_speeds_are_refused_before_any_request(
    proxy: Proxy, extra: list[str], message: str
) -> None:
    code, output = _submit(proxy, *extra)
    assert code == 2
    assert message in " ".join(output.replace("│", " ").split())

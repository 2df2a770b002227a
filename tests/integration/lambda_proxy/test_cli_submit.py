"""``multitalk submit`` through the real HTTP gateway and API handler: the options it sends."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scripts.cli import app
from tests.integration.lambda_proxy.conftest import Proxy

# An MP4 signature with no moov yet: the submit path takes it, stating no length.
MP4_HEADER = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64

pytestmark = pytest.mark.stack


def _job_id(output: str) -> str:
    # The gateway runs the handlers in this process: their log and metric lines come first.
    return json.loads(output[output.rindex("{\n") :])["job_id"]


def _submit(proxy: Proxy, *extra: str, image: bool = True, model: str = "tiny") -> tuple[int, str]:
    body = proxy.body()
    portrait = ["--image", body["input"]["reference_image_s3_url"]] if image else []
    result = CliRunner().invoke(
        app,
        [
            "submit",
            body["input"]["audio_s3_url"],
            *portrait,
            "--output-bucket",
            proxy.bucket,
            "--output-prefix",
            body["output"]["s3_prefix"],
            "--model",
            model,
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


def _video(proxy: Proxy) -> str:
    return proxy.upload("talk.mp4", MP4_HEADER, "video/mp4")


@pytest.mark.parametrize(
    ("model", "preset"),
    [("infinitetalk", "infinitetalk-14b"), ("tiny-infinitetalk", "tiny-infinitetalk")],
)
def test_model_is_sent_as_options_model(proxy: Proxy, model: str, preset: str) -> None:
    code, output = _submit(proxy, model=model)
    assert code == 0, output
    assert proxy.services.jobs.get(_job_id(output)).params.model == preset


def test_video_is_sent_as_input_video_s3_url(proxy: Proxy) -> None:
    video = _video(proxy)
    code, output = _submit(proxy, "--video", video, image=False, model="tiny-infinitetalk")
    assert code == 0, output
    job = proxy.services.jobs.get(_job_id(output))
    assert job.video_input is not None
    assert (job.video_input.url, job.image_input) == (video, None)


def test_a_video_for_multitalk_comes_back_with_the_apis_code(proxy: Proxy) -> None:
    code, output = _submit(proxy, "--video", _video(proxy), image=False, model="tiny")
    assert code == 1
    assert "422 video_needs_infinitetalk" in " ".join(output.split())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--video", "s3://b/talk.mp4"], "give --image (a portrait) or --video"),
        (["--model", "sora"], "'sora' is not one of 'multitalk-14b', 'infinitetalk'"),
    ],
)
def test_bad_video_and_model_options_are_refused_before_any_request(
    proxy: Proxy, extra: list[str], message: str
) -> None:
    code, output = _submit(proxy, *extra)
    assert code == 2
    assert message in " ".join(output.replace("│", " ").split())

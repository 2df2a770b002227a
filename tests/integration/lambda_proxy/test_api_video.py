"""A source video to dub (``input.video_s3_url``) and the model names, through the real API
handler, the local stack's S3 and the real internal API: checked at submit from its first bytes
like a portrait, refused with its own codes and nothing written, else signed into the job's
``JobInputs`` in place of the image, with the GPU preset the public model and speakers ask for.

The videos are the generated corpus's (``scripts/corpus/video.py``), real files made by ffmpeg.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pytest

from aws.lambda_proxy.jobs.submit import signed_urls
from scripts.corpus import CorpusCase
from scripts.corpus.video import video_cases
from tests.integration.lambda_proxy.conftest import PNG, WAV, Proxy

pytestmark = pytest.mark.stack


@cache
def corpus() -> dict[str, CorpusCase]:
    return {case.name: case for case in video_cases()}


def upload_case(proxy: Proxy, name: str, tenant: str = "acme") -> str:
    case = corpus()[name]
    return proxy.upload(case.key, case.data, case.content_type, tenant=tenant)


def video_body(proxy: Proxy, video: str, model: str = "tiny-infinitetalk") -> dict[str, Any]:
    body = proxy.body(options={"model": model})
    del body["input"]["reference_image_s3_url"]
    body["input"]["video_s3_url"] = video
    return body


@contextmanager
def settings(proxy: Proxy, **update: Any) -> Iterator[None]:
    original = proxy.services.settings
    proxy.services.settings = original.model_copy(update=update)
    try:
        yield
    finally:
        proxy.services.settings = original


def post(proxy: Proxy, body: dict[str, Any]) -> Any:
    return proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)


def _job_count(proxy: Proxy) -> int:
    table = proxy.services.settings.jobs_table_name
    return proxy.services.dynamodb.scan(TableName=table, Select="COUNT")["Count"]


def _outputs(proxy: Proxy, body: dict[str, Any]) -> int:
    listed = proxy.stack.s3_client().list_objects_v2(
        Bucket=proxy.bucket, Prefix=body["output"]["s3_prefix"]
    )
    return listed["KeyCount"]


def assert_refused(proxy: Proxy, body: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    before = _job_count(proxy)
    answer = post(proxy, body)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == code, problem
    assert _job_count(proxy) == before
    assert _outputs(proxy, body) == 0
    return problem


def test_a_video_is_signed_into_the_job_in_place_of_the_image(proxy: Proxy) -> None:
    video = upload_case(proxy, "mp4-faststart")
    body = video_body(proxy, video)
    # A tenant default image must not be added to a job that dubs a video.
    tenants = dict(proxy.services.settings.tenants_config)
    tenants["acme"] = tenants["acme"].model_copy(
        update={"default_reference_image": proxy.upload("default.png", PNG, "image/png")}
    )
    with settings(proxy, tenants_config=tenants, max_video_s=300.0, max_video_bytes=10**8):
        answer = post(proxy, body)
        assert answer.status == 202, answer.body
        job = proxy.services.jobs.get(answer.json()["job_id"])
        inputs, _ = signed_urls(proxy.services, job)

    assert job.image_input is None
    assert job.video_input is not None
    assert job.video_input.url == video
    assert job.params.model == "tiny-infinitetalk"
    assert inputs.image_url is None
    assert inputs.video_name == job.video_input.key
    assert inputs.video_url is not None
    assert f"/{job.video_input.key}?" in inputs.video_url
    assert (inputs.max_video_s, inputs.max_video_bytes) == (300.0, 10**8)
    # The internal API took the request (it refuses JobInputs with both or neither reference).
    assert job.call_id is not None
    assert proxy.services.modal.get_job(job.call_id).state.value == "running"


@pytest.mark.parametrize(
    ("model", "speakers", "preset"),
    [
        ("infinitetalk", 1, "infinitetalk-14b"),
        ("infinitetalk", 2, "infinitetalk-14b-multi"),
        ("infinitetalk-14b", 2, "infinitetalk-14b-multi"),
        ("tiny-infinitetalk", 2, "tiny-infinitetalk"),
        ("multitalk-14b", 2, "multitalk-14b"),
    ],
)
def test_the_public_model_and_the_speakers_pick_the_gpu_preset(
    proxy: Proxy, model: str, speakers: int, preset: str
) -> None:
    body = proxy.body(options={"model": model, "video_length": 15})
    if speakers == 2:
        first = body["input"].pop("audio_s3_url")
        body["input"]["audio_s3_urls"] = [first, proxy.upload("two.wav", WAV, "audio/wav")]
    answer = post(proxy, body)
    assert answer.status == 202, answer.body
    job = proxy.services.jobs.get(answer.json()["job_id"])
    assert job.params.model == preset
    assert answer.json()["estimated_time"] == job.estimated_time_s


def test_the_estimate_reflects_the_model(proxy: Proxy) -> None:
    times = {}
    for model in ("multitalk-14b", "infinitetalk"):
        answer = post(proxy, proxy.body(options={"model": model, "video_length": 15}))
        assert answer.status == 202, answer.body
        times[model] = answer.json()["estimated_time"]
    # 15 s: MultiTalk streams 7 clips, InfiniteTalk 6.
    assert times["infinitetalk"] < times["multitalk-14b"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("empty", "video_invalid"),
        ("random-bytes", "video_invalid"),
        ("png-renamed-mp4", "unsupported_format"),
        ("wav-renamed-mp4", "unsupported_format"),
        ("m4a-audio", "unsupported_format"),
        ("avi-mjpeg", "unsupported_format"),
        ("gif-animated", "unsupported_format"),
        ("pdf", "unsupported_format"),
    ],
)
def test_a_video_is_judged_by_its_first_bytes(proxy: Proxy, case: str, code: str) -> None:
    body = video_body(proxy, upload_case(proxy, case))
    problem = assert_refused(proxy, body, 422, code)
    assert problem["detail"].startswith("the source video s3://")
    assert corpus()[case].expect == code  # the worker would refuse it the same way


def test_a_header_first_video_over_the_length_limit_is_refused_at_submit(proxy: Proxy) -> None:
    body = video_body(proxy, upload_case(proxy, "mp4-faststart"))  # 2 s, moov before mdat
    with settings(proxy, max_video_s=1.0):
        problem = assert_refused(proxy, body, 422, "video_too_long")
    assert "lasts 2" in problem["detail"]


def test_a_video_over_the_byte_limit_is_refused_at_submit(proxy: Proxy) -> None:
    case = corpus()["mp4-faststart"]
    body = video_body(proxy, upload_case(proxy, case.name))
    with settings(proxy, max_video_bytes=len(case.data) - 1):
        assert_refused(proxy, body, 422, "video_too_large")


def test_a_video_just_within_the_limits_is_accepted(proxy: Proxy) -> None:
    case = corpus()["mp4-faststart"]
    body = video_body(proxy, upload_case(proxy, case.name))
    with settings(proxy, max_video_s=2.0, max_video_bytes=len(case.data)):
        answer = post(proxy, body)
    assert answer.status == 202, answer.body


def test_a_video_with_a_portrait_is_a_coded_422(proxy: Proxy) -> None:
    body = video_body(proxy, upload_case(proxy, "mp4-faststart"))
    body["input"]["reference_image_s3_url"] = proxy.upload("face.png", PNG, "image/png")
    problem = assert_refused(proxy, body, 422, "video_image_conflict")
    assert problem["detail"] == (
        "give reference_image_s3_url (a portrait) or video_s3_url (a video to dub), not both"
    )


@pytest.mark.parametrize("model", ["multitalk-14b", "tiny"])
def test_a_video_with_a_multitalk_model_is_a_coded_422(proxy: Proxy, model: str) -> None:
    body = video_body(proxy, upload_case(proxy, "mp4-faststart"), model=model)
    problem = assert_refused(proxy, body, 422, "video_needs_infinitetalk")
    assert "set options.model to infinitetalk" in problem["detail"]


def test_a_video_follows_the_tenants_locations(proxy: Proxy) -> None:
    theirs = upload_case(proxy, "mp4-faststart", tenant="globex")
    assert_refused(proxy, video_body(proxy, theirs), 403, "s3_location_forbidden")
    missing = f"s3://{proxy.bucket}/tenants/acme/inputs/missing.mp4"
    assert_refused(proxy, video_body(proxy, missing), 422, "input_not_found")
    assert_refused(proxy, video_body(proxy, "s3://Bad/x.mp4"), 422, "s3_url_invalid")


def test_infinitetalk_must_be_enabled_by_the_deployment(proxy: Proxy) -> None:
    body = video_body(proxy, upload_case(proxy, "mp4-faststart"), model="infinitetalk")
    with settings(proxy, allowed_models=["multitalk-14b", "tiny"]):
        problem = assert_refused(proxy, body, 422, "model_not_allowed")
    assert "'infinitetalk'" in problem["detail"]


def test_openapi_documents_the_video_input_models_and_codes(proxy: Proxy) -> None:
    schemas = proxy.invoke("GET", "/openapi.json").json()["components"]["schemas"]
    video = schemas["InputSpec"]["properties"]["video_s3_url"]
    assert "InfiniteTalk" in video["description"]
    assert "video_image_conflict" in video["description"]
    model = schemas["OptionsSpec"]["properties"]["model"]
    assert model["enum"] == [
        "multitalk-14b",
        "infinitetalk",
        "tiny",
        "tiny-infinitetalk",
        "infinitetalk-14b",
    ]
    code = schemas["JobFailure"]["properties"]["code"]
    enum = next(option["enum"] for option in code["anyOf"] if "enum" in option)
    assert {"video_invalid", "video_too_long", "video_too_large"} <= set(enum)

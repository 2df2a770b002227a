"""Malformed bodies, refused S3 locations and inputs, cross-tenant access: every one a clear
problem+json with a stable code, and nothing written."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.lambda_proxy.conftest import PNG, WAV, Proxy

pytestmark = pytest.mark.stack

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[leaf] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        del target[leaf]

    return mutate


MALFORMED: dict[str, Mutation] = {
    "unknown top-level field": _set("extra", 1),
    "unknown input field": _set("input.audio_url", "s3://x/y.wav"),
    "unknown option": _set("options.fps", 30),
    "missing input": _drop("input"),
    "missing output": _drop("output"),
    "missing audio": _drop("input.audio_s3_url"),
    "both audio forms": _set("input.audio_s3_urls", ["s3://b/k.wav"]),
    "three speakers": lambda b: (
        b["input"].pop("audio_s3_url"),
        b["input"].update(audio_s3_urls=["s3://a/1.wav", "s3://a/2.wav", "s3://a/3.wav"]),
    ),
    "audio not a string": _set("input.audio_s3_url", 42),
    "https audio": _set("input.audio_s3_url", "https://example.com/a.wav"),
    "prompt too long": _set("input.prompt", "x" * 2001),
    "bad resolution": _set("options.resolution", "1080p"),
    "negative length": _set("options.video_length", -1),
    "length beyond the model's cap": _set("options.video_length", 601),
    "turbo not a bool": _set("options.turbo_mode", "yes please"),
    "unknown speed": _set("options.speed", "ludicrous"),
    "speed in capitals": _set("options.speed", "Turbo"),
    "speed not a string": _set("options.speed", 2),
    "seed too large": _set("options.seed", 2**40),
    "sample steps zero": _set("options.sample_steps", 0),
    "unknown model": _set("options.model", "sora"),
    "audio type": _set("input.audio_type", "mix"),
    "filename with slash": _set("output.filename", "../../x.mp4"),
    "filename not mp4": _set("output.filename", "video.avi"),
    "bucket too short": _set("output.s3_bucket", "ab"),
    "prefix too long": _set("output.s3_prefix", "p/" * 500),
    "bounding box list too long": _set(
        "input.bounding_boxes", [{"top": 0, "left": 0, "bottom": 1, "right": 1}] * 3
    ),
    "bounding box unknown field": _set(
        "input.bounding_boxes", [{"top": 0, "left": 0, "bottom": 1, "right": 1, "z": 1}]
    ),
    "options not an object": _set("options", "fast"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_body_is_422_and_creates_nothing(proxy: Proxy, case: str) -> None:
    body = proxy.body()
    MALFORMED[case](body)
    before = _job_count(proxy)
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)

    assert answer.status == 422, answer.body
    problem = answer.json()
    assert problem["code"] == "request_invalid"
    assert problem["errors"]
    assert answer.headers["content-type"] == "application/problem+json"
    assert _job_count(proxy) == before


@pytest.mark.parametrize(
    "raw",
    ["", "not json", "[]", "null", '{"input": ', '"a string"'],
)
def test_unparseable_body_is_refused(proxy: Proxy, raw: str) -> None:
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=raw or None)
    assert answer.status == 422, answer.body
    assert answer.json()["code"] == "request_invalid"


def test_oversized_body_is_413(proxy: Proxy) -> None:
    body = proxy.body()
    body["input"]["prompt"] = "x" * 20000
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 413
    assert answer.json()["code"] == "body_too_large"


def _job_count(proxy: Proxy) -> int:
    table = proxy.services.settings.jobs_table_name
    return proxy.services.dynamodb.scan(TableName=table, Select="COUNT")["Count"]


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (
            _set(
                "input.audio_s3_url",
                "s3://multitalk-local-data/tenants/acme/inputs/../../globex/inputs/a.wav",
            ),
            422,
            "s3_url_invalid",
        ),
        (
            _set("input.audio_s3_url", "s3://multitalk-local-data/tenants/acme/inputs//a.wav"),
            422,
            "s3_url_invalid",
        ),
        (_set("input.audio_s3_url", "s3://Multitalk/a.wav"), 422, "s3_url_invalid"),
        (
            _set("input.audio_s3_url", "s3://multitalk-local-data/tenants/acme/inputs/a.wav "),
            422,
            "s3_url_invalid",
        ),
        (
            _set("input.audio_s3_url", "s3://other-bucket/tenants/acme/inputs/a.wav"),
            403,
            "s3_location_forbidden",
        ),
        (
            _set("input.audio_s3_url", "s3://multitalk-local-data/tenants/acme/outputs/a.wav"),
            403,
            "s3_location_forbidden",
        ),
        (
            _set("input.audio_s3_url", "s3://multitalk-local-data/tenants/acme/inputs-evil/a.wav"),
            403,
            "s3_location_forbidden",
        ),
        (_set("output.s3_prefix", "tenants/acme/inputs"), 403, "s3_location_forbidden"),
        (_set("output.s3_prefix", "/tenants/acme/outputs"), 422, "s3_url_invalid"),
        (
            _set("input.audio_s3_url", "s3://multitalk-local-data/tenants/acme/inputs/missing.wav"),
            422,
            "input_not_found",
        ),
        (_set("options.video_length", 30), 422, "video_length_exceeded"),
        (_drop("input.reference_image_s3_url"), 422, "reference_image_required"),
        (_set("options.webhook_url", "http://example.com/hook"), 422, "webhook_url_refused"),
    ],
)
def test_refused_locations_and_limits(
    proxy: Proxy, mutate: Mutation, status: int, code: str
) -> None:
    body = proxy.body()
    mutate(body)
    before = _job_count(proxy)
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == status, answer.body
    assert answer.json()["code"] == code
    assert _job_count(proxy) == before


def test_cross_tenant_input_and_output_are_forbidden(proxy: Proxy) -> None:
    theirs = proxy.upload("voice.wav", WAV, "audio/wav", tenant="globex")
    body = proxy.body("acme", input={"audio_s3_url": theirs})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token("acme"), body=body)
    assert answer.status == 403
    assert answer.json()["code"] == "s3_location_forbidden"

    body = proxy.body("acme", output={"s3_prefix": "tenants/globex/outputs/stolen"})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token("acme"), body=body)
    assert answer.status == 403
    assert answer.json()["code"] == "s3_location_forbidden"


def test_other_tenants_jobs_look_missing(proxy: Proxy) -> None:
    job_id = proxy.submit("globex")
    for method in ("GET", "DELETE"):
        answer = proxy.invoke(method, f"/jobs/{job_id}", token=proxy.token("acme"))
        assert answer.status == 404
        assert answer.json()["code"] == "job_not_found"
    assert proxy.services.jobs.get(job_id).status.value == "queued"
    answer = proxy.invoke("GET", "/jobs/not-a-job-id", token=proxy.token("acme"))
    assert answer.status == 404


@pytest.mark.parametrize(
    ("name", "data", "content_type", "code"),
    [
        ("voice.wav", b"", "audio/wav", "audio_invalid"),
        ("voice.wav", b"<html>not audio</html>", "audio/wav", "unsupported_format"),
        ("voice.wav", PNG, "audio/wav", "unsupported_format"),
        ("voice.mp3", b"%PDF-1.7\n" + b"\x00" * 40, "audio/mpeg", "unsupported_format"),
        (
            "voice.wav",
            b"\x00\x01 neither audio nor anything else" * 3,
            "audio/wav",
            "audio_invalid",
        ),
    ],
)
def test_inputs_are_judged_by_their_first_bytes(
    proxy: Proxy, name: str, data: bytes, content_type: str, code: str
) -> None:
    audio = proxy.upload(name, data, content_type)
    answer = proxy.invoke(
        "POST",
        "/generate-video",
        token=proxy.token(),
        body=proxy.body(input={"audio_s3_url": audio}),
    )
    assert answer.status == 422
    assert answer.json()["code"] == code
    assert "audio 1" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("voice.wav", "binary/octet-stream"),
        ("voice", "application/octet-stream"),
        ("voice.exe", "text/html"),
        ("recording.webm", "video/webm"),
    ],
)
def test_names_and_content_types_never_refuse_real_audio(
    proxy: Proxy, name: str, content_type: str
) -> None:
    audio = proxy.upload(name, WAV, content_type)
    body = proxy.body(input={"audio_s3_url": audio})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 202, answer.body


def test_existing_output_is_never_overwritten_unless_asked(proxy: Proxy) -> None:
    body = proxy.body(output={"filename": "taken.mp4"})
    key = f"{body['output']['s3_prefix']}/taken.mp4"
    proxy.stack.s3_client().put_object(
        Bucket=proxy.bucket, Key=key, Body=b"old", ContentType="video/mp4"
    )

    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 409
    assert answer.json()["code"] == "output_exists"

    body["output"]["overwrite"] = True
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=copy.deepcopy(body))
    assert answer.status == 202, answer.body


def test_two_speakers_and_extensions_are_accepted(proxy: Proxy) -> None:
    body = proxy.body()
    first = body["input"].pop("audio_s3_url")
    second = proxy.upload("second.wav", WAV, "audio/wav")
    body["input"].update(
        audio_s3_urls=[first, second],
        audio_type="para",
        bounding_boxes=[
            {"top": 0, "left": 0, "bottom": 100, "right": 100},
            {"top": 0, "left": 100, "bottom": 100, "right": 200},
        ],
    )
    body["options"].update(seed=7, sample_steps=8, turbo_mode=True)
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 202, answer.body
    job = proxy.services.jobs.get(answer.json()["job_id"])
    assert len(job.audio_inputs) == 2
    assert job.params.audio_type == "para"
    assert job.params.seed == 7


@pytest.mark.parametrize("speed", ["quality", "balanced"])
def test_turbo_mode_contradicting_speed_is_a_coded_422(proxy: Proxy, speed: str) -> None:
    body = proxy.body(options={"turbo_mode": True, "speed": speed})
    before = _job_count(proxy)
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)

    assert answer.status == 422, answer.body
    problem = answer.json()
    assert problem["code"] == "speed_conflict"
    assert problem["detail"] == (
        f"turbo_mode is speed=turbo; it contradicts speed={speed}: give one of them"
    )
    assert problem["errors"] == [{"loc": ["body", "options"], "msg": problem["detail"]}]
    assert answer.headers["content-type"] == "application/problem+json"
    assert _job_count(proxy) == before


def test_a_conflict_among_other_errors_keeps_the_generic_code(proxy: Proxy) -> None:
    body = proxy.body(options={"turbo_mode": True, "speed": "quality"})
    body["input"]["prompt"] = "x" * 2001
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 422
    assert answer.json()["code"] == "request_invalid"


@pytest.mark.parametrize(
    ("options", "default", "profile"),
    [
        ({"speed": "balanced"}, "quality", "balanced"),
        ({"turbo_mode": True}, "quality", "turbo"),
        ({"turbo_mode": True, "speed": "turbo"}, "quality", "turbo"),
        ({}, "quality", "quality"),
        ({}, "balanced", "balanced"),
    ],
)
def test_the_job_renders_with_the_speed_asked_else_the_deployment_default(
    proxy: Proxy, options: dict[str, Any], default: str, profile: str
) -> None:
    original = proxy.services.settings
    proxy.services.settings = original.model_copy(update={"default_speed": default})
    try:
        answer = proxy.invoke(
            "POST", "/generate-video", token=proxy.token(), body=proxy.body(options=options)
        )
    finally:
        proxy.services.settings = original
    assert answer.status == 202, answer.body
    job = proxy.services.jobs.get(answer.json()["job_id"])
    assert job.params.speed == profile  # the params the internal API was sent


def test_model_outside_the_allow_list_is_refused(proxy: Proxy) -> None:
    settings = proxy.services.settings
    assert (
        "multitalk-14b" in settings.allowed_models
    )  # local stack allows both; check refusal logic
    restricted = settings.model_copy(update={"allowed_models": ["multitalk-14b"]})
    original = proxy.services.settings
    proxy.services.settings = restricted
    try:
        answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=proxy.body())
    finally:
        proxy.services.settings = original
    assert answer.status == 422
    assert answer.json()["code"] == "model_not_allowed"


def test_reference_image_must_be_an_image_whatever_its_name(proxy: Proxy) -> None:
    image = proxy.upload("face.png", WAV, "image/png")
    body = proxy.body(input={"reference_image_s3_url": image})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 422
    assert answer.json()["code"] == "unsupported_format"
    assert "the reference image" in answer.json()["detail"]

    image = proxy.upload("face-no-extension", PNG, "binary/octet-stream")
    body = proxy.body(input={"reference_image_s3_url": image})
    answer = proxy.invoke("POST", "/generate-video", token=proxy.token(), body=body)
    assert answer.status == 202, answer.body

"""Configuration from the environment, job ids, public request models."""

from __future__ import annotations

import json
import re
import time

import pytest
from pydantic import ValidationError

from aws.lambda_proxy.api.models import GenerateVideoRequest, OptionsSpec
from aws.lambda_proxy.config import ENV_VARS, PublicModel, Settings
from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.jobs.models import new_job_id
from aws.lambda_proxy.jobs.submit import gpu_preset
from modal_service.contracts import JOB_ID_PATTERN, GenerationParams, SpeedProfile

REQUIRED = {
    "JOBS_TABLE_NAME": "jobs",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "USAGE_TABLE_NAME": "usage",
    "TENANTS_CONFIG": json.dumps(
        {"acme": {"read": ["s3://data/tenants/acme/inputs/"], "write": ["s3://data/out/"]}}
    ),
    "JWT_ISSUER": "https://issuer.example/",
    "JWT_AUDIENCE": "multitalk-video-api",
    "JWT_JWKS_URL": "https://issuer.example/.well-known/jwks.json",
    "MODAL_API_URL": "https://workspace--multitalk-api.modal.run",
    "CALLBACK_BASE_URL": "https://api.example.com",
}


def test_settings_from_a_minimal_environment() -> None:
    settings = Settings.from_env({**REQUIRED, "ALLOWED_MODELS": "tiny, multitalk-14b"})
    assert settings.allowed_models == ["tiny", "multitalk-14b"]
    assert settings.jwt_algorithms == ["RS256", "ES256"]
    assert settings.tenants_config["acme"].write == ["s3://data/out/"]


def test_allowed_models_are_public_names_and_take_the_presets_name_for_infinitetalk() -> None:
    environment = {**REQUIRED, "ALLOWED_MODELS": "multitalk-14b,infinitetalk-14b,tiny-infinitetalk"}
    assert Settings.from_env(environment).allowed_models == [
        "multitalk-14b",
        "infinitetalk",
        "tiny-infinitetalk",
    ]
    assert Settings.from_env(REQUIRED).allowed_models == ["multitalk-14b"]


def test_source_video_limits_default_to_the_shared_rules() -> None:
    settings = Settings.from_env(REQUIRED)
    assert (settings.max_video_bytes, settings.max_video_s) == (2 * 1024**3, 600.0)
    settings = Settings.from_env({**REQUIRED, "MAX_VIDEO_BYTES": "1000", "MAX_VIDEO_S": "1.5"})
    assert (settings.max_video_bytes, settings.max_video_s) == (1000, 1.5)


def test_default_speed_is_quality_unless_the_deployment_says_otherwise() -> None:
    assert Settings.from_env(REQUIRED).default_speed == "quality"
    assert Settings.from_env({**REQUIRED, "DEFAULT_SPEED": "balanced"}).default_speed == "balanced"


def test_every_setting_has_an_upper_case_variable() -> None:
    assert ENV_VARS["jobs_table_name"] == "JOBS_TABLE_NAME"
    assert all(name.upper() == var for name, var in ENV_VARS.items())


@pytest.mark.parametrize(
    "change",
    [
        {"JOBS_TABLE_NAME": None},
        {"JWT_ALGORITHMS": "RS256,HS256"},
        {"JWT_ALGORITHMS": "none"},
        {"TENANTS_CONFIG": "{not json"},
        {
            "TENANTS_CONFIG": json.dumps(
                {"Acme Corp": {"read": ["s3://d/x/"], "write": ["s3://d/y/"]}}
            )
        },
        {"JWKS_REFETCH_COOLDOWN_S": "0"},
        {"DEFAULT_SPEED": "ludicrous"},
        {"ALLOWED_MODELS": "multitalk-14b,infinitetalk-14b-multi"},
        {"ALLOWED_MODELS": ""},
        {"MAX_VIDEO_S": "601"},
        {"MAX_VIDEO_BYTES": "0"},
    ],
)
def test_invalid_configuration_is_refused(change: dict[str, str | None]) -> None:
    environment = {**REQUIRED, **change}
    environment = {name: value for name, value in environment.items() if value is not None}
    with pytest.raises(ConfigurationError):
        Settings.from_env(environment)


def test_job_ids_follow_the_contract_and_sort_by_time() -> None:
    earlier = new_job_id(now=time.time() - 10)
    later = new_job_id()
    assert re.fullmatch(JOB_ID_PATTERN, earlier)
    assert earlier < later
    assert len({new_job_id() for _ in range(1000)}) == 1000


def minimal(**options: object) -> dict[str, object]:
    return {
        "input": {"audio_s3_url": "s3://data/a.wav", "reference_image_s3_url": "s3://data/i.png"},
        "output": {"s3_bucket": "data", "s3_prefix": "out"},
        "options": options,
    }


def test_the_seed_request_shape_is_accepted_with_defaults() -> None:
    request = GenerateVideoRequest.model_validate(minimal())
    assert request.options.resolution == "480p"
    assert request.options.video_length == 15
    assert request.input.audio_urls == ["s3://data/a.wav"]


def test_bounding_boxes_need_one_per_speaker_and_a_positive_area() -> None:
    body = minimal()
    body["input"]["bounding_boxes"] = [{"top": 10, "left": 10, "bottom": 5, "right": 20}]  # type: ignore[index]
    with pytest.raises(ValidationError, match="bottom > top"):
        GenerateVideoRequest.model_validate(body)


@pytest.mark.parametrize(
    ("options", "default", "profile"),
    [
        ({}, "quality", "quality"),
        ({}, "balanced", "balanced"),
        ({"speed": "balanced"}, "quality", "balanced"),
        ({"turbo_mode": True}, "quality", "turbo"),
        ({"turbo_mode": True, "speed": "turbo"}, "balanced", "turbo"),
        ({"turbo_mode": False, "speed": "quality"}, "turbo", "quality"),
    ],
)
def test_speed_profile_is_speed_else_turbo_mode_else_the_default(
    options: dict[str, object], default: SpeedProfile, profile: SpeedProfile
) -> None:
    assert OptionsSpec.model_validate(options).speed_profile(default) == profile


@pytest.mark.parametrize("speed", ["quality", "balanced"])
def test_turbo_mode_contradicting_speed_is_a_coded_error(speed: str) -> None:
    with pytest.raises(ValidationError) as error:
        OptionsSpec.model_validate({"turbo_mode": True, "speed": speed})
    (only,) = error.value.errors()
    assert only["type"] == "speed_conflict"
    assert f"contradicts speed={speed}" in only["msg"]


@pytest.mark.parametrize(
    ("model", "speakers", "preset"),
    [
        ("multitalk-14b", 1, "multitalk-14b"),
        ("multitalk-14b", 2, "multitalk-14b"),
        ("infinitetalk", 1, "infinitetalk-14b"),
        ("infinitetalk", 2, "infinitetalk-14b-multi"),
        ("tiny-infinitetalk", 2, "tiny-infinitetalk"),
        ("tiny", 2, "tiny"),
    ],
)
def test_public_models_map_to_the_gpu_presets(
    model: PublicModel, speakers: int, preset: str
) -> None:
    assert gpu_preset(model, speakers=speakers) == preset


def test_the_presets_name_is_accepted_for_infinitetalk() -> None:
    assert OptionsSpec.model_validate({"model": "infinitetalk-14b"}).model == "infinitetalk"


def with_video(model: str, **inputs: object) -> dict[str, object]:
    body = minimal(model=model)
    body["input"] = {"audio_s3_url": "s3://data/a.wav", "video_s3_url": "s3://data/v.mp4", **inputs}
    return body


@pytest.mark.parametrize("model", ["infinitetalk", "infinitetalk-14b", "tiny-infinitetalk"])
def test_a_video_is_taken_by_infinitetalk_models(model: str) -> None:
    request = GenerateVideoRequest.model_validate(with_video(model))
    assert request.input.video_s3_url == "s3://data/v.mp4"
    assert request.input.reference_image_s3_url is None


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (with_video("multitalk-14b"), "video_needs_infinitetalk", "dubbed by InfiniteTalk only"),
        (with_video("tiny"), "video_needs_infinitetalk", "portrait in reference_image_s3_url"),
        (
            with_video("infinitetalk", reference_image_s3_url="s3://data/i.png"),
            "video_image_conflict",
            "not both",
        ),
    ],
)
def test_a_video_with_a_portrait_or_a_multitalk_model_is_a_coded_error(
    body: dict[str, object], code: str, message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        GenerateVideoRequest.model_validate(body)
    (only,) = error.value.errors()
    assert only["type"] == code
    assert message in only["msg"]


@pytest.mark.parametrize(("turbo", "speed"), [(True, "turbo"), (False, "quality")])
def test_job_records_from_before_speed_profiles_still_load(turbo: bool, speed: str) -> None:
    # Stored jobs (and older senders) carry ``turbo: bool``; reading them must not fail.
    assert GenerationParams.model_validate({"turbo": turbo}).speed == speed

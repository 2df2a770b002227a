"""Configuration from the environment, job ids, public request models, estimates."""

from __future__ import annotations

import json
import re
import time

import pytest
from pydantic import ValidationError

from aws.lambda_proxy.api.models import GenerateVideoRequest
from aws.lambda_proxy.config import ENV_VARS, Settings
from aws.lambda_proxy.exceptions import ConfigurationError
from aws.lambda_proxy.jobs.models import new_job_id
from aws.lambda_proxy.jobs.submit import estimate_seconds
from modal_service.contracts import JOB_ID_PATTERN

REQUIRED = {
    "JOBS_TABLE_NAME": "jobs",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
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


def test_estimates_grow_with_length_and_resolution() -> None:
    short = estimate_seconds(GenerateVideoRequest.model_validate(minimal(video_length=5)))
    long = estimate_seconds(GenerateVideoRequest.model_validate(minimal(video_length=15)))
    hd = estimate_seconds(
        GenerateVideoRequest.model_validate(minimal(video_length=15, resolution="720p"))
    )
    turbo = estimate_seconds(
        GenerateVideoRequest.model_validate(minimal(video_length=15, turbo_mode=True))
    )
    assert short < long < hd
    assert turbo < long

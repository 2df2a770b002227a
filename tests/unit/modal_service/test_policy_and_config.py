"""URL policy (https only; plain http only to loopback in local mode) and settings from env."""

from __future__ import annotations

import pytest

from modal_service.config import ServiceSettings, WorkerSettings
from modal_service.contracts import JobInputs, JobOutput, contains_aws_credentials
from modal_service.url_policy import UrlPolicyError, check_transfer_urls, check_url


@pytest.mark.parametrize(
    ("url", "local", "allowed"),
    [
        ("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=1", False, True),
        ("http://127.0.0.1:9000/b/k", True, True),
        ("http://localhost:9000/b/k", True, True),
        ("http://[::1]:9000/b/k", True, True),
        ("http://127.0.0.1:9000/b/k", False, False),
        ("http://10.0.0.8/b/k", True, False),
        ("http://example.com/b/k", True, False),
        ("http://127.0.0.1.nip.io/b/k", True, False),
        ("https://user:pw@host.example.com/k", False, False),
        ("https://host.example.com/k#frag", False, False),
        ("https:///nohost", False, False),
        ("ftp://host.example.com/k", True, False),
    ],
)
def test_url_policy(url: str, local: bool, allowed: bool) -> None:
    if allowed:
        check_url(url, field="f", allow_loopback_http=local)
    else:
        with pytest.raises(UrlPolicyError):
            check_url(url, field="f", allow_loopback_http=local)


@pytest.mark.parametrize("source", ["image_url", "video_url"])
def test_every_transfer_url_of_a_job_is_checked_whichever_source_it_has(source: str) -> None:
    good = "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=1"
    output = JobOutput(put_url=good)
    check_transfer_urls(
        JobInputs(audio_urls=[good], **{source: good}), output, allow_loopback_http=False
    )
    inputs = JobInputs(audio_urls=[good], **{source: "http://example.com/k"})
    with pytest.raises(UrlPolicyError, match=f"inputs.{source}"):
        check_transfer_urls(inputs, output, allow_loopback_http=False)


def test_presigned_credential_parameter_is_not_a_leak_but_a_raw_key_is() -> None:
    presigned = (
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=ASIAIOSFODNN7EXAMPLE%2F20261125%2F"
        "us-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab"
    )
    assert not contains_aws_credentials(presigned)
    assert contains_aws_credentials("prompt with AKIAIOSFODNN7EXAMPLE inside")
    assert contains_aws_credentials('{"x": "aws_secret_access_key=..."}')


def test_settings_read_their_variables_and_validate_them() -> None:
    service = ServiceSettings.from_env(
        {"MODAL_SERVICE_MODE": "local", "MODAL_SERVICE_MAX_LOCAL_WORKERS": "3", "UNRELATED": "x"}
    )
    assert (service.mode, service.runner_kind, service.max_local_workers) == ("local", "local", 3)
    assert service.allow_loopback_http
    default = ServiceSettings.from_env({})
    assert (default.mode, default.runner_kind, default.allow_loopback_http) == (
        "modal",
        "modal",
        False,
    )
    worker = WorkerSettings.from_env({"MULTITALK_PROGRESS_EVERY": "0.5", "MULTITALK_DEVICE": ""})
    assert worker.progress_interval_s == 0.5
    assert worker.device is None
    with pytest.raises(ValueError, match="MODAL_SERVICE_MODE"):
        ServiceSettings.from_env({"MODAL_SERVICE_MODE": "cloud"})
    with pytest.raises(ValueError, match="MULTITALK_TRANSFER_ATTEMPTS"):
        WorkerSettings.from_env({"MULTITALK_TRANSFER_ATTEMPTS": "0"})
    assert worker.gpu_hour_usd == 4.0  # the documented assumption, an H100/H200-class GPU
    assert WorkerSettings.from_env({"MULTITALK_GPU_HOUR_USD": "2.5"}).gpu_hour_usd == 2.5
    with pytest.raises(ValueError, match="MULTITALK_GPU_HOUR_USD"):
        WorkerSettings.from_env({"MULTITALK_GPU_HOUR_USD": "-1"})

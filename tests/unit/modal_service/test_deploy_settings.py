"""The GPU class's deploy-time settings: parsed from the deploying shell, checked, each bad
value refused naming its variable (what `modal deploy` then shows)."""

from __future__ import annotations

import pytest

from modal_service.deploy_settings import DeploySettings, DeploySettingsError


def test_defaults_are_a_cold_pool_of_single_gpu_containers() -> None:
    settings = DeploySettings.from_env({})
    assert settings.gpu == ["H100", "A100-80GB"]
    assert (settings.min_containers, settings.buffer_containers) == (0, 0)
    assert settings.max_containers == 4
    assert settings.scaledown_window_s == 300
    assert settings.job_timeout_minutes == 60
    assert settings.gpu_snapshot is False
    assert settings.experimental_options == {}


def test_an_empty_variable_means_unset() -> None:
    settings = DeploySettings.from_env({"MULTITALK_MIN_CONTAINERS": "", "MULTITALK_GPUS": ""})
    assert settings == DeploySettings.from_env({})


def test_gpus_per_container_applies_to_every_kind_in_the_preference_list() -> None:
    settings = DeploySettings.from_env(
        {"MULTITALK_GPUS": " H200, H100 ,", "MULTITALK_GPUS_PER_CONTAINER": "8"}
    )
    assert settings.gpu == ["H200:8", "H100:8"]
    assert settings.gpus_per_container == 8


def test_a_warm_pool_and_the_snapshot() -> None:
    settings = DeploySettings.from_env(
        {
            "MULTITALK_MIN_CONTAINERS": "2",
            "MULTITALK_BUFFER_CONTAINERS": "1",
            "MULTITALK_SCALEDOWN_WINDOW_S": "3600",
            "MULTITALK_GPU_SNAPSHOT": "ON",
        }
    )
    assert (settings.min_containers, settings.buffer_containers) == (2, 1)
    assert settings.scaledown_window_s == 3600
    assert settings.experimental_options == {"enable_gpu_snapshot": True}
    assert DeploySettings.from_env({"MULTITALK_SCALEDOWN_WINDOW_S": "2"}).scaledown_window_s == 2
    assert DeploySettings.from_env({"MULTITALK_GPU_SNAPSHOT": "off"}).gpu_snapshot is False


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("MULTITALK_MIN_CONTAINERS", "two", "valid integer"),
        ("MULTITALK_MIN_CONTAINERS", "-1", "greater than or equal to 0"),
        ("MULTITALK_BUFFER_CONTAINERS", "1.5", "valid integer"),
        ("MULTITALK_SCALEDOWN_WINDOW_S", "1", "greater than or equal to 2"),
        ("MULTITALK_SCALEDOWN_WINDOW_S", "3601", "less than or equal to 3600"),
        ("MULTITALK_SCALEDOWN_WINDOW_S", "5m", "valid integer"),
        ("MULTITALK_GPUS_PER_CONTAINER", "0", "greater than or equal to 1"),
        ("MULTITALK_GPUS_PER_CONTAINER", "9", "less than or equal to 8"),
        ("MULTITALK_GPU_SNAPSHOT", "yes", "use on or off"),
        ("MULTITALK_GPUS", "H100:8", "MULTITALK_GPUS_PER_CONTAINER"),
        ("MULTITALK_GPUS", " , ", "at least one GPU kind"),
        ("MULTITALK_MAX_GPU_CONTAINERS", "0", "greater than or equal to 1"),
        ("MULTITALK_JOB_TIMEOUT_MINUTES", "1441", "less than or equal to 1440"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(DeploySettingsError) as refused:
        DeploySettings.from_env({variable: value})
    message = str(refused.value)
    assert message.startswith(f"bad deploy setting: {variable}: ")
    assert says in message
    assert f"(got {value!r})" in message


def test_a_warm_pool_larger_than_the_cap_is_refused() -> None:
    with pytest.raises(DeploySettingsError, match=r"MIN_CONTAINERS \(5\) is more than .*\(4\)"):
        DeploySettings.from_env({"MULTITALK_MIN_CONTAINERS": "5"})
    settings = DeploySettings.from_env(
        {"MULTITALK_MIN_CONTAINERS": "5", "MULTITALK_MAX_GPU_CONTAINERS": "5"}
    )
    assert settings.min_containers == settings.max_containers == 5


def test_the_snapshot_is_refused_for_multi_gpu_containers() -> None:
    env = {"MULTITALK_GPU_SNAPSHOT": "on", "MULTITALK_GPUS_PER_CONTAINER": "2"}
    with pytest.raises(DeploySettingsError, match="MULTITALK_GPUS_PER_CONTAINER=1"):
        DeploySettings.from_env(env)


def test_every_bad_variable_is_named_at_once() -> None:
    env = {"MULTITALK_MIN_CONTAINERS": "x", "MULTITALK_SCALEDOWN_WINDOW_S": "0"}
    with pytest.raises(DeploySettingsError) as refused:
        DeploySettings.from_env(env)
    assert "MULTITALK_MIN_CONTAINERS" in str(refused.value)
    assert "MULTITALK_SCALEDOWN_WINDOW_S" in str(refused.value)

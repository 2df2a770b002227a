"""The Modal app's definition, inspected without a Modal token.

Modal keeps a function's settings in the closure of its lazy loader and an image's build steps
as Dockerfile commands; reading them relies on modal 1.6 internals (pinned below 1.7 in
pyproject.toml), which is the only way to check them without deploying.
"""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from modal._utils.async_utils import synchronizer

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def app_module() -> Any:
    return importlib.import_module("modal_service.app")


def _definition(function: Any) -> dict[str, Any]:
    loader = synchronizer._translate_in(function)._load
    cells = [cell.cell_contents for cell in loader.__closure__ or ()]
    return dict(zip(loader.__code__.co_freevars, cells, strict=True))


def _dockerfile(image: Any) -> list[str]:
    """Every Dockerfile command of an image, base layers first."""
    layer = _definition(image)
    if "base_image" in layer:  # a layer that only adds local files
        return _dockerfile(layer["base_image"])
    commands: list[str] = []
    for base in (layer.get("base_images") or {}).values():
        commands += _dockerfile(base)
    return commands + list(layer["dockerfile_function"]("2025.06").commands)


def test_importing_the_app_needs_no_modal_token(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MODAL_CONFIG_PATH": str(tmp_path / "x")}
    subprocess.run(
        [sys.executable, "-c", "import modal_service.app as a; assert a.app.name"],
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


def test_gpu_worker_class(app_module: Any) -> None:
    worker = _definition(app_module.MultiTalkWorker._get_class_service_function())
    assert worker["gpu"] == ["H100", "A100-80GB"]  # ranked fallback
    mounts = [mount for mount, _ in worker["validated_volumes_no_cloud_buckets"]]
    assert mounts == ["/weights", "/checkpoints"]
    # A retried job resumes from the clips its crashed attempt committed to the Volume.
    assert "ENV MULTITALK_CHECKPOINT_DIR=/checkpoints" in _dockerfile(app_module.gpu_image)
    assert worker["timeout"] == 60 * 60
    assert worker["startup_timeout"] == 20 * 60
    assert worker["scaledown_window"] == 5 * 60
    assert worker["max_containers"] == 4
    # Deployed with nothing set: no warm pool (nothing billed while idle), no GPU snapshot.
    assert (worker["min_containers"], worker["buffer_containers"]) == (0, 0)
    assert worker["experimental_options"] == {}
    assert worker["retry_policy"].retries == 1
    assert worker["enable_memory_snapshot"] is True
    assert set(worker["method_definitions"]) == {"run_job"}


def test_gpu_list_and_limits_come_from_the_environment(tmp_path: Path) -> None:
    probe = (
        "import modal_service.app as a;"
        "print(a.GPUS, a.MAX_GPU_CONTAINERS, a.JOB_TIMEOUT_MINUTES, a.APP_NAME)"
    )
    env = {
        "MULTITALK_GPUS": "H200, H100",
        "MULTITALK_MAX_GPU_CONTAINERS": "2",
        "MULTITALK_JOB_TIMEOUT_MINUTES": "90",
        "MODAL_SERVICE_APP_NAME": "multitalk-video-staging",
    }
    deployed = _deploy(tmp_path, env, probe)
    assert deployed.returncode == 0, deployed.stderr
    assert deployed.stdout.strip() == "['H200', 'H100'] 2 90 multitalk-video-staging"


_WORKER_FIELDS = (
    "gpu",
    "min_containers",
    "buffer_containers",
    "scaledown_window",
    "max_containers",
    "experimental_options",
    "enable_memory_snapshot",
)
_PROBE = f"""
import json
import modal_service.app as a
from tests.unit.modal_service.test_app_definition import _definition, _dockerfile
worker = _definition(a.MultiTalkWorker._get_class_service_function())
print(json.dumps({{
    "worker": {{name: worker[name] for name in {_WORKER_FIELDS!r}}},
    "image_env": [c for c in _dockerfile(a.gpu_image) if c.startswith("ENV MULTITALK_")
                  and "WEIGHTS" not in c and "CHECKPOINT" not in c],
}}))
"""


def _deploy(
    tmp_path: Path, deploy_env: dict[str, str], probe: str = _PROBE
) -> subprocess.CompletedProcess[str]:
    """Run ``probe``, which imports the app, in a fresh interpreter as ``modal deploy`` (or a
    container) would, with only ``deploy_env`` set."""
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **deploy_env},
        timeout=300,
        capture_output=True,
        text=True,
    )


def _at_deploy(tmp_path: Path, deploy_env: dict[str, str]) -> dict[str, Any]:
    """The GPU class's settings and its image's ``ENV`` lines for ``MULTITALK_*`` deploy-time
    settings (the fixed paths left out), as ``modal deploy`` would build them."""
    deployed = _deploy(tmp_path, deploy_env)
    assert deployed.returncode == 0, deployed.stderr
    return json.loads(deployed.stdout)


def test_the_gpu_hour_price_set_at_deploy_time_reaches_the_gpu_image(
    app_module: Any, tmp_path: Path
) -> None:
    env = _at_deploy(tmp_path, {"MULTITALK_GPU_HOUR_USD": "2.5"})["image_env"]
    assert env == ["ENV MULTITALK_GPUS_PER_CONTAINER=1", "ENV MULTITALK_GPU_HOUR_USD=2.5"]
    # Unset at deploy time, the image names no price and the worker's default applies.
    assert "GPU_HOUR" not in "\n".join(_dockerfile(app_module.gpu_image))


def test_acceleration_settings_set_at_deploy_time_reach_the_gpu_image(
    app_module: Any, tmp_path: Path
) -> None:
    deploy = {
        "MULTITALK_FP8": "on",
        "MULTITALK_ATTENTION_BACKEND": "_native_cudnn",
        "MULTITALK_WARMUP": "off",
    }
    env = _at_deploy(tmp_path, deploy)["image_env"]
    assert env == [
        "ENV MULTITALK_GPUS_PER_CONTAINER=1",
        "ENV MULTITALK_ATTENTION_BACKEND=_native_cudnn",
        "ENV MULTITALK_FP8=on",
        "ENV MULTITALK_WARMUP=off",
    ]
    # Unset at deploy time, the containers run the defaults (auto backend, compile on CUDA).
    assert "MULTITALK_FP8" not in "\n".join(_dockerfile(app_module.gpu_image))


def test_warm_pool_and_gpus_per_container_set_at_deploy_time(tmp_path: Path) -> None:
    deploy = {
        "MULTITALK_GPUS": "H200,H100",
        "MULTITALK_GPUS_PER_CONTAINER": "8",
        "MULTITALK_MIN_CONTAINERS": "1",
        "MULTITALK_BUFFER_CONTAINERS": "2",
        "MULTITALK_SCALEDOWN_WINDOW_S": "900",
    }
    deployed = _at_deploy(tmp_path, deploy)
    assert deployed["worker"] == {
        "gpu": ["H200:8", "H100:8"],
        "min_containers": 1,
        "buffer_containers": 2,
        "scaledown_window": 900,
        "max_containers": 4,
        "experimental_options": {},
        "enable_memory_snapshot": True,
    }
    # The worker learns how many GPUs its container holds from its image.
    assert deployed["image_env"] == ["ENV MULTITALK_GPUS_PER_CONTAINER=8"]


def test_the_gpu_snapshot_set_at_deploy_time(tmp_path: Path) -> None:
    deploy = {"MULTITALK_GPU_SNAPSHOT": "on", "MULTITALK_PRESET": "infinitetalk-14b"}
    deployed = _at_deploy(tmp_path, deploy)
    # Modal sends experimental options as strings.
    assert deployed["worker"]["experimental_options"] == {"enable_gpu_snapshot": "True"}
    assert deployed["worker"]["enable_memory_snapshot"] is True
    # The container imports this file again: its hooks must see the same choice and preset.
    assert deployed["image_env"] == [
        "ENV MULTITALK_GPUS_PER_CONTAINER=1",
        "ENV MULTITALK_GPU_SNAPSHOT=on",
        "ENV MULTITALK_PRESET=infinitetalk-14b",
    ]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MULTITALK_SCALEDOWN_WINDOW_S", "7200"),
        ("MULTITALK_MIN_CONTAINERS", "1O"),
        ("MULTITALK_GPU_SNAPSHOT", "true-ish"),
        ("MULTITALK_GPUS_PER_CONTAINER", "16"),
    ],
)
def test_a_bad_deploy_setting_stops_the_deploy_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    deployed = _deploy(tmp_path, {variable: value})
    assert deployed.returncode != 0
    assert deployed.stdout == ""  # nothing was defined
    last_line = deployed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("modal_service.deploy_settings.DeploySettingsError: bad deploy")
    assert f"{variable}: " in last_line
    assert f"(got {value!r})" in last_line


_HOOKS = """
import json
from modal._partial_function import _find_callables_for_obj, _PartialFunctionFlags as Flags
import modal_service.app as a
worker = a.MultiTalkWorker._get_user_cls()()
loaded, warmed = {}, {}
for stage, flag in (("before_snapshot", Flags.ENTER_PRE_SNAPSHOT),
                    ("after_restore", Flags.ENTER_POST_SNAPSHOT)):
    for hook in _find_callables_for_obj(worker, flag).values():
        hook()
    loaded[stage] = worker.renderers.loaded
    warmed[stage] = [n for n in loaded[stage] if worker.renderers.get(n).warmup is not None]
print(json.dumps([loaded, warmed]))
"""


@pytest.mark.parametrize(
    ("snapshot", "before_snapshot"),
    [("off", []), ("on", ["tiny"])],
    ids=["cpu-snapshot-only", "gpu-snapshot"],
)
def test_the_weights_load_before_the_snapshot_only_with_the_gpu_snapshot(
    tmp_path: Path, snapshot: str, before_snapshot: list[str]
) -> None:
    # The class's real enter hooks, in Modal's order, on the CPU with the tiny preset. The image's
    # environment is what a container sees: the snapshot switch reaches the hooks through it.
    # The warm-up (asked for: on a CPU nothing compiles) runs right after the load, so with the
    # GPU snapshot its compiled code is in the snapshot.
    env = {
        "MULTITALK_GPU_SNAPSHOT": snapshot,
        "MULTITALK_PRESET": "tiny",
        "MULTITALK_DEVICE": "cpu",
        "MULTITALK_WARMUP": "on",
    }
    hooks = _deploy(tmp_path, env, _HOOKS)
    assert hooks.returncode == 0, hooks.stderr
    loaded, warmed = json.loads(hooks.stdout.strip().splitlines()[-1])
    assert loaded == {"before_snapshot": before_snapshot, "after_restore": ["tiny"]}
    assert warmed == {"before_snapshot": before_snapshot, "after_restore": ["tiny"]}


def test_web_endpoint_demands_proxy_auth(app_module: Any) -> None:
    api = _definition(app_module.api)
    assert api["webhook_config"].requires_proxy_auth is True
    assert api["gpu"] is None
    assert api["max_concurrent_inputs"] == 50
    assert api["validated_volumes_no_cloud_buckets"] == []  # the API never sees the weights


def test_download_function_writes_the_weights_volume(app_module: Any) -> None:
    download = _definition(app_module.download_weights)
    assert [mount for mount, _ in download["validated_volumes_no_cloud_buckets"]] == ["/weights"]
    assert download["gpu"] is None
    assert download["timeout"] == 4 * 60 * 60


def test_images_run_python_312_with_cuda_torch_and_no_aws_sdk(app_module: Any) -> None:
    group = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["dependency-groups"]
    service_packages = [p for p in group["modal-service"] if isinstance(p, str)]
    gpu = "\n".join(_dockerfile(app_module.gpu_image))
    assert "FROM python:3.12" in gpu
    assert "--index-url https://download.pytorch.org/whl/cu128 torch==2.13.0" in gpu
    for requirement in service_packages:
        assert f" {shlex.quote(requirement)}" in gpu  # quoted as a shell would need it
    for image in (app_module.gpu_image, app_module.api_image, app_module.download_image):
        commands = "\n".join(_dockerfile(image)).lower()
        assert "boto" not in commands
    api = "\n".join(_dockerfile(app_module.api_image))
    assert "torch" not in api  # the API starts in a second: no model stack
    assert "FROM python:3.12" in api


def test_the_asgi_function_serves_the_internal_api(app_module: Any) -> None:
    # .local() runs the function body: it builds the FastAPI app with the Modal runner.
    from fastapi.testclient import TestClient

    client = TestClient(app_module.api.local())
    answer = client.get("/v1/health")
    assert answer.json()["mode"] == "modal"
    assert answer.json()["runner"] == "modal"

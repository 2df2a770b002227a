"""The Modal app's definition, inspected without a Modal token.

Modal keeps a function's settings in the closure of its lazy loader and an image's build steps
as Dockerfile commands; reading them relies on modal 1.6 internals (pinned below 1.7 in
pyproject.toml), which is the only way to check them without deploying.
"""

from __future__ import annotations

import importlib
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
    assert worker["retry_policy"].retries == 1
    assert worker["enable_memory_snapshot"] is True
    assert set(worker["method_definitions"]) == {"run_job"}


def test_gpu_list_and_limits_come_from_the_environment(tmp_path: Path) -> None:
    probe = (
        "import modal_service.app as a;"
        "print(a.GPUS, a.MAX_GPU_CONTAINERS, a.JOB_TIMEOUT_MINUTES, a.APP_NAME)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MULTITALK_GPUS": "H200, H100",
        "MULTITALK_MAX_GPU_CONTAINERS": "2",
        "MULTITALK_JOB_TIMEOUT_MINUTES": "90",
        "MODAL_SERVICE_APP_NAME": "multitalk-video-staging",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out == "['H200', 'H100'] 2 90 multitalk-video-staging"


def _gpu_image_env_at_deploy(tmp_path: Path, deploy_env: dict[str, str]) -> list[str]:
    """The GPU image's ``ENV`` lines for ``MULTITALK_*`` deploy-time settings, as ``modal
    deploy`` would build them with ``deploy_env`` set (the fixed ones left out)."""
    probe = (
        "import modal_service.app as a;"
        "from tests.unit.modal_service.test_app_definition import _dockerfile;"
        "print('\\n'.join(c for c in _dockerfile(a.gpu_image) if c.startswith('ENV MULTITALK_')"
        " and 'WEIGHTS' not in c and 'CHECKPOINT' not in c))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **deploy_env},
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()


def test_the_gpu_hour_price_set_at_deploy_time_reaches_the_gpu_image(
    app_module: Any, tmp_path: Path
) -> None:
    env = _gpu_image_env_at_deploy(tmp_path, {"MULTITALK_GPU_HOUR_USD": "2.5"})
    assert env == ["ENV", "MULTITALK_GPU_HOUR_USD=2.5"]
    # Unset at deploy time, the image names no price and the worker's default applies.
    assert "GPU_HOUR" not in "\n".join(_dockerfile(app_module.gpu_image))


def test_acceleration_settings_set_at_deploy_time_reach_the_gpu_image(
    app_module: Any, tmp_path: Path
) -> None:
    deploy = {"MULTITALK_FP8": "on", "MULTITALK_ATTENTION_BACKEND": "_native_cudnn"}
    env = _gpu_image_env_at_deploy(tmp_path, deploy)
    assert env == ["ENV", "MULTITALK_ATTENTION_BACKEND=_native_cudnn", "ENV", "MULTITALK_FP8=on"]
    # Unset at deploy time, the containers run the defaults (auto backend, compile on CUDA).
    assert "MULTITALK_FP8" not in "\n".join(_dockerfile(app_module.gpu_image))


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

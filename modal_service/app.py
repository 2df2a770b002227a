# ---
# cmd: ["modal", "deploy", "-m", "modal_service.app"]
# ---

# # MultiTalk talking-head videos on Modal GPUs

# This file wires the GPU side to Modal and does nothing else: the internal API
# (`modal_service.api`), the worker (`modal_service.worker`) and the model
# (`modal_service.multitalk`) are plain modules that run and are tested without Modal.

# The GPU side never holds an AWS credential. Every job arrives with pre-signed URLs for its
# inputs and its output, a per-job secret to sign callbacks with, and a deadline.

# Deploy with `modal deploy -m modal_service.app`; fill the weights Volume once with
# `modal run -m modal_service.app::download_weights`. Importing this file needs no Modal token.

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import modal

from modal_service.deploy_settings import DeploySettings

MINUTES = 60  # seconds

# ## The app

# The AWS side finds the GPU class by this name (`modal.Cls.from_name`), so it is configurable
# for one deployment per environment (`multitalk-video-staging`, ...).

APP_NAME = os.environ.get("MODAL_SERVICE_APP_NAME", "multitalk-video")
WORKER_CLASS = "MultiTalkWorker"
app = modal.App(APP_NAME)

# ## Container images

# Two images. The API answers within milliseconds and should start in about a second, so it
# carries no model stack. The GPU image carries a CUDA build of torch and the model stack.
# Neither carries boto3: the GPU side speaks to S3 only through pre-signed URLs.

# The model stack's packages are read from the `modal-service` dependency group in
# `pyproject.toml`, the same list the tests run with. Inside a running container the image is
# already built, the file is absent, and the list is not needed.

PYTHON_VERSION = "3.12"
TORCH = "torch==2.13.0"
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cu128"  # CUDA 12.8 wheels (H100, A100)
PYDANTIC = "pydantic>=2.11,<3"  # every container imports this file, which checks its settings
API_PACKAGES = [
    "fastapi>=0.115,<1",
    "httpx>=0.28,<1",
    PYDANTIC,
    "standardwebhooks>=1.1,<2",
]


def _service_packages() -> list[str]:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.exists():
        return []
    groups = tomllib.loads(pyproject.read_text())["dependency-groups"]
    return [requirement for requirement in groups["modal-service"] if isinstance(requirement, str)]


SERVICE_PACKAGES = _service_packages()

WEIGHTS_DIR = "/weights"
CHECKPOINT_DIR = "/checkpoints"

# Each job's estimated cost prices its GPU-seconds at `MULTITALK_GPU_HOUR_USD`, read at deploy
# time (a typo fails the deploy, not every container start) and passed into the GPU image; unset,
# the worker's default applies (`WorkerSettings.gpu_hour_usd`).

_GPU_HOUR_USD = os.environ.get("MULTITALK_GPU_HOUR_USD", "").strip()
GPU_PRICE = {"MULTITALK_GPU_HOUR_USD": str(float(_GPU_HOUR_USD))} if _GPU_HOUR_USD else {}

# How the GPU containers accelerate the model (attention backend, regional torch.compile, fp8
# linears, VAE tiling, the warm-up render at load: `modal_service/multitalk/acceleration/
# deployment.py`) is read from the
# same `MULTITALK_*` variables at deploy time and passed into the GPU image; a container checks
# them at load and refuses to serve with a message naming the variable.

ACCELERATION = {
    name: os.environ[name]
    for name in (
        "MULTITALK_ATTENTION_BACKEND",
        "MULTITALK_COMPILE",
        "MULTITALK_FP8",
        "MULTITALK_VAE_TILING",
        "MULTITALK_WARMUP",
    )
    if name in os.environ
}

# Where the GPU class runs and how warm it is kept (GPU kinds and count per container, the warm
# pool, the scaledown window, the GPU snapshot) come from `MULTITALK_*` variables too, checked
# in `modal_service/deploy_settings.py`: a bad value stops the deploy naming its variable.

DEPLOY = DeploySettings.from_env()

# The preset a GPU container loads at start (before the GPU snapshot when there is one). Passed
# into the image when set: the container reads this file again, without the deploying shell.

DEFAULT_PRESET = os.environ.get("MULTITALK_PRESET", "multitalk-14b")

api_image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(*API_PACKAGES)
    .env({"MODAL_SERVICE_MODE": "modal"})
    .add_local_python_source("modal_service")
)

gpu_image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(TORCH, index_url=TORCH_INDEX_URL)
    .uv_pip_install(*SERVICE_PACKAGES)
    .env(
        {
            "MODAL_SERVICE_MODE": "modal",
            "MULTITALK_WEIGHTS_DIR": WEIGHTS_DIR,
            "MULTITALK_CHECKPOINT_DIR": CHECKPOINT_DIR,
            "HF_HUB_CACHE": f"{WEIGHTS_DIR}/hf-cache",
            "HF_HUB_OFFLINE": "1",  # weights come from the Volume, never from the hub at runtime
            # The worker starts one process per GPU when a container holds several.
            "MULTITALK_GPUS_PER_CONTAINER": str(DEPLOY.gpus_per_container),
            # A container reads this file again: the snapshot hook must see the same choice.
            **({"MULTITALK_GPU_SNAPSHOT": "on"} if DEPLOY.gpu_snapshot else {}),
            **({"MULTITALK_PRESET": DEFAULT_PRESET} if "MULTITALK_PRESET" in os.environ else {}),
            **GPU_PRICE,
            **ACCELERATION,
        }
    )
    .add_local_python_source("modal_service")
)

# The weights download runs on a CPU container with only the hub client: no torch needed to
# copy files. It reuses `scripts/download_weights.py`, the script the tests exercise.

download_image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install("huggingface-hub>=1,<2", PYDANTIC)
    .add_local_python_source("scripts")
)

# ## The weights Volume

# About 80 GB (Wan2.1-I2V-14B-480P, `multitalk.safetensors`, chinese-wav2vec2-base) live on a
# Volume rather than in the image: a Volume is read lazily and cached near the GPU, and a new
# image build does not copy the weights again.

weights = modal.Volume.from_name("multitalk-weights", create_if_missing=True)

# ## The checkpoints Volume

# A job records each finished clip here (its frames, lossless, and the state the next clip
# starts from) and commits; if its container dies, Modal's retry of the same request reloads
# the Volume and resumes after the last finished clip instead of starting over. A job's
# checkpoint is removed when it ends; orphans are swept after `MULTITALK_CHECKPOINT_TTL`.

checkpoints = modal.Volume.from_name("multitalk-checkpoints", create_if_missing=True)

# ## The GPU worker

# GPUs in order of preference: Modal takes the first one it can schedule. The 14B model in
# bf16 needs about 40 GB for the transformer alone, so only 80 GB class cards are listed by
# default. `MULTITALK_GPUS` (read at deploy time, with the other `DEPLOY` settings above)
# overrides it, e.g. `H200,H100`.

GPUS = DEPLOY.gpu
MAX_GPU_CONTAINERS = DEPLOY.max_containers
JOB_TIMEOUT_MINUTES = DEPLOY.job_timeout_minutes

with gpu_image.imports():
    from modal_service.config import WorkerSettings
    from modal_service.contracts import CreateJobRequest
    from modal_service.worker import RendererCache, run_job


@app.cls(
    image=gpu_image,
    gpu=GPUS,
    volumes={WEIGHTS_DIR: weights, CHECKPOINT_DIR: checkpoints},
    timeout=JOB_TIMEOUT_MINUTES * MINUTES,  # the longest job; deadlines set by AWS stay below it
    startup_timeout=20 * MINUTES,  # the first load of ~80 GB of weights from the Volume
    # The worker never raises for a failed job (it reports it), so a retry here only follows a
    # crash of the container itself (e.g. out of host memory). It resumes after the last clip
    # the crashed attempt finished (the checkpoints Volume). Uploads overwrite the same key, so
    # a retried job is harmless.
    retries=modal.Retries(max_retries=1, initial_delay=10.0, backoff_coefficient=2.0),
    # A loaded GPU stays warm between jobs of a batch for the scaledown window (default 5 min);
    # `min_containers` are never stopped, `buffer_containers` wait idle beside busy ones. Each
    # of them is a whole container's GPUs billed by the second: README, "Warm starts".
    scaledown_window=DEPLOY.scaledown_window_s,
    min_containers=DEPLOY.min_containers,
    buffer_containers=DEPLOY.buffer_containers,
    max_containers=MAX_GPU_CONTAINERS,  # caps spend; queued calls wait for a container
    enable_memory_snapshot=True,  # snapshot after the heavy imports (see below)
    experimental_options=DEPLOY.experimental_options,  # the GPU snapshot, when asked for
)
class MultiTalkWorker:
    # Imports of torch, diffusers and transformers take tens of seconds; they run once, before
    # the memory snapshot, so later cold starts restore them instead. The weights load after the
    # snapshot, straight onto the GPU, once per container.
    # With `MULTITALK_GPU_SNAPSHOT=on` (Modal's GPU memory snapshot, alpha) the default preset's
    # weights load before the snapshot instead, so a restored container has them on the GPU and
    # `load_weights` finds them loaded. Untested until run on Modal (deployed apps only).
    # `MULTITALK_WARMUP` (on by default where the blocks compile) renders short warm-up clips
    # after the load, so the first job compiles nothing: before the GPU snapshot when there is
    # one (the compiled code is then in the snapshot), else at every container start.

    @modal.enter(snap=True)
    def import_model_stack(self) -> None:
        import modal_service.multitalk  # noqa: F401 (imported for the snapshot)

        self.settings = WorkerSettings.from_env()
        # MULTITALK_DEVICE is unset on Modal; the tests run these hooks on the CPU with it.
        device = self.settings.device or "cuda"
        # With several GPUs the renderer starts one process per GPU (rank 0 is this one) and
        # splits each forward pass across them (`modal_service/multitalk/parallel`).
        self.renderers = RendererCache(
            weights_dir=self.settings.weights_dir,
            device=device,
            gpus=self.settings.gpus_per_container,
        )
        if DEPLOY.gpu_snapshot:
            self.renderers.warm_up(DEFAULT_PRESET)

    @modal.enter(snap=False)
    def load_weights(self) -> None:
        self.renderers.warm_up(DEFAULT_PRESET)

    @modal.method()
    def run_job(self, request: dict) -> dict:
        # A cancel from `FunctionCall.cancel` arrives as InputCancellation: the job reports
        # itself cancelled, cleans up and lets it through.
        outcome = run_job(
            CreateJobRequest.model_validate(request),
            renderers=self.renderers.get,
            settings=self.settings,
            call_id=modal.current_function_call_id(),
            interrupts=(modal.exception.InputCancellation,),
            checkpoint_volume=checkpoints,
        )
        return outcome.model_dump(mode="json")


# ## The internal API

# The AWS side submits, polls and cancels jobs here. `requires_proxy_auth=True` makes Modal
# refuse every request without the workspace proxy token (`Modal-Key`/`Modal-Secret`), before
# it reaches the app. Web requests end after 150 s, so submitting returns a call id at once.


@app.function(
    image=api_image,
    scaledown_window=15 * MINUTES,
    timeout=5 * MINUTES,
)
@modal.concurrent(max_inputs=50)  # requests are short and mostly wait on Modal's API
@modal.asgi_app(requires_proxy_auth=True)
def api() -> object:
    from modal_service.api import create_app, runner_from_settings
    from modal_service.config import ServiceSettings

    settings = ServiceSettings(mode="modal", app_name=APP_NAME, worker_class=WORKER_CLASS)
    return create_app(settings, runner_from_settings(settings))


# ## Filling the weights Volume

# `modal run -m modal_service.app::download_weights` downloads the checkpoints into the
# Volume (resumable: files already complete are skipped, sizes checked against the hub), then
# commits it so every GPU container sees them. `--turbo-lora REPO:FILE.safetensors` adds a
# distillation LoRA for turbo mode. The script needs only `huggingface_hub`.


@app.function(
    image=download_image,
    volumes={WEIGHTS_DIR: weights},
    timeout=4 * 60 * MINUTES,
)
def download_weights(turbo_lora: str = "") -> None:
    from scripts.download_weights import main

    arguments = ["--dest", WEIGHTS_DIR] + (["--turbo-lora", turbo_lora] if turbo_lora else [])
    if main(arguments) != 0:
        raise RuntimeError("the weights download did not complete; run it again to resume")
    weights.commit()

#!/usr/bin/env bash
# The GPU benchmark as one prepared command for a lent device machine (one H200, no registry).
#
#   scripts/bench/gpu_render_on_device.sh wheels    # here: fetch the wheels the device lacks
#   scripts/bench/gpu_render_on_device.sh run ...   # there: install them, run gpu_render
#
# Through the device tool, carrying the wheels (about 45 MB; with the tree, under the 64 MiB a call may take):
#   run(command="scripts/bench/gpu_render_on_device.sh run --variant eager compiled --steps 4",
#       carry=[".whl"], timeout_s=600)
# and commit what comes back under $OUT as scripts/bench/results/gpu_render.json.
#
# Budget (15 minutes of device time a session, 10 a command): the machine starts in 1-2 min;
# at 480p one 8-step quality clip is about 8 x 9 s of transformer at 40 % MFU, and each compiled
# variant adds a warm-up render with its compile. Start with 480p, `--variant eager compiled`,
# `--steps 4`; add `fp8` and 720p in a second call if time is left. The device's image has
# torch 2.11 (CUDA 13), transformers, accelerate, peft, safetensors, scipy, pillow, numpy and
# nvidia-ml-py; it lacks the packages below (KINDS.md in the device tool's folder lists them).
set -euo pipefail

# The versions the tests run with (the project's .venv), for CPython 3.12 as on the device.
WHEELS=(
  "diffusers==0.42.1" "importlib-metadata==10.2.0" "zipp==4.1.2"
  "torchao==0.18.0"
  "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types==0.8.0" "typing-inspection==0.4.5"
  "imageio-ffmpeg==0.6.0"  # 29 MB (0.8.1 is 68 MB, over what a call may carry)
  "soundfile==0.14.0" "cffi==2.1.1" "pycparser==3.12"
  "pyloudnorm==0.2.0"
  "pillow-heif==1.8.1"
)

case "${1:-}" in
  wheels)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    rm -rf .whl && mkdir -p .whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    du -sh .whl
    ;;
  run)
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:${PWD}" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -m scripts.bench.gpu_render "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_render.log"
    cp scripts/bench/results/gpu_render.json "${OUT:-/tmp}/"
    python3 -m scripts.bench.cold_start --config 14b --dir . 2>&1 | tee "${OUT:-/tmp}/cold_start.log" && cp scripts/bench/results/cold_start_cuda.json "${OUT:-/tmp}/"  # ~38 GB written, evicted, read back: minutes, at the disk's pace
    ;;
  *)
    echo "usage: $0 wheels | run [gpu_render arguments]" >&2
    exit 2
    ;;
esac

"""Switch a loaded renderer to another preset of the same base by loading only its audio adapter.

MultiTalk and InfiniteTalk (single and multi) share the Wan 14B base and every other component
(encoders, VAE, wav2vec2, the distillation LoRA); they differ in the audio adapter
(``weights.ADAPTER_FILES``, keys by ``weights.is_adapter_key``, about 2 GB) and in how clips are
streamed. Copying the other adapter into the loaded transformer, in place, takes seconds where
dropping and reloading the 14B takes minutes, and keeps the compiled blocks: weights are graph
inputs, so nothing recompiles.

The swap is strict: every adapter key must be in the file with the model's shape, nothing else
may be, and all of it is read before the first weight is written, so a bad file leaves the
loaded renderer as it was. With the transformer split across several GPUs, rank 0 checks and
reads the file, then sends the swap to the other ranks like any mirrored call
(``parallel/ranks.py``); each reads the same file from the shared weights and copies it into
its own copy before it takes the next forward. It is refused (the caller reloads instead) where
it could not be exact: adapter layers in a quantized form (fp8), or a distillation LoRA that
changes an adapter layer (its snapshot of the originals would put the old adapter back).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open

from modal_service.multitalk.errors import ModelUnavailableError
from modal_service.multitalk.presets import PRESETS, Preset
from modal_service.multitalk.weights import ADAPTER_FILES, check_keys, is_adapter_key

if TYPE_CHECKING:
    from modal_service.multitalk.renderer import Renderer

logger = logging.getLogger(__name__)

_PLAIN_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _adapter_tensors(transformer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The transformer's adapter weights, by key, sharing storage with its parameters."""
    return {k: v for k, v in transformer.state_dict().items() if is_adapter_key(k)}


def read_adapter(transformer: torch.nn.Module, adapter_file: Path) -> dict[str, torch.Tensor]:
    """``adapter_file``'s weights for ``transformer``, checked against it key by key and shape
    by shape, in the dtypes it holds them in.

    Raises:
        ModelUnavailableError: the file is missing, or its keys or shapes do not fit (named).
    """
    adapter_name = f"{adapter_file.parent.name}/{adapter_file.name}"
    if not adapter_file.is_file():
        raise ModelUnavailableError(f"adapter file missing: {adapter_name}", "weights_missing")
    targets = _adapter_tensors(transformer)
    with safe_open(str(adapter_file), framework="pt") as handle:
        check_keys(targets, handle.keys(), adapter_name)
        # The dtype each weight was loaded in (bf16, or fp32 for diffusers' fp32 modules),
        # converted as a fresh load converts it: the result is the same bits.
        values = {key: handle.get_tensor(key).to(t.dtype) for key, t in targets.items()}
    wrong = [key for key, value in values.items() if value.shape != targets[key].shape]
    if wrong:
        raise ModelUnavailableError(
            f"{adapter_name}: {len(wrong)} weights of the wrong shape (e.g. {wrong[0]}: "
            f"{tuple(values[wrong[0]].shape)}, the model has {tuple(targets[wrong[0]].shape)})",
            "weights_mismatch",
        )
    return values


@torch.no_grad()
def write_adapter(transformer: torch.nn.Module, values: dict[str, torch.Tensor]) -> None:
    """Copy checked adapter ``values`` into ``transformer``'s own tensors, in place."""
    for key, target in _adapter_tensors(transformer).items():
        target.copy_(values[key])


def why_not_exact(renderer: Renderer) -> str | None:
    """Why swapping ``renderer``'s adapter could not be exact (None: it can be)."""
    transformer = renderer.transformer
    for key, tensor in _adapter_tensors(transformer).items():
        if type(tensor) is not torch.Tensor or tensor.dtype not in _PLAIN_DTYPES:
            return f"adapter weight {key} is quantized ({type(tensor).__name__}, {tensor.dtype})"
    lora = renderer.accelerator.lora
    if lora is not None:
        names = {id(module): name for name, module in transformer.named_modules()}
        for target in lora._targets:  # its layers, read only
            name = names.get(id(target.layer), "")
            if is_adapter_key(f"{name}.weight"):
                return f"the distillation LoRA changes adapter layer {name}"
    return None


def load_adapter(renderer: Renderer, preset: Preset, adapter_file: Path) -> float:
    """Copy ``adapter_file`` into ``renderer``'s transformer (on every rank) and render as
    ``preset`` from now on; returns this process's seconds (other ranks copy meanwhile, and the
    next forward waits for them). Call only where :func:`why_not_exact` says None.

    Raises:
        ModelUnavailableError: the file is missing, or its keys or shapes do not fit the model
            (named); nothing was written.
    """
    started = time.perf_counter()
    transformer = renderer.transformer
    values = read_adapter(transformer, adapter_file)  # all of it, before any write
    if renderer.ranks is not None:
        renderer.ranks.send("load_adapter", (str(adapter_file),), [])
    write_adapter(transformer, values)
    seconds = round(time.perf_counter() - started, 4)
    logger.info(
        "adapter swap %s -> %s: %d weights from %s in %.2f s",
        renderer.preset,
        preset.name,
        len(values),
        adapter_file.name,
        seconds,
    )
    renderer.switch_preset(preset, seconds)
    return seconds


def swap_adapter(renderer: Renderer, name: str, weights_dir: Path) -> bool:
    """Make ``renderer`` (a loaded 14B preset) serve ``name``, another 14B preset, by loading
    only ``name``'s adapter; False where that cannot be exact (the caller reloads)."""
    if renderer.preset not in ADAPTER_FILES or name not in ADAPTER_FILES:
        return False
    reason = why_not_exact(renderer)
    if reason is not None:
        logger.info("no adapter swap %s -> %s (%s): full reload", renderer.preset, name, reason)
        return False
    load_adapter(renderer, PRESETS[name], weights_dir / ADAPTER_FILES[name])
    return True

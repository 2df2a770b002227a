"""fp8 linear layers for the transformer blocks (torchao), on GPUs with fp8 tensor cores.

Weights are quantized per row to float8 e4m3 and activations dynamically per row, so each
linear runs as an fp8 GEMM with bf16 output: about twice the bf16 throughput on Hopper and
half the weight memory. Only the 40 repeated blocks are quantized; the patch, time, text,
image and audio embedders and the output projection stay as loaded (they are small, and the
reference keeps several of them in fp32 for accuracy). torchao skips layers whose dimensions
are not multiples of 16 by itself.

On a CPU, and on GPUs before compute capability 8.9, torchao's float8 refuses to run; the
deployment then fails at load with a clear message rather than at the first job. The tests
drive this same code on the CPU with torchao's int8 weight-only config instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from modal_service.multitalk.acceleration.errors import AccelerationError


def fp8_config() -> Any:
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())


def check_fp8_support(device: torch.device) -> None:
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "a CPU"
        raise AccelerationError(
            f"MULTITALK_FP8=on needs a GPU with fp8 tensor cores (compute capability 8.9+: "
            f"L4, L40S, H100, H200); this container has {name}",
            "fp8_unsupported",
        )


def _in_blocks(module: nn.Module, name: str) -> bool:
    return isinstance(module, nn.Linear) and name.startswith("blocks.")


def quantize_blocks(transformer: nn.Module, config: Any) -> int:
    """Quantize every linear layer in ``transformer.blocks`` with ``config``; returns how many."""
    from torchao.quantization import quantize_

    names = [name for name, module in transformer.named_modules() if _in_blocks(module, name)]
    quantize_(transformer, config, filter_fn=_in_blocks)
    return len(names)


def quantize_layer(layer: nn.Linear, config: Any) -> None:
    """Quantize one linear layer (a fused LoRA's layer, rebuilt in bf16) with ``config``."""
    from torchao.quantization import quantize_

    quantize_(layer, config, filter_fn=lambda module, _name: isinstance(module, nn.Linear))

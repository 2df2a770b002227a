"""A distillation LoRA fused into the transformer's weights for turbo jobs, removed exactly after.

Why not PEFT's adapters: an unfused adapter costs two extra matmuls in every targeted layer on
every step, and PEFT's ``unfuse`` subtracts the delta again in bf16, which does not give the
original weights back bit for bit (measured: tens of weights off by up to 5e-4 after one cycle,
and the error would accumulate over a container's life). Here the file is converted with
diffusers' own Wan LoRA reader (lightx2v, FusionX and diffusers key formats; alpha folded in),
the low-rank factors are kept on the device, and:

- ``use(True)`` adds ``B @ A * scale`` (and the bias delta) to each targeted weight in place;
- ``use(False)`` copies the original weights back from a host-memory snapshot: exact.

The module structure never changes, so a compiled transformer does not recompile when the LoRA
is switched. Switching is lazy: back-to-back turbo jobs pay nothing. For quantized (fp8)
weights, ``requantize`` rebuilds each targeted layer from its bf16 original (plus the delta).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from modal_service.multitalk.acceleration.errors import AccelerationError

logger = logging.getLogger(__name__)

Requantize = Callable[[nn.Linear], None]
"""Re-applies the deployment's weight quantization to one linear layer holding bf16 weights."""


class _Target:
    """One linear layer the LoRA changes: its factors and its original parameters."""

    def __init__(
        self, layer: nn.Linear, down: torch.Tensor, up: torch.Tensor, bias: torch.Tensor | None
    ) -> None:
        self.layer = layer
        self.down, self.up, self.bias = down, up, bias
        # The originals live in host memory (pinned where a GPU copies from it), never on the
        # device: a second copy of 28 GB of weights would not fit next to the model on 80 GB.
        pin = layer.weight.device.type == "cuda"
        self.weight = _host_copy(layer.weight, pin)
        self.original_bias = _host_copy(layer.bias, pin) if layer.bias is not None else None


def _host_copy(tensor: torch.Tensor, pin: bool) -> torch.Tensor:
    copy = tensor.detach().to("cpu", copy=True)
    return copy.pin_memory() if pin else copy


class FusedLora:
    """A LoRA that is either fused into ``transformer``'s weights or absent from them."""

    def __init__(
        self,
        targets: list[_Target],
        name: str,
        scale: float = 1.0,
        requantize: Requantize | None = None,
    ) -> None:
        self._targets = targets
        self.name = name
        self.scale = scale
        self.requantize = requantize
        self.fused = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_file(cls, transformer: nn.Module, path: Path, scale: float = 1.0) -> FusedLora:
        """Read a LoRA file in any format diffusers' Wan loader converts; check it fits."""
        from diffusers.loaders import WanLoraLoaderMixin

        try:
            state = WanLoraLoaderMixin.lora_state_dict(str(path))
        except (OSError, ValueError, KeyError) as exc:
            raise AccelerationError(
                f"cannot read the LoRA {path.name}: {exc}", "lora_invalid"
            ) from exc
        return cls.from_state_dict(transformer, state, path.name, scale)

    @classmethod
    def from_state_dict(
        cls,
        transformer: nn.Module,
        state: dict[str, torch.Tensor],
        name: str,
        scale: float = 1.0,
    ) -> FusedLora:
        """``state`` in diffusers' key format: ``transformer.<layer>.lora_A/lora_B.weight``."""
        layers = dict(transformer.named_modules())
        grouped: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in state.items():
            stem = key.removeprefix("transformer.")
            for part in ("lora_A.weight", "lora_B.weight", "lora_B.bias"):
                if stem.endswith("." + part):
                    grouped.setdefault(stem[: -len(part) - 1], {})[part] = value
                    break
            else:
                raise AccelerationError(f"LoRA {name}: unexpected key {key}", "lora_invalid")
        targets = []
        for layer_name, parts in sorted(grouped.items()):
            layer = layers.get(layer_name)
            if not isinstance(layer, nn.Linear):
                raise AccelerationError(
                    f"LoRA {name} targets {layer_name}, which is not a linear layer of this "
                    "model (a LoRA for another model?)",
                    "lora_mismatch",
                )
            down, up = parts.get("lora_A.weight"), parts.get("lora_B.weight")
            if down is None or up is None:
                raise AccelerationError(
                    f"LoRA {name}: {layer_name} lacks its A or B factor", "lora_invalid"
                )
            if (up.shape[0], down.shape[1]) != tuple(layer.weight.shape) or (
                up.shape[1] != down.shape[0]
            ):
                raise AccelerationError(
                    f"LoRA {name}: {layer_name} factors {tuple(up.shape)} x {tuple(down.shape)} "
                    f"do not fit its weight {tuple(layer.weight.shape)}",
                    "lora_mismatch",
                )
            device = layer.weight.device
            bias = parts.get("lora_B.bias")
            if bias is not None and layer.bias is None:
                raise AccelerationError(
                    f"LoRA {name}: {layer_name} has a bias delta but no bias", "lora_mismatch"
                )
            targets.append(
                _Target(
                    layer,
                    down.to(device, torch.bfloat16),
                    up.to(device, torch.bfloat16),
                    bias.to(device, torch.float32) if bias is not None else None,
                )
            )
        if not targets:
            raise AccelerationError(f"LoRA {name} changes no layer", "lora_invalid")
        logger.info("LoRA %s: %d layers, scale %s", name, len(targets), scale)
        return cls(targets, name, scale)

    # ------------------------------------------------------------------ switching
    @property
    def layers(self) -> int:
        return len(self._targets)

    @torch.no_grad()
    def use(self, fused: bool) -> bool:
        """Fuse (True) or restore the original weights (False); returns whether anything moved."""
        if fused == self.fused:
            return False
        for target in self._targets:
            self._write(target, fused)
        self.fused = fused
        return True

    def _write(self, target: _Target, fused: bool) -> None:
        layer = target.layer
        if self.requantize is None and not fused:
            layer.weight.copy_(target.weight, non_blocking=True)
            if target.original_bias is not None:
                layer.bias.copy_(target.original_bias, non_blocking=True)
            return
        # The new weights in fp32 from the exact originals (the delta added once, rounded once).
        # Copies, never views: on the CPU ``.to()`` and ``.float()`` would hand back the snapshot.
        device = target.down.device
        weight = target.weight.to(device, torch.float32, copy=True)
        bias = None
        if target.original_bias is not None:
            bias = target.original_bias.to(device, torch.float32, copy=True)
        if fused:
            weight += (target.up.float() @ target.down.float()) * self.scale
            if target.bias is not None:
                bias += target.bias * self.scale
        if self.requantize is None:
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias)
            return
        # Quantized weights cannot be added to: put the layer back in bf16, then requantize it.
        layer.weight = nn.Parameter(weight.to(target.weight.dtype), requires_grad=False)
        if bias is not None:
            layer.bias = nn.Parameter(bias.to(target.original_bias.dtype), requires_grad=False)
        self.requantize(layer)

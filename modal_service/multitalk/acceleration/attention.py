"""The attention kernel of every attention layer in the transformer, via diffusers' dispatcher.

Wan's self- and cross-attention processors carry their own backend (``set_attention_backend``
sets it); MultiTalk's audio cross-attention dispatches with no backend of its own and so follows
the process-wide active backend, which ``set_attention_backend`` sets too. One call therefore
moves all three.

``auto`` prefers kernels that must be installed separately (FlashAttention 3, SageAttention 2:
neither has a wheel on PyPI for this stack, so an image that wants them builds them) and falls
back to PyTorch's SDPA, which picks FlashAttention 2 or memory-efficient kernels itself on CUDA.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import torch

from modal_service.multitalk.acceleration.errors import AccelerationError

_HUB_ONLY = "_hub"  # backends named *_hub download their kernel from the Hugging Face Hub


def _installed(distribution: str, minimum: tuple[int, ...]) -> bool:
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    numbers = tuple(int(part) for part in version.split("+")[0].split(".")[:3] if part.isdigit())
    return numbers >= minimum


def choose_backend(requested: str, device: torch.device) -> str:
    """The backend to use on ``device``: ``requested`` once checked, or the best for ``auto``."""
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
    )

    if requested == "auto":
        if device.type != "cuda":
            return AttentionBackendName.NATIVE.value
        hopper = torch.cuda.get_device_capability(device) >= (9, 0)
        if hopper and importlib.util.find_spec("flash_attn_3") is not None:
            return AttentionBackendName._FLASH_3.value
        if _installed("sageattention", (2, 1, 1)):
            return AttentionBackendName.SAGE.value
        return AttentionBackendName.NATIVE.value
    names = {backend.value for backend in AttentionBackendName}
    if requested not in names:
        raise AccelerationError(
            f"unknown attention backend {requested!r}; use auto or one of: "
            + ", ".join(sorted(name for name in names if not name.endswith(_HUB_ONLY))),
            "attention_backend",
        )
    if requested.endswith(_HUB_ONLY):
        raise AccelerationError(
            f"attention backend {requested!r} downloads its kernel from the Hugging Face Hub at "
            "run time; GPU containers run offline, so install the kernel in the image instead",
            "attention_backend",
        )
    try:
        _check_attention_backend_requirements(AttentionBackendName(requested))
    except (RuntimeError, ImportError) as exc:
        raise AccelerationError(
            f"attention backend {requested!r} is not usable here: {exc}", "attention_backend"
        ) from exc
    return requested


def apply_backend(transformer: torch.nn.Module, name: str) -> None:
    """Route every attention layer of ``transformer`` (Wan's and MultiTalk's) through ``name``."""
    transformer.set_attention_backend(name)


def active_backend() -> str:
    """The process-wide backend, which MultiTalk's audio cross-attention follows."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    return _AttentionBackendRegistry.get_active_backend()[0].value

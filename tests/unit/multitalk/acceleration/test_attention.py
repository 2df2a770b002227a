"""The attention backend: chosen per deployment, reaching Wan's and MultiTalk's attention."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from modal_service.multitalk.acceleration import AccelerationError
from modal_service.multitalk.acceleration.attention import (
    active_backend,
    apply_backend,
    choose_backend,
)
from modal_service.multitalk.presets import build_tiny_transformer
from tests.unit.multitalk.acceleration.support import tiny_forward_inputs

CPU = torch.device("cpu")


@pytest.fixture
def transformer() -> Iterator[torch.nn.Module]:
    model = build_tiny_transformer()
    yield model
    apply_backend(model, "native")  # the backend is process-wide: leave it as found


def test_auto_is_pytorchs_sdpa_on_a_cpu() -> None:
    assert choose_backend("auto", CPU) == "native"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fastest", "unknown attention backend 'fastest'; use auto or one of: "),
        ("flash_hub", "downloads its kernel from the Hugging Face Hub"),
        ("flash", "is not usable here"),  # flash-attn is not installed
        ("sage", "is not usable here"),  # nor SageAttention 2
    ],
)
def test_a_backend_that_cannot_run_here_is_refused_at_load(name: str, message: str) -> None:
    with pytest.raises(AccelerationError, match=message) as caught:
        choose_backend(name, CPU)
    assert caught.value.reason == "attention_backend"


def test_one_call_moves_every_attention_layer_and_the_output_holds(
    transformer: torch.nn.Module,
) -> None:
    inputs = tiny_forward_inputs(speakers=2)
    masks = torch.zeros(3, 4, 4)
    masks[0, :, :2], masks[1, :, 2:], masks[2] = 1, 1, 1
    inputs["ref_target_masks"] = masks > 0
    with torch.no_grad():
        reference = transformer(**inputs)[0]
        apply_backend(transformer, choose_backend("_native_math", CPU))
        math = transformer(**inputs)[0]
    processors = {
        type(module.processor).__name__: module.processor._attention_backend
        for module in transformer.modules()
        if hasattr(module, "processor")
    }
    # Wan's cross-attention, MultiTalk's self-attention; the audio attention follows the global.
    assert set(processors.values()) == {"_native_math"}
    assert set(processors) == {"WanAttnProcessor", "MultiTalkSelfAttnProcessor"}
    assert active_backend() == "_native_math"
    torch.testing.assert_close(math, reference, atol=1e-5, rtol=1e-4)

"""The distillation LoRA: converted by diffusers, fused in place, restored bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modal_service.multitalk.acceleration import AccelerationError, DeploymentAcceleration
from modal_service.multitalk.acceleration.engine import Accelerator
from modal_service.multitalk.acceleration.lora_fusion import FusedLora
from modal_service.multitalk.presets import build_tiny, build_tiny_transformer
from tests.unit.multitalk.acceleration.support import tiny_forward_inputs


def test_fusing_adds_the_files_delta_with_its_alpha_and_bias(distill_lora: Path) -> None:
    transformer = build_tiny_transformer()
    layer = transformer.blocks[1].ffn.net[0].proj
    before_weight, before_bias = layer.weight.clone(), layer.bias.clone()
    lora = FusedLora.from_file(transformer, distill_lora)
    assert lora.layers == 4  # q and ffn.0 in both blocks; the modulation delta is dropped

    assert lora.use(True)
    raw = load_file(distill_lora)
    prefix = "diffusion_model.blocks.1.ffn.0"
    down, up = raw[f"{prefix}.lora_down.weight"], raw[f"{prefix}.lora_up.weight"]
    scale = raw[f"{prefix}.alpha"].item() / down.shape[0]  # alpha / rank, as diffusers reads it
    # The factors are kept in bf16 on the device, as a bf16 model would hold them.
    expected = before_weight + scale * (up.bfloat16().float() @ down.bfloat16().float())
    torch.testing.assert_close(layer.weight, expected, atol=0.05, rtol=0.02)
    torch.testing.assert_close(layer.bias, before_bias + raw[f"{prefix}.diff_b"])


def test_unfusing_restores_every_weight_exactly_however_often(distill_lora: Path) -> None:
    transformer = build_tiny_transformer().to(torch.bfloat16)
    original = {name: value.clone() for name, value in transformer.state_dict().items()}
    lora = FusedLora.from_file(transformer, distill_lora)
    inputs = {
        key: value.to(torch.bfloat16)
        if torch.is_tensor(value) and value.is_floating_point()
        else value
        for key, value in tiny_forward_inputs().items()
    }
    with torch.no_grad():
        plain = transformer(**inputs)[0]
        lora.use(True)
        fused = transformer(**inputs)[0]
        assert not lora.use(True)  # already fused: nothing moves
        for _ in range(5):
            assert lora.use(False)
            assert lora.use(True)
        torch.testing.assert_close(transformer(**inputs)[0], fused, atol=0, rtol=0)
        lora.use(False)
        after = transformer(**inputs)[0]
    for name, value in transformer.state_dict().items():
        assert torch.equal(value, original[name]), name
    assert torch.equal(after, plain)


def _lora_for(transformer_key: str, up: tuple[int, int], down: tuple[int, int]) -> dict:
    return {
        f"transformer.{transformer_key}.lora_A.weight": torch.zeros(down),
        f"transformer.{transformer_key}.lora_B.weight": torch.zeros(up),
    }


@pytest.mark.parametrize(
    ("state", "reason", "message"),
    [
        (  # the 14B model's width: a LoRA for the real model loaded into another
            _lora_for("blocks.0.attn1.to_q", (5120, 64), (64, 5120)),
            "lora_mismatch",
            r"factors \(5120, 64\) x \(64, 5120\) do not fit its weight \(24, 24\)",
        ),
        (
            _lora_for("blocks.7.attn1.to_q", (24, 4), (4, 24)),
            "lora_mismatch",
            "targets blocks.7.attn1.to_q, which is not a linear layer of this model",
        ),
        (
            {"transformer.blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 24)},
            "lora_invalid",
            "lacks its A or B factor",
        ),
        ({"transformer.blocks.0.attn1.to_q.dora": torch.zeros(1)}, "lora_invalid", "unexpected"),
        ({}, "lora_invalid", "changes no layer"),
    ],
)
def test_a_lora_that_does_not_fit_is_refused_before_any_weight_moves(
    state: dict, reason: str, message: str
) -> None:
    transformer = build_tiny_transformer()
    before = {name: value.clone() for name, value in transformer.state_dict().items()}
    with pytest.raises(AccelerationError, match=message) as caught:
        FusedLora.from_state_dict(transformer, state, "other.safetensors")
    assert caught.value.reason == reason
    assert all(torch.equal(v, before[k]) for k, v in transformer.state_dict().items())


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(AccelerationError, match=r"cannot read the LoRA broken\.safetensors"):
        FusedLora.from_file(build_tiny_transformer(), broken)


def test_quantized_layers_are_rebuilt_from_the_originals(
    distill_lora: Path, tmp_path: Path
) -> None:
    """fp8 cannot run on a CPU; torchao's int8 weight-only config drives the same code path."""
    from torchao.quantization import Int8WeightOnlyConfig

    pipeline, _ = build_tiny()
    transformer = pipeline.transformer.to(torch.bfloat16)
    lora = FusedLora.from_file(transformer, distill_lora)
    accelerator = Accelerator(
        pipeline, DeploymentAcceleration(), lora, quantization=Int8WeightOnlyConfig()
    )
    linears = sum(
        isinstance(m, torch.nn.Linear)
        for n, m in transformer.named_modules()
        if n.startswith("blocks.")
    )
    assert accelerator.applied.fp8_layers == linears
    assert type(transformer.proj_out.weight) is torch.nn.Parameter  # outside the blocks: as loaded
    inputs = {
        key: value.to(torch.bfloat16)
        if torch.is_tensor(value) and value.is_floating_point()
        else value
        for key, value in tiny_forward_inputs().items()
    }
    with torch.no_grad():
        plain = transformer(**inputs)[0]
        with accelerator.job("turbo"):
            fused = transformer(**inputs)[0]
        with accelerator.job("quality"):
            again = transformer(**inputs)[0]
    weight = transformer.blocks[0].attn1.to_q.weight
    assert "Int8" in type(weight).__name__  # requantized, not left in bf16
    assert not torch.equal(fused, plain)
    assert torch.equal(again, plain)


def test_fp8_is_refused_where_it_cannot_run() -> None:
    pipeline, _ = build_tiny()
    with pytest.raises(AccelerationError, match=r"compute capability 8\.9") as caught:
        Accelerator(pipeline, DeploymentAcceleration(fp8=True))
    assert caught.value.reason == "fp8_unsupported"

"""Strict loading against synthetic checkpoints: tiny dimensions, the real key names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from modal_service.media.probe import probe_media
from modal_service.multitalk import ModelUnavailableError, RenderSpec
from modal_service.multitalk.loading import build_transformer
from modal_service.multitalk.presets import TINY, build_tiny, build_tiny_transformer
from modal_service.multitalk.renderer import Renderer
from modal_service.multitalk.weights import is_adapter_key, original_to_diffusers_names
from tests.unit.multitalk.original_keys import original_wan_i2v_keys


def _write_checkpoint(
    root: Path, model: torch.nn.Module, original_format: bool = False
) -> tuple[Path, Path]:
    """Base transformer in two shards (+ config) and the adapter file, as on the Modal Volume."""
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    base = {k: v for k, v in state.items() if not is_adapter_key(k)}
    adapter = {k: v for k, v in state.items() if is_adapter_key(k)}
    transformer_dir = root / "transformer"
    transformer_dir.mkdir(parents=True)
    if original_format:
        to_original = {
            new: old for old, new in original_to_diffusers_names(original_wan_i2v_keys(2)).items()
        }
        base = {to_original[k]: v for k, v in base.items()}
    else:
        model.save_config(transformer_dir)
    keys = sorted(base)
    half = len(keys) // 2
    for index, part in enumerate((keys[:half], keys[half:]), start=1):
        save_file(
            {k: base[k] for k in part},
            transformer_dir / f"diffusion_pytorch_model-0000{index}-of-00002.safetensors",
        )
    adapter_file = root / "multitalk.safetensors"
    save_file(adapter, adapter_file)
    return transformer_dir, adapter_file


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], msg=key)


def test_diffusers_layout_loads_strictly_and_exactly(tmp_path: Path) -> None:
    source = build_tiny_transformer(seed=7)
    transformer_dir, adapter = _write_checkpoint(tmp_path, source)
    loaded = build_transformer(transformer_dir, adapter, torch.float32)
    _same_weights(source, loaded)
    torch.testing.assert_close(loaded.rope.freqs_cos, source.rope.freqs_cos)


def test_original_wan_names_are_converted(tmp_path: Path) -> None:
    source = build_tiny_transformer(seed=8)
    transformer_dir, adapter = _write_checkpoint(tmp_path, source, original_format=True)
    # Original-format dirs carry no diffusers config: give the tiny one alongside.
    source.save_config(transformer_dir)
    loaded = build_transformer(transformer_dir, adapter, torch.float32)
    _same_weights(source, loaded)


def test_a_missing_adapter_key_is_named(tmp_path: Path) -> None:
    transformer_dir, adapter = _write_checkpoint(tmp_path, build_tiny_transformer())
    from safetensors.torch import load_file

    state = load_file(adapter)
    del state["blocks.1.audio_cross_attn.kv_linear.bias"]
    save_file(state, adapter)
    with pytest.raises(ModelUnavailableError) as err:
        build_transformer(transformer_dir, adapter, torch.float32)
    assert err.value.code == "model_unavailable"
    assert "blocks.1.audio_cross_attn.kv_linear.bias" in err.value.message
    assert "1 missing" in err.value.message


def test_an_unexpected_key_is_named(tmp_path: Path) -> None:
    transformer_dir, adapter = _write_checkpoint(tmp_path, build_tiny_transformer())
    save_file(
        {"blocks.0.audio_attn2.q.weight": torch.zeros(1)}, transformer_dir / "extra.safetensors"
    )
    with pytest.raises(ModelUnavailableError) as err:
        build_transformer(transformer_dir, adapter, torch.float32)
    assert "1 unexpected" in err.value.message
    assert "blocks.0.audio_attn2.q.weight" in err.value.message


def test_missing_files_are_model_unavailable(tmp_path: Path) -> None:
    from modal_service.multitalk import load_renderer

    with pytest.raises(ModelUnavailableError, match="weights_dir"):
        load_renderer("multitalk-14b")
    with pytest.raises(ModelUnavailableError, match=r"Wan2\.1-I2V-14B-480P-Diffusers"):
        load_renderer("multitalk-14b", weights_dir=tmp_path)
    transformer_dir, _ = _write_checkpoint(tmp_path, build_tiny_transformer())
    with pytest.raises(ModelUnavailableError, match="adapter file missing"):
        build_transformer(transformer_dir, tmp_path / "absent.safetensors", torch.float32)


def test_bf16_load_keeps_diffusers_fp32_modules(tmp_path: Path) -> None:
    transformer_dir, adapter = _write_checkpoint(tmp_path, build_tiny_transformer())
    loaded = build_transformer(transformer_dir, adapter, torch.bfloat16)
    assert loaded.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert loaded.blocks[0].audio_cross_attn.kv_linear.weight.dtype == torch.bfloat16
    assert loaded.blocks[0].norm_x.weight.dtype == torch.float32
    assert loaded.scale_shift_table.dtype == torch.float32
    assert loaded.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32


def test_strictly_loaded_mixed_precision_model_renders(tmp_path: Path, media: dict) -> None:
    """The 14B preset's dtypes (bf16 transformer and UMT5, fp16 CLIP, fp32 VAE) on tiny dims."""
    pipeline, audio = build_tiny()
    transformer_dir, adapter = _write_checkpoint(tmp_path / "ckpt", pipeline.transformer)
    pipeline.transformer = build_transformer(transformer_dir, adapter, torch.bfloat16)
    pipeline.text_encoder.to(torch.bfloat16)
    pipeline.image_encoder.to(torch.float16)
    spec = RenderSpec(
        audio_paths=[media["voice"], media["voice_mp3"]],
        image_path=media["wide"],
        max_duration_s=1.0,
    )
    outcome = Renderer(TINY, pipeline, audio).render(spec, tmp_path / "bf16.mp4")
    assert outcome.frames == 25
    assert probe_media(tmp_path / "bf16.mp4").frames == 25


@pytest.mark.parametrize(
    ("preset", "adapter"),
    [
        ("multitalk-14b", "MeiGen-MultiTalk/multitalk.safetensors"),
        ("infinitetalk-14b", "InfiniteTalk/single/infinitetalk.safetensors"),
        ("infinitetalk-14b-multi", "InfiniteTalk/multi/infinitetalk.safetensors"),
    ],
)
def test_each_14b_preset_reads_its_own_adapter_over_the_shared_base(
    tmp_path: Path, preset: str, adapter: str
) -> None:
    from modal_service.multitalk import load_renderer
    from modal_service.multitalk.weights import ADAPTER_FILES, BASE_DIR, WAV2VEC_DIR

    assert ADAPTER_FILES[preset] == adapter
    with pytest.raises(ModelUnavailableError, match=f"{preset} needs weights_dir"):
        load_renderer(preset)
    (tmp_path / BASE_DIR).mkdir()
    (tmp_path / WAV2VEC_DIR).mkdir()
    with pytest.raises(ModelUnavailableError, match=f"weights missing: {adapter}"):
        load_renderer(preset, weights_dir=tmp_path)


def test_an_infinitetalk_adapter_is_checked_key_by_key_and_named_with_its_folder(
    tmp_path: Path,
) -> None:
    transformer_dir, adapter = _write_checkpoint(tmp_path, build_tiny_transformer())
    from safetensors.torch import load_file

    state = load_file(adapter)
    state["blocks.0.audio_cross_attn.extra.weight"] = torch.zeros(1)
    single = tmp_path / "InfiniteTalk" / "single" / "infinitetalk.safetensors"
    single.parent.mkdir(parents=True)
    save_file(state, single)
    with pytest.raises(ModelUnavailableError) as err:
        build_transformer(transformer_dir, single, torch.float32)
    assert err.value.message.startswith("single/infinitetalk.safetensors: 1 unexpected")

"""Swapping only the audio adapter between presets of one base equals a fresh load, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from modal_service.multitalk import (
    ModelUnavailableError,
    RenderOutcome,
    RenderSpec,
    load_renderer,
)
from modal_service.multitalk.adapter_swap import load_adapter, swap_adapter, why_not_exact
from modal_service.multitalk.loading import build_transformer
from modal_service.multitalk.presets import TINY, TINY_INFINITETALK, build_tiny
from modal_service.multitalk.renderer import Renderer
from modal_service.multitalk.weights import (
    ADAPTER_FILES,
    BASE_DIR,
    WAV2VEC_DIR,
    is_adapter_key,
)
from modal_service.worker.renderers import RendererCache
from tests.unit.multitalk.acceleration.support import bf16, tiny_forward_inputs
from tests.unit.multitalk.acceleration.test_profiles_render import _frames
from tests.unit.multitalk.test_weights import _write_checkpoint


def _other_adapter(adapter: Path, path: Path, seed: int) -> Path:
    """The same keys, shapes and dtypes as ``adapter`` with other random values."""
    g = torch.Generator().manual_seed(seed)
    state = {
        k: torch.randn(v.shape, generator=g).to(v.dtype) for k, v in load_file(adapter).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path)
    return path


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Modal Volume's layout with every component at tiny size and three adapters."""
    root = tmp_path_factory.mktemp("weights")
    pipeline, audio = build_tiny()
    base = root / BASE_DIR
    _, multitalk = _write_checkpoint(base, pipeline.transformer)
    for folder, part in (
        ("tokenizer", pipeline.tokenizer),
        ("text_encoder", pipeline.text_encoder),
        ("image_encoder", pipeline.image_encoder),
        ("image_processor", pipeline.image_processor),
        ("vae", pipeline.vae),
    ):
        part.save_pretrained(base / folder)
    audio.model.save_pretrained(root / WAV2VEC_DIR)
    audio.feature_extractor.save_pretrained(root / WAV2VEC_DIR)
    multitalk.rename(_placed(root, "multitalk-14b"))
    for seed, preset in enumerate(("infinitetalk-14b", "infinitetalk-14b-multi"), start=1):
        _other_adapter(_placed(root, "multitalk-14b"), _placed(root, preset), seed)
    return root


def _placed(root: Path, preset: str) -> Path:
    path = root / ADAPTER_FILES[preset]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _state(renderer: Renderer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in renderer.pipeline.transformer.state_dict().items()}


def _assert_same_bits(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []


def test_the_cache_swaps_adapters_between_14b_presets_like_fresh_loads(
    weights_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RendererCache(weights_dir=weights_dir, device="cpu")
    first = cache.get("multitalk-14b")
    before = _state(first)
    storage = {k: v.data_ptr() for k, v in first.pipeline.transformer.state_dict().items()}
    with caplog.at_level("INFO", logger="modal_service.multitalk.adapter_swap"):
        swapped = cache.get("infinitetalk-14b")
    assert swapped is first  # the same pipeline: nothing else was loaded
    assert cache.loaded == ["infinitetalk-14b"]
    assert swapped.preset == "infinitetalk-14b"
    assert swapped._preset.strategy == "infinitetalk"
    assert "adapter swap multitalk-14b -> infinitetalk-14b" in caplog.text
    after = _state(swapped)
    changed = sorted(k for k in after if not torch.equal(after[k], before[k]))
    assert changed == sorted(k for k in after if is_adapter_key(k))  # every adapter key, no other
    # In place: the parameters a compiled graph reads are the same tensors.
    assert {k: v.data_ptr() for k, v in swapped.pipeline.transformer.state_dict().items()} == (
        storage
    )
    _assert_same_bits(after, _state(load_renderer("infinitetalk-14b", weights_dir, "cpu")))

    assert cache.get("infinitetalk-14b-multi") is first
    assert cache.get("multitalk-14b") is first
    _assert_same_bits(_state(first), before)


def test_a_bad_adapter_refuses_the_swap_and_leaves_the_loaded_preset_whole(
    weights_dir: Path, tmp_path: Path
) -> None:
    renderer = load_renderer("multitalk-14b", weights_dir, "cpu")
    before = _state(renderer)
    state = load_file(weights_dir / ADAPTER_FILES["infinitetalk-14b"])
    key = "blocks.1.audio_cross_attn.kv_linear.weight"
    truncated = tmp_path / "short" / "infinitetalk.safetensors"
    truncated.parent.mkdir()
    del state[key]
    save_file(state, truncated)
    with pytest.raises(ModelUnavailableError, match=r"short/infinitetalk\.safetensors: 1 missing"):
        load_adapter(renderer, TINY_INFINITETALK, truncated)
    resized = tmp_path / "wide" / "infinitetalk.safetensors"
    state[key] = torch.zeros(3, 3)
    resized.parent.mkdir()
    save_file(state, resized)
    with pytest.raises(ModelUnavailableError, match=f"wrong shape \\(e.g. {key}"):
        load_adapter(renderer, TINY_INFINITETALK, resized)
    assert renderer.preset == "multitalk-14b"
    _assert_same_bits(_state(renderer), before)


def _renderer(preset: object, base: Path, adapter: Path) -> Renderer:
    pipeline, audio = build_tiny()
    pipeline.transformer = build_transformer(base, adapter, torch.float32)
    return Renderer(preset, pipeline, audio)


def test_a_swapped_renderer_renders_what_a_fresh_load_renders_and_back_again(
    tmp_path: Path, media: dict
) -> None:
    # Tiny geometry so that renders are cheap: MultiTalk's and InfiniteTalk's tiny presets, each
    # with an adapter of its own over one base.
    base, multitalk = _write_checkpoint(tmp_path / "ckpt", build_tiny()[0].transformer)
    infinitetalk = _other_adapter(multitalk, tmp_path / "single" / "infinitetalk.safetensors", 5)
    spec = RenderSpec(audio_paths=[media["voice"]], image_path=media["portrait"], seed=3)

    def frames(renderer: Renderer, name: str) -> tuple[np.ndarray, RenderOutcome]:
        outcome = renderer.render(spec, tmp_path / name)
        return _frames(tmp_path / name, outcome.width, outcome.height), outcome

    fresh_a, _ = frames(_renderer(TINY, base, multitalk), "fresh-a.mp4")
    fresh_b, _ = frames(_renderer(TINY_INFINITETALK, base, infinitetalk), "fresh-b.mp4")
    assert not np.array_equal(fresh_a, fresh_b)

    swapping = _renderer(TINY, base, multitalk)
    seconds = load_adapter(swapping, TINY_INFINITETALK, infinitetalk)
    swapped_b, outcome = frames(swapping, "swapped-b.mp4")
    assert np.array_equal(swapped_b, fresh_b)
    assert outcome.model == "tiny-infinitetalk"
    assert outcome.timings_s["adapter_swap"] == seconds
    load_adapter(swapping, TINY, multitalk)
    back_a, outcome = frames(swapping, "back-a.mp4")
    assert np.array_equal(back_a, fresh_a)
    assert "adapter_swap" in outcome.timings_s
    again, outcome = frames(swapping, "again-a.mp4")
    assert np.array_equal(again, fresh_a)
    assert "adapter_swap" not in outcome.timings_s  # reported once, with the job that waited


@pytest.mark.slow  # two processes start and load the tiny stack from disk (~30 s on 2 cores)
def test_split_across_two_processes_every_rank_swaps_with_rank_0(weights_dir: Path) -> None:
    inputs = bf16(tiny_forward_inputs(batch=1, frames=3, speakers=1))
    expected = {}
    with torch.no_grad():
        for preset in ("multitalk-14b", "infinitetalk-14b"):
            fresh = load_renderer(preset, weights_dir, "cpu")
            expected[preset] = fresh.pipeline.transformer(**inputs)[0]
    adapter_effect = (expected["multitalk-14b"] - expected["infinitetalk-14b"]).abs().mean()

    cache = RendererCache(weights_dir=weights_dir, device="cpu", gpus=2)
    split = cache.get("multitalk-14b")
    errors = {}
    try:
        for preset in ("infinitetalk-14b", "multitalk-14b"):
            assert cache.get(preset) is split  # swapped, not reloaded: the same 2 processes
            with torch.no_grad():
                output = split.pipeline.transformer(**inputs)[0]
            errors[preset] = (output - expected[preset]).abs().mean()
    finally:
        split.close()
    # A rank that kept the old adapter would put half the tokens on it: a mean error of about
    # half the adapters' difference. bf16 rounding of the split stays far below a tenth of it.
    assert max(errors.values()) < adapter_effect / 10, (errors, adapter_effect)


def test_quantized_adapter_layers_fall_back_to_a_full_reload(
    weights_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # fp8 cannot run on a CPU; torchao's int8 weight-only config takes the same path (the
    # blocks' linears, the audio cross-attention's among them, become quantized tensors).
    from torchao.quantization import Int8WeightOnlyConfig

    from modal_service.multitalk.acceleration import DeploymentAcceleration
    from modal_service.multitalk.acceleration.engine import Accelerator

    renderer = load_renderer("multitalk-14b", weights_dir, "cpu")
    renderer.accelerator = Accelerator(
        renderer.pipeline, DeploymentAcceleration(), quantization=Int8WeightOnlyConfig()
    )
    reason = why_not_exact(renderer)
    assert reason is not None
    assert reason.startswith("adapter weight blocks.")
    assert "quantized" in reason
    with caplog.at_level("INFO", logger="modal_service.multitalk.adapter_swap"):
        assert swap_adapter(renderer, "infinitetalk-14b", weights_dir) is False
    assert "full reload" in caplog.text
    assert renderer.preset == "multitalk-14b"

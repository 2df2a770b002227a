"""Strict weight loading for the 14B presets.

Layout under ``weights_dir`` (what ``scripts/download_weights.py`` writes):

- ``Wan2.1-I2V-14B-480P-Diffusers/``: tokenizer, text_encoder (UMT5), image_encoder (CLIP ViT-H),
  image_processor, vae, transformer (diffusers names). The transformer may instead be in the
  original Wan format (``blocks.0.self_attn.q.weight`` ...): it is renamed with diffusers' own
  converter.
- ``MeiGen-MultiTalk/multitalk.safetensors``: the audio adapter, 330 keys in their original names.
- ``InfiniteTalk/{single,multi}/infinitetalk.safetensors``: InfiniteTalk's adapters (one and two
  speakers) for the same network, with the same keys.
- ``chinese-wav2vec2-base/``: config, preprocessor config and ``model.safetensors``.
- ``loras/*.safetensors`` (optional): a distillation LoRA (lightx2v / FusionX) for turbo.

Every key the model expects must be present exactly once and nothing else may be: a missing or
unexpected key is a :class:`ModelUnavailableError` that names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open

from modal_service.multitalk.errors import ModelUnavailableError

BASE_DIR = "Wan2.1-I2V-14B-480P-Diffusers"
ADAPTER_FILE = "MeiGen-MultiTalk/multitalk.safetensors"
INFINITETALK_DIR = "InfiniteTalk"
INFINITETALK_SINGLE_FILE = f"{INFINITETALK_DIR}/single/infinitetalk.safetensors"
INFINITETALK_MULTI_FILE = f"{INFINITETALK_DIR}/multi/infinitetalk.safetensors"
ADAPTER_FILES = {
    "multitalk-14b": ADAPTER_FILE,
    "infinitetalk-14b": INFINITETALK_SINGLE_FILE,
    "infinitetalk-14b-multi": INFINITETALK_MULTI_FILE,
}
"""The audio adapter each 14B preset reads next to the shared base."""
WAV2VEC_DIR = "chinese-wav2vec2-base"
LORA_DIR = "loras"
ADAPTER_KEY_COUNT_14B = 330
_SHOWN = 8


def is_adapter_key(key: str) -> bool:
    """True for adapter keys: ``audio_proj.*``, ``*.audio_cross_attn.*``, ``*.norm_x.*``."""
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key or ".norm_x." in key


def check_keys(expected: Iterable[str], found: Iterable[str], source: str) -> None:
    """Raise :class:`ModelUnavailableError` naming missing and unexpected keys."""
    expected, found = set(expected), set(found)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:_SHOWN])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:_SHOWN])})")
    raise ModelUnavailableError(f"{source}: " + "; ".join(parts), "weights_mismatch")


def original_to_diffusers_names(keys: Iterable[str]) -> dict[str, str]:
    """Map original Wan transformer key names to diffusers names with diffusers' own converter.

    The converter renames dict entries; giving each key a unique one-element tensor lets us read
    the mapping back without loading any weight.
    """
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    keys = list(keys)
    tagged = {key: torch.tensor([index]) for index, key in enumerate(keys)}
    converted = convert_wan_transformer_to_diffusers(tagged)
    return {keys[int(value[0])]: new for new, value in converted.items()}


def _read_safetensors(
    files: list[Path], rename: dict[str, str] | None, dtype: torch.dtype, keep_fp32: Iterable[str]
) -> dict:
    """Read every tensor as ``dtype``, except modules named in ``keep_fp32`` (as diffusers does)."""
    keep_fp32 = set(keep_fp32)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                name = rename.get(key, key) if rename else key
                if name in tensors:
                    raise ModelUnavailableError(
                        f"{file.name}: key {name!r} appears twice", "weights_mismatch"
                    )
                fp32 = not keep_fp32.isdisjoint(name.split("."))
                tensors[name] = handle.get_tensor(key).to(torch.float32 if fp32 else dtype)
    return tensors


def _keys_of(files: list[Path]) -> list[str]:
    keys: list[str] = []
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            keys.extend(handle.keys())
    return keys


def load_transformer_state(
    transformer_dir: Path,
    adapter_file: Path,
    expected: list[str],
    dtype: torch.dtype,
    keep_fp32: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Base shards + adapter as one state dict in the model's names, checked strictly."""
    # Named with its folder: the single- and multi-speaker InfiniteTalk adapters share a name.
    adapter_name = f"{adapter_file.parent.name}/{adapter_file.name}"
    if not adapter_file.is_file():
        raise ModelUnavailableError(f"adapter file missing: {adapter_name}", "weights_missing")
    shards = sorted(transformer_dir.glob("*.safetensors"))
    if not shards:
        raise ModelUnavailableError(
            f"no transformer shards in {transformer_dir.name}/", "weights_missing"
        )
    base_keys = _keys_of(shards)
    rename = None
    if any(key.startswith("blocks.0.self_attn.") for key in base_keys):  # original Wan format
        rename = original_to_diffusers_names(base_keys)
    adapter_keys = _keys_of([adapter_file])
    base_names = [rename.get(k, k) for k in base_keys] if rename else base_keys
    check_keys(
        [k for k in expected if not is_adapter_key(k)], base_names, f"{transformer_dir.name}/"
    )
    check_keys([k for k in expected if is_adapter_key(k)], adapter_keys, adapter_name)
    state = _read_safetensors(shards, rename, dtype, keep_fp32)
    state.update(_read_safetensors([adapter_file], None, dtype, keep_fp32))
    return state


def transformer_config(transformer_dir: Path) -> dict:
    """The diffusers transformer config (original-format dirs get the known 14B I2V config)."""
    config_file = transformer_dir / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if config.get("_class_name") not in {"WanTransformer3DModel", "MultiTalkTransformer3DModel"}:
        return {}  # original format: MultiTalkTransformer3DModel's defaults are the 14B I2V ones
    return {k: v for k, v in config.items() if not k.startswith("_")}

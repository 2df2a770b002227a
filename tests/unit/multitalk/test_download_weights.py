"""The download script's layout logic, against a local directory standing in for the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from modal_service.multitalk import weights
from scripts.download_weights import (
    ADAPTERS,
    ARTIFACTS,
    LORA_SUBDIR,
    DownloadError,
    LocalHub,
    main,
    sync,
)

REPO_FILES = {
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": {
        "model_index.json": b"{}",
        "transformer/config.json": b'{"_class_name": "WanTransformer3DModel"}',
        "transformer/diffusion_pytorch_model-00001-of-00002.safetensors": b"a" * 3000,
        "transformer/diffusion_pytorch_model-00002-of-00002.safetensors": b"b" * 2000,
        "vae/config.json": b"{}",
        "text_encoder/config.json": b"{}",
        "tokenizer/spiece.model": b"t" * 100,
        "examples/i2v_input.JPG": b"not wanted" * 10,
        "README.md": b"readme",
    },
    "MeiGen-AI/MeiGen-MultiTalk": {
        "multitalk.safetensors": b"m" * 4000,
        "diffusion_pytorch_model.safetensors.index.json": b"{}",
    },
    "TencentGameMate/chinese-wav2vec2-base": {
        "config.json": b"{}",
        "preprocessor_config.json": b"{}",
        "model.safetensors": b"w" * 1500,
        "pytorch_model.bin": b"old" * 100,
    },
    "MeiGen-AI/InfiniteTalk": {
        "single/infinitetalk.safetensors": b"s" * 900,
        "multi/infinitetalk.safetensors": b"d" * 800,
        "quant_models/infinitetalk_single_fp8.safetensors": b"q" * 300,
    },
    "lightx2v/Loras": {"distill_lora_rank64.safetensors": b"l" * 700},
}


@pytest.fixture
def hub(tmp_path: Path) -> LocalHub:
    root = tmp_path / "hub"
    for repo, files in REPO_FILES.items():
        for path, data in files.items():
            target = root / repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return LocalHub(root)


def test_layout_is_what_the_loader_reads(hub: LocalHub, tmp_path: Path) -> None:
    dest = tmp_path / "weights"
    report = sync(hub, dest)
    assert len(report.fetched) == 11
    assert (dest / weights.BASE_DIR / "transformer" / "config.json").is_file()
    assert (dest / weights.ADAPTER_FILE).stat().st_size == 4000
    assert (dest / weights.WAV2VEC_DIR / "model.safetensors").is_file()
    # Only what the model needs: no examples, READMEs, .bin weights or the replaced index.
    names = {p.name for p in dest.rglob("*") if p.is_file()}
    assert not names & {
        "i2v_input.JPG",
        "README.md",
        "pytorch_model.bin",
        "diffusion_pytorch_model.safetensors.index.json",
    }
    assert {a.subdir for a in ARTIFACTS} == {
        weights.BASE_DIR,
        weights.ADAPTER_FILE.split("/")[0],
        weights.WAV2VEC_DIR,
    }
    assert LORA_SUBDIR == weights.LORA_DIR


def test_second_run_skips_complete_files_and_refetches_bad_ones(
    hub: LocalHub, tmp_path: Path
) -> None:
    dest = tmp_path / "weights"
    sync(hub, dest)
    truncated = dest / weights.ADAPTER_FILE
    truncated.write_bytes(b"m" * 10)
    report = sync(hub, dest)
    assert report.fetched == ["MeiGen-MultiTalk/multitalk.safetensors"]
    assert len(report.skipped) == 10
    assert truncated.read_bytes() == b"m" * 4000


def test_interrupted_download_resumes_from_the_partial_file(hub: LocalHub, tmp_path: Path) -> None:
    dest = tmp_path / "weights"
    partial = dest / weights.WAV2VEC_DIR / "model.safetensors.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"w" * 1000)
    # Make the resume observable: the hub's copy differs in its first 1000 bytes.
    (hub.root / "TencentGameMate/chinese-wav2vec2-base/model.safetensors").write_bytes(
        b"x" * 1000 + b"w" * 500
    )
    sync(hub, dest)
    assert (dest / weights.WAV2VEC_DIR / "model.safetensors").read_bytes() == b"w" * 1500
    assert not partial.exists()


def test_size_mismatch_and_missing_required_files_are_named(hub: LocalHub, tmp_path: Path) -> None:
    class ShortHub(LocalHub):
        def list_files(self, repo_id: str, revision: str) -> dict[str, int]:
            listing = super().list_files(repo_id, revision)
            return {p: s + 1 if p == "multitalk.safetensors" else s for p, s in listing.items()}

    with pytest.raises(
        DownloadError, match=r"multitalk\.safetensors: got 4000 bytes, the hub lists 4001"
    ):
        sync(ShortHub(hub.root), tmp_path / "a")
    (hub.root / "TencentGameMate/chinese-wav2vec2-base/model.safetensors").unlink()
    with pytest.raises(DownloadError, match=r"lacks model\.safetensors"):
        sync(hub, tmp_path / "b")


def test_cli_check_mode_and_turbo_lora(hub: LocalHub, tmp_path: Path) -> None:
    dest = tmp_path / "weights"
    args = ["--dest", str(dest), "--local-hub", str(hub.root)]
    assert main([*args, "--check"]) == 1
    assert not dest.exists()
    assert main([*args, "--turbo-lora", "lightx2v/Loras:distill_lora_rank64.safetensors"]) == 0
    assert (dest / LORA_SUBDIR / "distill_lora_rank64.safetensors").stat().st_size == 700
    assert main([*args, "--check"]) == 0
    with pytest.raises(SystemExit):
        main([*args, "--turbo-lora", "no-colon"])


def test_models_option_fetches_each_presets_adapter_once_over_one_base(
    hub: LocalHub, tmp_path: Path
) -> None:
    dest = tmp_path / "weights"
    args = ["--dest", str(dest), "--local-hub", str(hub.root)]
    assert main([*args, "--models", "infinitetalk-14b", "infinitetalk-14b-multi"]) == 0
    assert (dest / weights.INFINITETALK_SINGLE_FILE).read_bytes() == b"s" * 900
    assert (dest / weights.INFINITETALK_MULTI_FILE).read_bytes() == b"d" * 800
    assert not (dest / weights.ADAPTER_FILE).exists()
    assert not (dest / weights.INFINITETALK_DIR / "quant_models").exists()
    assert (dest / weights.BASE_DIR / "transformer" / "config.json").is_file()
    assert main([*args, "--models", "infinitetalk-14b-multi", "--check"]) == 0
    assert main([*args, "--check"]) == 1  # the default, multitalk-14b, lacks its adapter
    # Every 14B preset the loader knows is downloadable, at the path the loader reads.
    assert set(ADAPTERS) == set(weights.ADAPTER_FILES)
    for model, artifact in ADAPTERS.items():
        assert f"{artifact.subdir}/{artifact.patterns[0]}" == weights.ADAPTER_FILES[model]
    with pytest.raises(SystemExit):
        main([*args, "--models", "tiny"])

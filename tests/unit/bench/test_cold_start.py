"""The cold-start benchmark's own code path at tiny size on the CPU, so it cannot rot between the
rare runs on a GPU. Its figures are not asserted (a benchmark, not a test); what is asserted is
the shape of what it saves and that the weights it times are the weights it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scripts.bench.cold_start import (
    CONFIGS,
    IMPORTED,
    load_onto,
    loaded_equals_saved,
    main,
    tensor_plan,
    write_random_transformer,
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    results = tmp_path_factory.mktemp("bench-results")
    figures = main(["--config", "tiny", "--import-runs", "1"], results_dir=results)
    return figures, results / "cold_start.json"


def test_the_run_saves_every_stage_with_the_machine(smoke: tuple[dict, Path]) -> None:
    figures, saved = smoke
    document = json.loads(saved.read_text())
    assert document["benchmark"] == "cold_start"
    assert document["command"] == "python -m scripts.bench.cold_start --config tiny --import-runs 1"
    assert document["machine"]["cpus"] >= 1
    assert document["figures"] == json.loads(json.dumps(figures))
    assert figures["device"] == "cpu"
    assert figures["config"] == "tiny"
    assert set(figures) == {
        "device",
        "config",
        "imports",
        "weights",
        "full_14b",
        "snapshot_restore",
    }


def test_the_import_stage_times_each_module_of_the_stack(smoke: tuple[dict, Path]) -> None:
    imports = smoke[0]["imports"]
    assert list(imports["median_s"]) == list(IMPORTED)
    assert all(seconds > 0 for seconds in imports["median_s"].values())
    assert imports["runs"] == len(imports["totals_s"]) == 1
    # One run: its total is the median, and the modules' seconds add up to it.
    assert imports["total_median_s"] == imports["totals_s"][0]
    assert sum(imports["median_s"].values()) == pytest.approx(imports["total_median_s"], abs=0.01)


def test_the_weights_stage_reads_what_it_wrote(smoke: tuple[dict, Path]) -> None:
    weights = smoke[0]["weights"]
    plan = tensor_plan(CONFIGS["tiny"])
    assert weights["tensors"] == len(plan)
    expected_bytes = sum(
        torch.Size(shape).numel() * dtype.itemsize for shape, dtype in plan.values()
    )
    assert weights["bytes"] == expected_bytes
    assert weights["files"] == 2  # one base shard, the adapter
    assert weights["loaded_equals_saved"] is True
    assert weights["load_s"] == pytest.approx(weights["build_s"] + weights["to_device_s"], abs=2e-3)
    assert weights["load_gb_per_s"] > 0
    # tiny's rate is all overhead: no 14B figure is projected from it.
    assert smoke[0]["full_14b"]["load_s_at_this_rate"] is None
    assert 30e9 < smoke[0]["full_14b"]["bytes"] < 45e9  # the 14B transformer, as loaded


def test_snapshot_restore_is_said_to_be_unmeasured(smoke: tuple[dict, Path]) -> None:
    restore = smoke[0]["snapshot_restore"]
    assert restore["measured"] is False
    assert "Modal" in restore["why"]


def test_loaded_weights_equal_the_files_in_the_loaders_dtypes(tmp_path: Path) -> None:
    config = CONFIGS["tiny"]
    checkpoint = write_random_transformer(tmp_path, config, seed=7, device="cpu")
    model, _ = load_onto(checkpoint, "cpu")
    on_disk = {
        **load_file(checkpoint.adapter_file),
        **{
            name: tensor
            for shard in sorted(checkpoint.transformer_dir.glob("*.safetensors"))
            for name, tensor in load_file(shard).items()
        },
    }
    state = model.state_dict()
    assert set(state) == set(on_disk)
    assert all(torch.equal(state[name], on_disk[name]) for name in on_disk)
    assert {tensor.dtype for tensor in state.values()} == {torch.bfloat16, torch.float32}
    assert loaded_equals_saved(model, config, seed=7, device="cpu")
    # The check can fail: another seed's weights, or one value changed, are not the ones written.
    assert not loaded_equals_saved(model, config, seed=8, device="cpu")
    first = next(iter(state.values()))
    first.view(-1)[0] += 1
    assert not loaded_equals_saved(model, config, seed=7, device="cpu")


def test_the_full_14b_is_refused_on_the_cpu(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--config", "14b", "--device", "cpu"], results_dir=tmp_path)
    assert refused.value.code == 2
    assert not list(tmp_path.iterdir())

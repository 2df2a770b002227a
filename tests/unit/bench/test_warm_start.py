"""The warm-start benchmark's swap measurement at tiny size on the CPU, so it cannot rot. Its
figures are not asserted (a benchmark, not a test); what is asserted is the shape of what it
saves and that the swapped weights it times are the ones it wrote. The warm-up half compiles
(minutes on a CPU) and is covered by ``tests/unit/multitalk/test_warmup.py`` instead."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.bench.warm_start import main


def test_the_swap_run_saves_its_figures_with_the_machine(tmp_path: Path) -> None:
    figures = main(["--config", "tiny", "--skip-warmup", "--device", "cpu"], results_dir=tmp_path)
    document = json.loads((tmp_path / "warm_start.json").read_text())
    assert document["benchmark"] == "warm_start"
    assert document["command"] == (
        "python -m scripts.bench.warm_start --config tiny --skip-warmup --device cpu"
    )
    assert document["machine"]["cpus"] >= 1
    assert document["figures"] == json.loads(json.dumps(figures))
    swap = figures["adapter_swap"]
    assert swap["swapped_equals_file"] is True
    assert 0 < swap["adapter_bytes"] < swap["transformer_bytes"]
    assert swap["full_14b"]["adapter_bytes"] < swap["full_14b"]["transformer_bytes"]
    assert "first_jobs" not in figures

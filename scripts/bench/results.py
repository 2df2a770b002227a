"""Saving benchmark figures with what is needed to compare them later."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).with_name("results")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS_DIR.parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def save(name: str, figures: dict[str, Any], command: str, directory: Path = RESULTS_DIR) -> Path:
    """Print ``figures`` and write them, with the machine and the commit, to ``directory``."""
    document = {
        "benchmark": name,
        "command": command,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "figures": figures,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    print(f"saved to {path}")
    return path


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with few samples, report what was seen)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]

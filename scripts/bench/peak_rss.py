"""Peak resident memory of a render, 10 s against 60 s of output (``tiny`` preset, CPU).

``python -m scripts.bench.peak_rss`` renders each length in a fresh process and reads that
process's peak RSS. Streaming clips should keep memory flat as videos get longer: the figure that
matters is the ratio (60 s / 10 s), close to 1 when frames are not all held in memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench.results import save

LENGTHS_S = (10, 60)
RENDER_SNIPPET = """
import json, resource, sys, time
from pathlib import Path
from scripts import samples
from modal_service.multitalk import RenderSpec, load_renderer
seconds, work = float(sys.argv[1]), Path(sys.argv[2])
audio = samples.write_speech_wav(work / "a.wav", seconds)
image = samples.draw_portrait(work / "p.png")
renderer = load_renderer("tiny")
started = time.monotonic()
outcome = renderer.render(
    RenderSpec(audio_paths=[audio], image_path=image, max_duration_s=seconds), work / "out.mp4"
)
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "render_s": time.monotonic() - started,
    "frames": outcome.frames,
    "duration_s": outcome.duration_s,
}))
"""


def main() -> None:
    figures: dict[str, dict[str, float]] = {}
    for seconds in LENGTHS_S:
        with tempfile.TemporaryDirectory(prefix="bench-rss-") as work:
            completed = subprocess.run(
                [sys.executable, "-c", RENDER_SNIPPET, str(seconds), work],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[2],
            )
        measured = json.loads(completed.stdout.strip().splitlines()[-1])
        figures[f"{seconds}s"] = {key: round(value, 2) for key, value in measured.items()}
    ratio = figures["60s"]["peak_rss_mb"] / figures["10s"]["peak_rss_mb"]
    save(
        "peak_rss",
        {"renders": figures, "rss_ratio_60s_over_10s": round(ratio, 3)},
        "python -m scripts.bench.peak_rss",
    )


if __name__ == "__main__":
    main()

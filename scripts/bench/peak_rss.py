"""Long renders on the CPU: peak memory against length, and colour drift from the first clip.

    python -m scripts.bench.peak_rss [--preset tiny tiny-infinitetalk] [--lengths 10 60 600]

Each preset renders each length in a fresh process (the ``tiny`` presets: seeded random weights,
the real architecture and clip streaming), which reports its own peak resident memory. Clips
stream to the encoder, so memory should stay flat as videos get longer: the figure that matters
is the ratio of the longest render's peak to the shortest's, close to 1 when frames are not all
held. Each render also reports its seconds per clip and the colour drift of its last clip against
its first: the distance between their mean colours in CIELAB (ΔE76, about 2.3 is a just
noticeable difference), which per-clip colour correction toward the reference should hold down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.results import save

RENDER_SNIPPET = """
import json, resource, sys, time
from pathlib import Path
from scripts import samples
from modal_service.multitalk import RenderSpec, load_renderer
preset, seconds, work = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
audio = samples.write_speech_wav(work / "a.wav", seconds)
image = samples.draw_portrait(work / "p.png")
renderer = load_renderer(preset)
started = time.monotonic()
outcome = renderer.render(
    RenderSpec(audio_paths=[audio], image_path=image, max_duration_s=seconds, seed=1),
    work / "out.mp4",
)
print(json.dumps({
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "render_s": time.monotonic() - started,
    "frames": outcome.frames,
    "clip_frames": renderer._preset.frame_num,
    "motion_frames": renderer._preset.motion_frames,
}))
"""


def mean_lab(frames: np.ndarray) -> np.ndarray:
    """The mean CIELAB colour of ``uint8`` RGB frames ``(T, H, W, 3)`` (sRGB, D65)."""

    rgb = frames.reshape(-1, 3).astype(np.float64) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = (
        linear
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    )
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )
    return lab.mean(axis=0)


def colour_drift(video: Path, clip_frames: int, stride: int) -> float:
    """ΔE76 between the mean colours of the video's first clip and its last clip's new frames."""
    from modal_service.media.ffmpeg import run_ffmpeg
    from modal_service.media.probe import probe_media

    info = probe_media(video)
    raw = run_ffmpeg(["-i", str(video), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)
    first = frames[:clip_frames]
    last = frames[-min(stride, len(frames)) :]
    return float(np.linalg.norm(mean_lab(last) - mean_lab(first)))


def render(preset: str, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as folder:
        work = Path(folder)
        completed = subprocess.run(
            [sys.executable, "-c", RENDER_SNIPPET, preset, str(seconds), str(work)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        measured = json.loads(completed.stdout.strip().splitlines()[-1])
        clip, motion = measured.pop("clip_frames"), measured.pop("motion_frames")
        stride = clip - motion
        clips = 1 + max(0, -(-(measured["frames"] - clip) // stride))
        measured["clips"] = clips
        measured["s_per_clip"] = measured["render_s"] / clips
        measured["colour_drift_delta_e"] = colour_drift(work / "out.mp4", clip, stride)
    return {key: round(value, 3) for key, value in measured.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["tiny"])
    parser.add_argument("--lengths", nargs="+", type=float, default=[10.0, 60.0])
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    for preset in args.preset:
        renders = {f"{seconds:g}s": render(preset, seconds) for seconds in args.lengths}
        peaks = [entry["peak_rss_mb"] for entry in renders.values()]
        figures[preset] = {
            "renders": renders,
            "rss_ratio_longest_over_shortest": round(peaks[-1] / peaks[0], 3),
        }
    command = " ".join(sys.argv[1:] if argv is None else argv)
    save("peak_rss", figures, f"python -m scripts.bench.peak_rss {command}".strip())
    return figures


if __name__ == "__main__":
    main()

"""The bundled sample inputs, made by the project itself: a speech-like WAV and a drawn portrait.

Nothing is downloaded. The voice is a small source-filter synthesiser (a glottal pulse train with a
wandering pitch through vowel formant resonators, with pauses between syllables): it is not words,
but it has the loudness envelope and spectrum of speech, which is what the audio front-end and the
lip-sync conditioning look at. The portrait is a face drawn with Pillow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw
from scipy.signal import lfilter

SAMPLE_RATE = 16_000
# (F1, F2, F3) in Hz for the vowels a, e, i, o, u (adult speaker, rounded textbook values).
VOWEL_FORMANTS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410),
                  (300, 870, 2240))  # fmt: skip


def _resonator(signal: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """A second-order all-pole resonance at ``frequency`` (the classic formant filter)."""
    radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * np.pi * frequency / SAMPLE_RATE
    return lfilter([1 - radius], [1, -2 * radius * np.cos(theta), radius**2], signal)


def speech_like(duration_s: float, seed: int = 7, base_pitch_hz: float = 120.0) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at 16 kHz: syllables of varying vowels and pitch."""
    rng = np.random.default_rng(seed)
    total = int(duration_s * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float64)
    position = int(0.15 * SAMPLE_RATE)
    while position < total:
        length = int(rng.uniform(0.12, 0.32) * SAMPLE_RATE)
        length = min(length, total - position)
        t = np.arange(length) / SAMPLE_RATE
        pitch = base_pitch_hz * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
        phase = np.cumsum(pitch / SAMPLE_RATE)
        pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
        source = lfilter([1.0], [1.0, -0.97], pulses) + 0.02 * rng.standard_normal(length)
        f1, f2, f3 = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
        voiced = sum(_resonator(source, f, bw) for f, bw in ((f1, 80), (f2, 110), (f3, 160)))
        envelope = np.sin(np.pi * np.linspace(0, 1, length)) ** 0.6
        out[position : position + length] += voiced * envelope
        position += length + int(rng.uniform(0.03, 0.25) * SAMPLE_RATE)
    peak = np.max(np.abs(out)) or 1.0
    return (0.8 * out / peak).astype(np.float32)


def write_speech_wav(path: Path, duration_s: float = 3.0, seed: int = 7) -> Path:
    """Write a 16 kHz mono PCM WAV of synthetic speech to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speech_like(duration_s, seed=seed), SAMPLE_RATE, subtype="PCM_16")
    return path


def draw_portrait(path: Path, size: tuple[int, int] = (512, 512), people: int = 1) -> Path:
    """Draw a simple frontal portrait (one or two faces side by side) as a PNG."""
    width, height = size
    image = Image.new("RGB", size, (188, 208, 226))
    draw = ImageDraw.Draw(image)
    for index in range(people):
        cx = width * (2 * index + 1) / (2 * people)
        scale = min(width / people, height) / 512
        skin = (224, 172, 140) if index == 0 else (170, 120, 90)
        draw.rectangle(
            [cx - 150 * scale, 400 * scale, cx + 150 * scale, height], fill=(60, 80, 120)
        )
        draw.rectangle([cx - 35 * scale, 330 * scale, cx + 35 * scale, 420 * scale], fill=skin)
        draw.ellipse([cx - 110 * scale, 80 * scale, cx + 110 * scale, 370 * scale], fill=skin)
        draw.chord([cx - 115 * scale, 60 * scale, cx + 115 * scale, 230 * scale], 180, 360,
                   fill=(70, 45, 30))  # fmt: skip
        for side in (-1, 1):
            ex = cx + side * 45 * scale
            draw.ellipse([ex - 18 * scale, 190 * scale, ex + 18 * scale, 212 * scale], fill="white")
            draw.ellipse(
                [ex - 8 * scale, 193 * scale, ex + 8 * scale, 209 * scale], fill=(50, 40, 30)
            )
        draw.line([cx, 220 * scale, cx - 10 * scale, 270 * scale, cx + 5 * scale, 275 * scale],
                  fill=(180, 120, 100), width=max(1, int(4 * scale)))  # fmt: skip
        draw.arc([cx - 45 * scale, 280 * scale, cx + 45 * scale, 320 * scale], 10, 170,
                 fill=(150, 60, 60), width=max(1, int(6 * scale)))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_talking_video(path: Path, duration_s: float = 2.0, fps: int = 30) -> Path:
    """Write an H.264 MP4 of the portrait swaying gently, as a source video to dub.

    Phone-like on purpose: 30 fps (the render resamples to 25) and its own AAC track (the
    dubbed video replaces it)."""
    import subprocess

    from modal_service.media.ffmpeg import ffmpeg_exe

    with Image.open(draw_portrait(path.with_suffix(".png"))) as still:
        portrait = np.asarray(still.convert("RGB"))
    path.with_suffix(".png").unlink()
    height, width, _ = portrait.shape
    count = round(duration_s * fps)
    frames = [
        np.roll(portrait, round(6 * np.sin(2 * np.pi * index / fps)), axis=1)
        for index in range(count)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
         "-i", "pipe:0", "-f", "lavfi", "-i", f"sine=frequency=220:duration={duration_s}",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        input=b"".join(frame.tobytes() for frame in frames),
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(write_speech_wav(args.out_dir / "speech.wav", args.duration))
    print(draw_portrait(args.out_dir / "portrait.png"))


if __name__ == "__main__":
    main()

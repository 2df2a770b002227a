"""Test media made on the spot: numpy tones through soundfile/ffmpeg, portraits drawn with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pillow_heif
import soundfile
from PIL import Image, ImageDraw

from modal_service.media.ffmpeg import run_ffmpeg


def write_tone(path: Path, seconds: float, rate: int = 22_050, amplitude: float = 0.3) -> Path:
    """A 220 Hz tone with a slow tremolo (so loudness is measurable), in the format of ``path``."""
    t = np.arange(int(seconds * rate)) / rate
    samples = amplitude * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    wav = path.with_suffix(".src.wav") if path.suffix != ".wav" else path
    soundfile.write(wav, samples.astype(np.float32), rate)
    if wav != path:
        codec = {".mp3": "libmp3lame", ".flac": "flac", ".m4a": "aac", ".ogg": "libvorbis"}
        args = ["-y", "-i", str(wav)]
        args += ["-c:a", codec[path.suffix]] if path.suffix in codec else []
        assert run_ffmpeg([*args, str(path)]).returncode == 0
        wav.unlink()
    return path


def draw_portrait(path: Path, size: tuple[int, int] = (320, 480), **save_args: object) -> Path:
    """A face-like portrait in the format of ``path``'s suffix (``.heic`` through pillow-heif)."""
    if path.suffix.lower() in (".heic", ".heif"):
        pillow_heif.register_heif_opener()  # Pillow writes HEIF only once it is registered
    image = Image.new("RGB", size, (90, 120, 160))
    draw = ImageDraw.Draw(image)
    w, h = size
    draw.ellipse((w * 0.25, h * 0.2, w * 0.75, h * 0.65), fill=(235, 195, 165))
    draw.rectangle((w * 0.2, h * 0.7, w * 0.8, h), fill=(40, 40, 60))
    image.save(path, **save_args)
    return path

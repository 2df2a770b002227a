"""Lossless video segments: frames stored so that reading them back gives the same bytes.

FFV1 in Matroska, as planar GBR: rgb24 to gbrp is a reordering of the same bytes, nothing is
rounded (a YUV format would round). A resumed render replays its finished clips from these into
the output encoder, which then sees exactly the frames an uninterrupted render gave it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from modal_service.media.ffmpeg import ffmpeg_exe, run_ffmpeg

_TIMEOUT_S = 600.0


def write_segment(path: Path, frames: np.ndarray) -> None:
    """Write ``uint8`` RGB frames ``(T, H, W, 3)`` to ``path``; raise ``RuntimeError`` if ffmpeg
    fails."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or not len(frames):
        raise ValueError(f"expected uint8 (T>0, H, W, 3), got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    args = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-i", "pipe:0",
        "-c:v", "ffv1", "-level", "3", "-pix_fmt", "gbrp", "-f", "matroska", str(path),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 (bundled binary, argument list)
        args,
        input=np.ascontiguousarray(frames).tobytes(),
        capture_output=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {done.stderr.decode()[-500:]}")


def read_segment(path: Path, width: int, height: int, frames: int) -> np.ndarray:
    """The ``frames`` RGB frames ``(T, H, W, 3)`` of a segment; ``RuntimeError`` if it does not
    decode to exactly that."""
    done = run_ffmpeg(
        ["-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        timeout_s=_TIMEOUT_S,
    )
    expected = frames * height * width * 3
    if done.returncode != 0 or len(done.stdout) != expected:
        raise RuntimeError(
            f"{path.name} decoded to {len(done.stdout)} bytes, not {expected} "
            f"(ffmpeg {done.returncode}: {done.stderr.decode(errors='replace')[-300:]})"
        )
    return np.frombuffer(done.stdout, np.uint8).reshape(frames, height, width, 3)

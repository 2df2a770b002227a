"""Streamed MP4 output: one ffmpeg process encodes H.264 and muxes AAC in the same pass.

Frames arrive clip by clip through stdin as raw RGB, so host memory holds one clip at a time no
matter how long the video is; the soundtrack is a float WAV trimmed to the video's duration.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from types import TracebackType

import numpy as np

from modal_service.media.ffmpeg import ffmpeg_exe

VIDEO_FPS = 25.0


class Mp4Writer:
    """Write ``uint8`` RGB frames ``(T, H, W, 3)`` and a soundtrack into one H.264/AAC MP4.

    Use as a context manager: a clean exit finalises the file; an exception kills ffmpeg and
    removes the partial output, so nothing half-written is left behind.
    """

    def __init__(
        self,
        out_path: Path,
        width: int,
        height: int,
        audio_path: Path,
        duration_s: float,
        fps: float = VIDEO_FPS,
        crf: int = 18,
        log_path: Path | None = None,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
        self.out_path = Path(out_path)
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self._log = open(log_path or self.out_path.with_suffix(".ffmpeg.log"), "wb")  # noqa: SIM115
        args = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps}",
            "-i", "pipe:0",
            "-i", str(audio_path),
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k",
            "-t", f"{duration_s:.6f}",
            "-movflags", "+faststart",
            str(self.out_path),
        ]  # fmt: skip
        self._proc = subprocess.Popen(  # noqa: S603 (bundled binary, argument list)
            args, stdin=subprocess.PIPE, stdout=self._log, stderr=self._log
        )

    def write(self, frames: np.ndarray) -> None:
        """Append frames shaped ``(T, height, width, 3)``, dtype uint8."""
        if frames.dtype != np.uint8 or frames.shape[1:] != (self.height, self.width, 3):
            raise ValueError(
                f"expected uint8 (T, {self.height}, {self.width}, 3), got {frames.shape}"
            )
        assert self._proc.stdin is not None
        self._proc.stdin.write(np.ascontiguousarray(frames).tobytes())
        self.frames_written += frames.shape[0]

    def close(self) -> None:
        """Finish encoding; raise ``RuntimeError`` with ffmpeg's message if it failed."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        code = self._proc.wait()
        self._log.close()
        log_file = Path(self._log.name)
        message = log_file.read_text(errors="replace")[-2000:]
        log_file.unlink(missing_ok=True)
        if code != 0:
            self.out_path.unlink(missing_ok=True)
            raise RuntimeError(f"ffmpeg failed ({code}): {message.strip()}")

    def abort(self) -> None:
        """Stop ffmpeg and delete whatever it wrote."""
        self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        self.out_path.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

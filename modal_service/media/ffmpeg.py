"""Locate and run the ffmpeg binary bundled with imageio-ffmpeg."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Sequence


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg (imported lazily: the package downloads nothing at import)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: Sequence[str], *, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    """Run ffmpeg with ``args`` (no shell), capturing stdout as bytes and stderr as text."""
    # The executable is the bundled binary and the arguments a list: no shell, no injection.
    return subprocess.run(  # noqa: S603
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )

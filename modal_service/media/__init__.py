"""Media I/O for the GPU side: audio decode and loudness, portrait loading, MP4 encode + mux.

Everything here shells out to the ffmpeg binary that ships with ``imageio-ffmpeg`` (no system
ffmpeg needed) and raises :class:`MediaError` with a stable ``reason`` for bad input.
"""

from __future__ import annotations

from modal_service.media.errors import AudioError, ImageError, MediaError

__all__ = ["AudioError", "ImageError", "MediaError"]

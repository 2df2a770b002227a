"""Media I/O for the GPU side: audio decode and loudness, portrait loading, the source video's
streamed decode (dubbing), MP4 encode + mux.

Everything here shells out to the ffmpeg binary that ships with ``imageio-ffmpeg`` (no system
ffmpeg needed) and raises :class:`MediaError` with a stable ``reason`` for bad input.
"""

from __future__ import annotations

from modal_service.media.errors import AudioError, ImageError, MediaError, VideoError

__all__ = ["AudioError", "ImageError", "MediaError", "VideoError"]

"""The source video to dub (InfiniteTalk): checked up front, then streamed at 25 fps, upright,
cropped to the render's size, looped or cut to the audio's length, in flat memory.

:func:`prepare_source_video` probes the header (:mod:`modal_service.media.video_header`, which
refuses before any decode) and decodes the first frame, so a file whose codec cannot really be
decoded is ``video_invalid`` before any model time is spent. :meth:`PreparedVideo.frames` then
opens a :class:`SourceFrames` at the bucket the renderer chose.

**Decoding.** One ffmpeg process per pass writes raw RGB to a pipe, read one frame at a time:
host memory holds the frames the caller asked for and nothing else, whatever the video's length.
ffmpeg turns the picture upright itself (``-autorotate`` is its default: a phone's portrait
video, stored landscape with a display rotation, comes out portrait), resamples any frame rate,
variable ones included, to exactly :data:`~modal_service.media.video.VIDEO_FPS` (the ``fps``
filter: each output instant shows the source frame on screen then), then scales to cover the
render size and crops the centre, as ``multitalk.buckets.resize_and_crop`` does to a portrait.

**Length.** The output always has the audio's length: the renderer asks for as many frames as
the audio needs and this reader serves them.

* The audio is shorter: the source is cut (the reader is closed early; ffmpeg is stopped).
* The audio is longer: the source restarts from its first frame (a loop). InfiniteTalk's
  reference code clamps to the last frame instead, which freezes the speaker's body and head
  while only the lips move; a loop keeps them alive. Restart rather than ping-pong (forwards,
  then backwards) because a restart is one more forward pass of the same decoder, with the same
  frames and flat memory, while playing a compressed video backwards needs either the whole
  pass in memory or a seek per chunk, and seeking lands on keyframes, not exact frames. The
  price is one cut at each loop point, which the renderer can place on a clip boundary.

A truncated file (an upload cut short, damaged data) is used as far as it decodes, like the
audio: its loop is what survives.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict

from modal_service.media.errors import VideoError
from modal_service.media.ffmpeg import ffmpeg_exe
from modal_service.media.video import VIDEO_FPS
from modal_service.media.video_header import VideoInfo, probe_video
from modal_service.video_rules import DURATION_SLACK_S, MAX_VIDEO_BYTES, MAX_VIDEO_S

logger = logging.getLogger(__name__)

_STDERR_TAIL = 2000
_EXIT_TIMEOUT_S = 10.0


class PreparedVideo(BaseModel):
    """A source video that passed every check, and its first frame."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    path: Path
    name: str
    """How messages name the caller's input, e.g. ``"the source video (talk.mp4)"``."""
    info: VideoInfo
    max_s: float
    first_frame: Image.Image
    """Upright RGB at the video's display size: for the bucket choice and wherever the model
    needs one still picture (as the portrait is used)."""

    @property
    def frame_count(self) -> int:
        """Frames at 25 fps by the header's length (the decode may differ by one; the exact
        count is :attr:`SourceFrames.source_length` after a pass)."""
        return max(1, round(self.info.duration_s * VIDEO_FPS))

    def frames(self, height: int, width: int) -> SourceFrames:
        """A streaming reader of ``(height, width)`` RGB frames at 25 fps, looped."""
        return SourceFrames(
            self.path,
            self.name,
            height=height,
            width=width,
            display=(self.info.width, self.info.height),
            max_s=self.max_s,
        )


def prepare_source_video(
    path: Path, name: str, *, max_s: float = MAX_VIDEO_S, max_bytes: int = MAX_VIDEO_BYTES
) -> PreparedVideo:
    """Probe ``path``, refuse what can never be dubbed, and decode its first frame.

    Args:
        path: the downloaded file (its name and extension are ignored: content decides).
        name: how messages name the caller's input, e.g. ``"the source video (talk.mp4)"``.
        max_s: the deployment's longest source video; a longer one is refused, never cut.
        max_bytes: the deployment's largest file.

    Raises:
        VideoError: ``unsupported_format``, ``video_invalid``, ``video_too_long`` or
            ``video_too_large``; the message starts with ``name``.
    """
    path = Path(path)
    info = probe_video(path, name, max_s=max_s, max_bytes=max_bytes)
    with SourceFrames(
        path, name, height=info.height, width=info.width, display=(info.width, info.height)
    ) as reader:
        first = reader.frame_at(0)
    return PreparedVideo(
        path=path, name=name, info=info, max_s=max_s, first_frame=Image.fromarray(first)
    )


def cover_size(src_h: int, src_w: int, target_h: int, target_w: int) -> tuple[int, int]:
    """The size that covers ``target`` keeping the source's aspect: the same arithmetic as
    ``multitalk.buckets`` (not imported: it needs torch, and this module runs without it)."""
    scale = max(target_h / src_h, target_w / src_w)
    return math.ceil(scale * src_h), math.ceil(scale * src_w)


class SourceFrames:
    """The source's frames at 25 fps, ``(height, width)`` upright RGB ``uint8``, in order, looped.

    Indices are positions on the output's timeline (frame ``k`` shows at ``k / 25`` s), so any
    index is valid: past the source's end the source restarts. Requests must not go back past
    the start of the previous request (clip starts only grow: 0, 72, 144...); frames from that
    start on are kept, so overlapping clips cost no second decode. Use as a context manager, or
    call :meth:`close`: it stops ffmpeg, which is how the source is cut.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        height: int,
        width: int,
        display: tuple[int, int],
        max_s: float = MAX_VIDEO_S,
    ) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"frames need a positive size, got {height}x{width}")
        self.path, self.name = Path(path), name
        self.height, self.width = height, width
        self.source_length: int | None = None
        """Frames in one pass of the source at 25 fps; known once the first pass has ended."""
        self._filter = _filter(display, height, width)
        self._cap_s = max_s + DURATION_SLACK_S
        self._kept: deque[np.ndarray] = deque()
        self._kept_from = 0  # output index of self._kept[0]
        self._next = 0  # output index the decoder yields next
        self._pass_read = 0  # frames read in the current pass
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # -- reading -----------------------------------------------------------------------------

    def clip(self, start: int, count: int) -> np.ndarray:
        """Frames ``start`` .. ``start + count - 1``, shaped ``(count, height, width, 3)``."""
        if start < self._kept_from or count < 1:
            raise ValueError(
                f"frames are read in order: asked for {start} (+{count}) after {self._kept_from}"
            )
        while self._kept and self._kept_from < start:  # what no later request may ask for
            self._kept.popleft()
            self._kept_from += 1
        if not self._kept:
            self._skip_to(start)
        while self._kept_from + len(self._kept) < start + count:
            self._kept.append(self._decode_next())
        return np.stack([self._kept[index] for index in range(count)])

    def frame_at(self, index: int) -> np.ndarray:
        """The frame at output ``index``, shaped ``(height, width, 3)``."""
        return self.clip(index, 1)[0]

    def _skip_to(self, start: int) -> None:
        """Decode (and drop) up to output ``start``: a jump forward, e.g. resuming a job."""
        while self._next < start:
            self._decode_next()
        self._kept_from = start

    def _decode_next(self) -> np.ndarray:
        frame = self._read_frame()
        if frame is None:
            self._end_pass()
            frame = self._read_frame()  # the next pass's first frame
            if frame is None:
                raise VideoError("video_invalid", f"{self.name} holds no decodable frame")
        self._next += 1
        return frame

    # -- the decoder ---------------------------------------------------------------------------

    def _read_frame(self) -> np.ndarray | None:
        if self._proc is None:
            self._start()
        assert self._proc is not None  # started just above: for the type checker
        assert self._proc.stdout is not None
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        view = memoryview(frame).cast("B")
        filled = 0
        while filled < len(view):
            got = self._proc.stdout.readinto(view[filled:])
            if not got:
                return None  # the end of this pass (a partial last frame is dropped)
            filled += got
        self._pass_read += 1
        return frame

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _stop)
        args = [
            ffmpeg_exe(),
            *("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"),
            *("-i", str(self.path), "-map", "0:v:0", "-an", "-sn", "-dn"),
            *("-vf", self._filter, "-t", f"{self._cap_s:.3f}"),
            *("-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"),
        ]
        # The executable is the bundled binary and the arguments a list: no shell, no injection.
        self._proc = subprocess.Popen(  # noqa: S603
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._pass_read = 0

    def _end_pass(self) -> None:
        """The decoder reached the source's end: learn its length and start the next pass."""
        read = self._pass_read
        self._stop(cut=False)
        if read == 0:
            raise VideoError("video_invalid", f"{self.name} holds no decodable frame")
        if self.source_length is None:
            self.source_length = read

    def _stop(self, *, cut: bool = True) -> None:
        """End the decoder: ``cut`` kills it (no more frames are wanted), else it is waited for
        (its output ended, so it is exiting) and a failure is logged."""
        if self._proc is None:
            return
        if cut:
            self._proc.kill()
        try:
            returncode = self._proc.wait(timeout=None if cut else _EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            returncode = self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read()[-_STDERR_TAIL:].decode("utf-8", "replace")
            self._stderr.close()
            if not cut and returncode != 0 and tail:
                # Like the audio, keep what decoded before the damage (a truncated upload).
                logger.info("ffmpeg stopped with %s on %s: %s", returncode, self.name, tail)
        self._proc, self._stderr = None, None

    def close(self) -> None:
        """Stop decoding and drop the kept frames."""
        self._stop()
        self._kept.clear()

    def __enter__(self) -> SourceFrames:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _filter(display: tuple[int, int], height: int, width: int) -> str:
    """25 fps, then cover ``(height, width)`` from the upright ``display`` size, then crop the
    centre. Scaling straight to RGB lets the crop take any offset (4:2:0 needs even ones)."""
    cover_h, cover_w = cover_size(display[1], display[0], height, width)
    top, left = (cover_h - height) // 2, (cover_w - width) // 2
    return (
        f"fps={VIDEO_FPS:g},"
        f"scale={cover_w}:{cover_h}:flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24,"
        f"crop={width}:{height}:{left}:{top},setsar=1"
    )

"""Where each clip's reference frame comes from: a still image, or the frames of a video.

InfiniteTalk conditions every clip on the source frame at the clip's audio position (the frame-0
condition and the CLIP input): a still image gives the same frame every time, a video (dubbing)
the frame at that 25 fps index. MultiTalk only ever asks for frame 0.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image

from modal_service.multitalk.buckets import resize_and_crop


class ReferenceSource(Protocol):
    """Frames at 25 fps, asked for in non-decreasing order: a sequential decoder can serve them
    without holding the video."""

    def reference_frame(self, index: int) -> Image.Image:
        """RGB frame number ``index``; past the end of a video, whatever its reader serves
        (the product's reader, ``media.source_video``, restarts the source)."""


class StillImage:
    """An image input: the same frame at every index."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image

    def reference_frame(self, index: int) -> Image.Image:
        return self.image


class BucketedSource:
    """A source's frames resized and centre-cropped to the render's bucket, as frame 0 was."""

    def __init__(self, source: ReferenceSource, height: int, width: int) -> None:
        self.source = source
        self.height = height
        self.width = width

    def reference_frame(self, index: int) -> Image.Image:
        return resize_and_crop(self.source.reference_frame(index), self.height, self.width)


class FrameReader(Protocol):
    """A decoder serving frames at 25 fps by index, in non-decreasing order."""

    def frame_at(self, index: int) -> np.ndarray:
        """``(height, width, 3)`` RGB ``uint8``."""


class DecodedVideo:
    """A source video whose reader already decodes at the render's bucket size (ffmpeg scales
    and crops each frame as ``resize_and_crop`` does a portrait)."""

    def __init__(self, reader: FrameReader) -> None:
        self.reader = reader

    def reference_frame(self, index: int) -> Image.Image:
        return Image.fromarray(self.reader.frame_at(index))

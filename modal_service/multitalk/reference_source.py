"""Where each clip's reference frame comes from: a still image, or the frames of a video.

InfiniteTalk conditions every clip on the source frame at the clip's audio position (the frame-0
condition and the CLIP input): a still image gives the same frame every time, a video (dubbing)
the frame at that 25 fps index. MultiTalk only ever asks for frame 0.
"""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from modal_service.multitalk.buckets import resize_and_crop


class ReferenceSource(Protocol):
    """Frames at 25 fps, asked for in non-decreasing order: a sequential decoder can serve them
    without holding the video."""

    def reference_frame(self, index: int) -> Image.Image:
        """RGB frame number ``index``; past the end of a video, its last frame."""


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

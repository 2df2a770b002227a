"""Output sizes: MultiTalk's aspect-ratio buckets, resize + centre crop, and speaker masks."""

from __future__ import annotations

import math

import torch
from PIL import Image

# (ratio h/w, (height, width)); MultiTalk's ASPECT_RATIO_627 (about 640^2 pixels) and
# ASPECT_RATIO_960 (about 960^2) tables.
BUCKETS: dict[str, list[tuple[float, tuple[int, int]]]] = {
    "480p": [
        (0.26, (320, 1216)), (0.38, (384, 1024)), (0.50, (448, 896)), (0.67, (512, 768)),
        (0.82, (576, 704)), (1.00, (640, 640)), (1.22, (704, 576)), (1.50, (768, 512)),
        (1.86, (832, 448)), (2.00, (896, 448)), (2.50, (960, 384)), (2.83, (1088, 384)),
        (3.60, (1152, 320)), (3.80, (1216, 320)), (4.00, (1280, 320)),
    ],
    "720p": [
        (0.22, (448, 2048)), (0.29, (512, 1792)), (0.36, (576, 1600)), (0.45, (640, 1408)),
        (0.55, (704, 1280)), (0.63, (768, 1216)), (0.76, (832, 1088)), (0.88, (896, 1024)),
        (1.00, (960, 960)), (1.14, (1024, 896)), (1.31, (1088, 832)), (1.50, (1152, 768)),
        (1.58, (1216, 768)), (1.82, (1280, 704)), (1.91, (1344, 704)), (2.20, (1408, 640)),
        (2.30, (1472, 640)), (2.67, (1536, 576)), (2.89, (1664, 576)), (3.62, (1856, 512)),
        (3.75, (1920, 512)),
    ],
}  # fmt: skip


def bucket_size(height: int, width: int, resolution: str, scale: float = 1.0) -> tuple[int, int]:
    """The bucket ``(height, width)`` closest in aspect ratio, optionally scaled (tiny preset).

    A scaled size is rounded to a multiple of 16 (VAE stride 8 times patch 2).
    """
    ratio = height / width
    _, (bucket_h, bucket_w) = min(BUCKETS[resolution], key=lambda entry: abs(entry[0] - ratio))
    if scale == 1.0:
        return bucket_h, bucket_w
    return max(16, round(bucket_h * scale / 16) * 16), max(16, round(bucket_w * scale / 16) * 16)


def _cover_size(src_h: int, src_w: int, target_h: int, target_w: int) -> tuple[int, int]:
    scale = max(target_h / src_h, target_w / src_w)
    return math.ceil(scale * src_h), math.ceil(scale * src_w)


def resize_and_crop(image: Image.Image, target_h: int, target_w: int) -> Image.Image:
    """Scale to cover the target, then crop the centre (no padding, no distortion)."""
    new_h, new_w = _cover_size(image.height, image.width, target_h, target_w)
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
    return resized.crop((left, top, left + target_w, top + target_h))


def speaker_masks(
    src_h: int,
    src_w: int,
    target_h: int,
    target_w: int,
    boxes: list[tuple[int, int, int, int]] | None = None,
    margin: float = 0.05,
) -> torch.Tensor:
    """``(3, target_h, target_w)`` masks: speaker 1, speaker 2, background.

    Boxes are ``[top, left, bottom, right]`` in source pixels; without them the speakers are
    the left and right halves with a 5% margin, as in MultiTalk. The masks get the image's
    resize and centre crop (nearest neighbour).
    """
    masks = torch.zeros(3, src_h, src_w)
    if boxes is None:
        top, bottom = int(src_h * margin), int(src_h * (1 - margin))
        half = src_w // 2
        boxes = [
            (top, int(half * margin), bottom, int(half * (1 - margin))),
            (top, int(half * margin + half), bottom, int(half * (1 - margin) + half)),
        ]
    for index, (top, left, bottom, right) in enumerate(boxes[:2]):
        masks[index, top:bottom, left:right] = 1
    masks[2] = (masks[:2].sum(dim=0) == 0).float()
    new_h, new_w = _cover_size(src_h, src_w, target_h, target_w)
    resized = torch.nn.functional.interpolate(masks[None], size=(new_h, new_w), mode="nearest")[0]
    top, left = (new_h - target_h) // 2, (new_w - target_w) // 2
    return resized[:, top : top + target_h, left : left + target_w]

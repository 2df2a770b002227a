from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modal_service.multitalk.buckets import bucket_size, resize_and_crop, speaker_masks


@pytest.mark.parametrize(
    ("source", "resolution", "expected"),
    [
        ((1080, 1920), "480p", (448, 896)),  # 16:9 landscape
        ((1000, 1000), "480p", (640, 640)),
        ((1920, 1080), "480p", (832, 448)),  # 9:16 portrait: ratio 1.78 -> bucket 1.86
        ((1080, 1920), "720p", (704, 1280)),
        ((1000, 1000), "720p", (960, 960)),
        ((1500, 1000), "720p", (1152, 768)),
    ],
)
def test_nearest_aspect_bucket(source: tuple[int, int], resolution: str, expected: tuple) -> None:
    assert bucket_size(*source, resolution) == expected
    h, w = bucket_size(*source, resolution)
    assert h % 16 == 0
    assert w % 16 == 0


def test_scaled_buckets_stay_multiples_of_16() -> None:
    assert bucket_size(1080, 1920, "480p", scale=0.1) == (48, 96)
    assert bucket_size(1000, 1000, "720p", scale=0.1) == (96, 96)


def test_resize_and_centre_crop_cover_without_distortion() -> None:
    image = Image.new("RGB", (300, 100))
    image.paste((255, 0, 0), (0, 0, 100, 100))  # left third red
    out = resize_and_crop(image, 64, 64)
    assert out.size == (64, 64)
    # Covering 64x64 scales to 192x64 and keeps the middle third: no red survives.
    pixels = np.asarray(out).astype(int)
    assert (pixels[..., 0] - pixels[..., 1]).max() < 30


def test_default_masks_are_the_two_halves_with_margins() -> None:
    masks = speaker_masks(100, 200, 100, 200)
    assert masks.shape == (3, 100, 200)
    assert masks[0, 50, 50] == 1
    assert masks[1, 50, 150] == 1
    assert masks[0, 50, 150] == 0
    assert masks[2, 1, 1] == 1  # margin is background
    assert float((masks.sum(0) == 1).float().mean()) == 1.0  # every pixel has exactly one class


def test_boxes_are_top_left_bottom_right_and_follow_the_crop() -> None:
    boxes = [(10, 20, 60, 80), (0, 100, 100, 200)]
    masks = speaker_masks(100, 200, 100, 200, boxes)
    assert masks[0, 10:60, 20:80].min() == 1
    assert masks[0].sum() == 50 * 60
    # Cropping a 100x200 source to 100x100 keeps columns 50..149 only.
    cropped = speaker_masks(100, 200, 100, 100, boxes)
    assert cropped[0, 30, :30].min() == 1  # source columns 50..79
    assert cropped[1, 50, 50:].min() == 1  # source columns 100..149

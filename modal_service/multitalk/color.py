"""Colour correction: match each frame's CIE Lab statistics to the reference portrait.

Long videos drift in colour clip after clip; MultiTalk pulls every frame's per-channel Lab mean
and standard deviation to the reference image's, then blends with the original by ``strength``.
The conversion is the standard sRGB (D65) <-> Lab, written in torch to avoid scikit-image.
"""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_EPS = 6.0 / 29.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` sRGB in [0, 1] -> Lab."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (
        torch.einsum("ij,...jhw->...ihw", _RGB_TO_XYZ.to(rgb), linear)
        / _WHITE.to(rgb)[:, None, None]
    )
    f = torch.where(xyz > _EPS**3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * _EPS**2) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_lab`, clipped to [0, 1]."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack((fy + a / 500, fy, fy - b / 200), dim=-3)
    xyz = torch.where(f > _EPS, f**3, 3 * _EPS**2 * (f - 4 / 29)) * _WHITE.to(lab)[:, None, None]
    linear = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_RGB_TO_XYZ).to(lab), xyz).clamp(
        0, 1
    )
    rgb = torch.where(linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0, 1)


def match_colors(
    frames: torch.Tensor, reference: torch.Tensor, strength: float = 1.0
) -> torch.Tensor:
    """Pull ``frames`` ``(T, 3, H, W)`` towards ``reference`` ``(3, H, W)``; both in [-1, 1]."""
    if strength <= 0:
        return frames
    src = ((frames.float() + 1) / 2).clamp(0, 1)
    src_lab = rgb_to_lab(src)
    ref_lab = rgb_to_lab(((reference.float() + 1) / 2).clamp(0, 1))
    src_mean, src_std = (
        src_lab.mean(dim=(-2, -1), keepdim=True),
        src_lab.std(dim=(-2, -1), keepdim=True),
    )
    ref_mean, ref_std = (
        ref_lab.mean(dim=(-2, -1), keepdim=True),
        ref_lab.std(dim=(-2, -1), keepdim=True),
    )
    # A flat channel (std 0) takes the reference mean, as MultiTalk does.
    ratio = torch.where(src_std > 0, ref_std / src_std.clamp_min(1e-12), torch.zeros_like(src_std))
    corrected = lab_to_rgb((src_lab - src_mean) * ratio + ref_mean)
    blended = (1 - strength) * src + strength * corrected
    return (blended * 2 - 1).to(frames.dtype)

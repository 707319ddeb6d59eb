"""Image degradations for restoration tasks: inpainting masks and super-resolution inputs.

Masks are float32 tensors of shape ``(1, H, W)``: 1 = pixel kept, 0 = pixel
missing. They broadcast over channels and batches in :func:`apply_mask`.

>>> from gan_utils.data.degradations import center_box_mask, apply_mask, sr_degrade
>>> mask = center_box_mask(64, box_fraction=0.5)      # a 32x32 hole in the middle
>>> holes = apply_mask(images, mask)                   # images (N, C, 64, 64)
>>> blurry = sr_degrade(images, low_size=16)           # 64 -> 16 -> 64, details gone

``size`` arguments take an int (square) or an ``(H, W)`` pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gan_utils.data.base import as_hw

HALF_SIDES = ("left", "right", "top", "bottom")
SR_MODES = ("bilinear", "bicubic", "nearest")


def _check_fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value}")
    return float(value)


def center_box_mask(size: int | Sequence[int], box_fraction: float = 0.5) -> torch.Tensor:
    """A centered rectangular hole covering ``box_fraction`` of the height and of the width.

    The hole is ``round(box_fraction * H)`` x ``round(box_fraction * W)`` pixels,
    offset by ``(H - h) // 2`` and ``(W - w) // 2``. Returns float32 ``(1, H, W)``,
    0 inside the box, 1 elsewhere.
    """
    h, w = as_hw(size)
    f = _check_fraction(box_fraction, "box_fraction")
    bh, bw = int(round(f * h)), int(round(f * w))
    top, left = (h - bh) // 2, (w - bw) // 2
    mask = torch.ones(1, h, w)
    mask[:, top : top + bh, left : left + bw] = 0.0
    return mask


def random_pixel_mask(size: int | Sequence[int], fraction: float, seed: int) -> torch.Tensor:
    """Exactly ``round(fraction * H * W)`` pixels missing, chosen uniformly without replacement.

    The choice depends only on ``seed`` (a private ``torch.Generator``; the
    global RNG is untouched). Returns float32 ``(1, H, W)``.
    """
    h, w = as_hw(size)
    f = _check_fraction(fraction, "fraction")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    n_missing = int(round(f * h * w))
    generator = torch.Generator().manual_seed(seed)
    missing = torch.randperm(h * w, generator=generator)[:n_missing]
    mask = torch.ones(h * w)
    mask[missing] = 0.0
    return mask.view(1, h, w)


def half_mask(size: int | Sequence[int], side: str = "left") -> torch.Tensor:
    """Half of the image missing: ``side`` names the missing half.

    ``"left"``/``"right"`` remove ``W // 2`` columns, ``"top"``/``"bottom"`` remove
    ``H // 2`` rows. Returns float32 ``(1, H, W)``.
    """
    h, w = as_hw(size)
    if side not in HALF_SIDES:
        raise ValueError(f"unknown side {side!r}: expected one of {', '.join(map(repr, HALF_SIDES))}")
    mask = torch.ones(1, h, w)
    if side == "left":
        mask[:, :, : w // 2] = 0.0
    elif side == "right":
        mask[:, :, w - w // 2 :] = 0.0
    elif side == "top":
        mask[:, : h // 2, :] = 0.0
    else:
        mask[:, h - h // 2 :, :] = 0.0
    return mask


def _check_images(images: torch.Tensor, what: str = "images") -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (3, 4):
        raise ValueError(f"{what} must be (C, H, W) or (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{what} must be floating point, got dtype {images.dtype}")


def apply_mask(images: torch.Tensor, mask: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Keep pixels where ``mask`` is 1, set them to ``fill`` where it is 0.

    ``images``: ``(C, H, W)`` or ``(N, C, H, W)`` float; ``mask``: ``(1, H, W)``,
    ``(H, W)`` or ``(N, 1, H, W)`` (soft values blend linearly). Computes
    ``images * mask + fill * (1 - mask)``; returns a new tensor of the images' shape.
    """
    _check_images(images)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    hw = tuple(images.shape[-2:])
    ok = mask.dim() in (3, 4) and tuple(mask.shape[-2:]) == hw and mask.shape[-3] == 1
    if ok and mask.dim() == 4:
        ok = images.dim() == 4 and mask.shape[0] in (1, images.shape[0])
    if not ok:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not fit images of shape {tuple(images.shape)}: "
            f"expected (1, {hw[0]}, {hw[1]}) or (N, 1, {hw[0]}, {hw[1]})"
        )
    mask = mask.to(device=images.device, dtype=images.dtype)
    return images * mask + fill * (1.0 - mask)


def downsample(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Bilinear, antialiased resize of ``(C, H, W)`` / ``(N, C, H, W)`` float images to ``size``.

    Antialiasing averages over each output pixel's footprint (as PIL does), so
    shrinking does not alias high frequencies into the result.
    """
    _check_images(images)
    out_hw = as_hw(size)
    batched = images.dim() == 4
    x = images if batched else images.unsqueeze(0)
    x = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)
    return x if batched else x.squeeze(0)


def sr_degrade(images: torch.Tensor, low_size: int | Sequence[int] = 16, mode: str = "bilinear") -> torch.Tensor:
    """Super-resolution input: downsample to ``low_size`` (antialiased), upsample back with ``mode``.

    For 64x64 images and the default ``low_size=16`` this is the 64 -> 16 -> 64
    pipeline: same shape as the input, without the fine detail. ``mode`` is
    ``"bilinear"`` (default), ``"bicubic"`` or ``"nearest"``. No clamping (bicubic
    may overshoot the input range slightly).
    """
    _check_images(images)
    if mode not in SR_MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(map(repr, SR_MODES))}")
    low_hw = as_hw(low_size, "low_size")
    hw = tuple(images.shape[-2:])
    if low_hw[0] > hw[0] or low_hw[1] > hw[1]:
        raise ValueError(f"low_size {low_hw} must not exceed the image size {hw}")
    low = downsample(images, low_hw)
    batched = low.dim() == 4
    x = low if batched else low.unsqueeze(0)
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    x = F.interpolate(x, size=hw, mode=mode, **kwargs)
    return x if batched else x.squeeze(0)

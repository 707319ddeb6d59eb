"""Pixel-range conversions, explicit about what each side holds.

Generators with a ``tanh`` output live in [-1, 1]; images on disk and most
metrics live in [0, 1]. Convert at the boundary with these two functions.
"""

from __future__ import annotations

import torch


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map [-1, 1] (tanh range) to [0, 1]. Values outside are not clamped."""
    return (x + 1.0) * 0.5


def to_tanh_range(x: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] to [-1, 1] (the range of a ``tanh`` generator)."""
    return x * 2.0 - 1.0


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    """Map uint8 pixels 0..255 to float32 in [0, 1]."""
    if x.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 tensor with values 0..255, got dtype {x.dtype}")
    return x.float() / 255.0

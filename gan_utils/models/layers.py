"""Small building blocks shared by the models: norms, spectral norm, input checks.

Every model in :mod:`gan_utils.models` validates its inputs with the helpers
here, so a wrong shape fails with a message that names the expected shape
instead of a matrix-multiplication error deep inside a layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

NormKind = Literal["batch", "none", "layer", "instance"]
NORM_KINDS: tuple[str, ...] = ("batch", "none", "layer", "instance")

_SN_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Return a normalisation layer for ``(N, channels, H, W)`` feature maps.

    ``"batch"``: ``BatchNorm2d``; ``"layer"``: ``GroupNorm(1, channels)``, i.e.
    layer norm over ``(C, H, W)`` of each sample (the choice recommended for
    WGAN-GP critics, whose penalty is per sample); ``"instance"``:
    ``InstanceNorm2d(affine=True)``; ``"none"``: ``Identity``.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORM_KINDS}, got {kind!r}")


def check_norm_kind(kind: str) -> str:
    """Raise ``ValueError`` unless ``kind`` is a known norm name; return it."""
    if kind not in NORM_KINDS:
        raise ValueError(f"norm must be one of {NORM_KINDS}, got {kind!r}")
    return kind


def apply_spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Wrap the weight of every conv / transposed-conv / linear layer in ``module``.

    Uses ``torch.nn.utils.parametrizations.spectral_norm``: the weight seen by the
    layer is ``W / sigma(W)``, with ``sigma`` estimated by power iteration on the
    weight reshaped to ``(out, -1)`` (one step per training-mode forward).
    Layers that are already parametrised are left alone. Returns ``module``.
    """
    targets = [m for m in module.modules() if isinstance(m, _SN_TYPES)]
    for layer in targets:
        if parametrize.is_parametrized(layer, "weight"):
            continue
        _spectral_norm(layer, n_power_iterations=n_power_iterations)
    return module


def _shape_str(shape: Sequence[object]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_latent(z: torch.Tensor, z_dim: int, name: str) -> torch.Tensor:
    """Validate a latent batch and return it as ``(N, z_dim)``.

    Accepts ``(N, z_dim)`` and the classic DCGAN form ``(N, z_dim, 1, 1)``;
    anything else (``(N, z_dim, 1)``, a wrong ``z_dim``, a single vector)
    raises ``ValueError`` naming the expected shape.
    """
    if not isinstance(z, torch.Tensor):
        raise TypeError(
            f"{name} expects a torch.Tensor latent of shape (N, {z_dim}), got {type(z).__name__}"
        )
    ok = (z.dim() == 2 and z.shape[1] == z_dim) or (
        z.dim() == 4 and z.shape[1] == z_dim and z.shape[2] == 1 and z.shape[3] == 1
    )
    if not ok:
        raise ValueError(
            f"{name} expects latent codes of shape (N, {z_dim}) or (N, {z_dim}, 1, 1), "
            f"got {_shape_str(z.shape)}"
        )
    return z.reshape(z.shape[0], z_dim)


def check_images(
    x: torch.Tensor, channels: int, size: int | tuple[int, int] | None, name: str
) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(N, channels, H, W)`` with ``(H, W) == size``.

    ``size=None`` checks only the rank and the channel count.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor of images, got {type(x).__name__}")
    if size is None:
        expected = f"(N, {channels}, H, W)"
        ok = x.dim() == 4 and x.shape[1] == channels
    else:
        h, w = (size, size) if isinstance(size, int) else size
        expected = f"(N, {channels}, {h}, {w})"
        ok = x.dim() == 4 and tuple(x.shape[1:]) == (channels, h, w)
    if not ok:
        raise ValueError(f"{name} expects images of shape {expected}, got {_shape_str(x.shape)}")


def check_flat(x: torch.Tensor, features: int, name: str) -> torch.Tensor:
    """Return ``x`` flattened to ``(N, features)``; ``x`` may be ``(N, features)`` or ``(N, C, H, W)``.

    Raises ``ValueError`` when the per-sample size is not ``features``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x[0].numel() != features:
        raise ValueError(
            f"{name} expects inputs of shape (N, {features}) (or (N, ...) with {features} "
            f"values per sample), got {_shape_str(x.shape)}"
        )
    return x.reshape(x.shape[0], features)


def resolution_plan(image_size: int) -> tuple[int, int]:
    """Split ``image_size`` into ``(base, n_doublings)`` with ``image_size = base * 2**n``.

    ``base`` is 4 (sizes 8, 16, 32, 64, 128, ...) or 7 (14, 28, 56, ...: the
    MNIST-style 7 -> 14 -> 28 ladder). Raises ``ValueError`` for other sizes.
    """
    for base in (4, 7):
        n, size = 0, image_size
        while size > base and size % 2 == 0:
            size //= 2
            n += 1
        if size == base and n >= 1:
            return base, n
    raise ValueError(
        f"image_size must be 4 * 2**k or 7 * 2**k with k >= 1 (e.g. 28, 32, 64, 128), got {image_size}"
    )

"""Tiny models and data for step and training checks: small MLPs without batch norm or
dropout, so one step is deterministic and cheap, conditional when built with ``num_classes``;
and class-dependent toy images that a conditional model can tell apart.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TinyGenerator(nn.Module):
    """``z (N, z_dim)`` [and ``labels (N,)``] -> images ``(N, *image_shape)`` in [-1, 1]; a 2-layer MLP."""

    def __init__(self, z_dim: int = 8, image_shape: tuple[int, ...] = (1, 28, 28), num_classes: int | None = None,
                 hidden: int = 32) -> None:
        super().__init__()
        self.z_dim, self.image_shape, self.num_classes = z_dim, tuple(image_shape), num_classes
        self.net = nn.Sequential(nn.Linear(z_dim + (num_classes or 0), hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, math.prod(image_shape)), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            if labels is None:
                raise TypeError("this conditional generator needs labels: call G(z, labels)")
            z = torch.cat([z, F.one_hot(labels.long(), self.num_classes).to(z.dtype)], dim=1)
        return self.net(z).view(z.shape[0], *self.image_shape)


class TinyDiscriminator(nn.Module):
    """Images [and labels] -> logits ``(N,)``; a 2-layer MLP, no sigmoid."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 28, 28), num_classes: int | None = None, hidden: int = 32) -> None:
        super().__init__()
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.net = nn.Sequential(nn.Linear(math.prod(image_shape) + (num_classes or 0), hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, 1))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = x.reshape(x.shape[0], -1)
        if self.num_classes is not None:
            if labels is None:
                raise TypeError("this conditional discriminator needs labels: call D(x, labels)")
            h = torch.cat([h, F.one_hot(labels.long(), self.num_classes).to(h.dtype)], dim=1)
        return self.net(h).squeeze(1)


def toy_class_images(n: int, seed: int, device: torch.device | str | None = None, num_classes: int = 10,
                     shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[Tensor, Tensor]:
    """``n`` class-dependent images in [-1, 1] and their labels ``arange(n) % num_classes``.

    Label ``k`` is a bright horizontal bar at rows ``2k + 4`` to ``2k + 6`` on a dark background, plus
    seeded Gaussian noise of scale 0.1: easy to tell apart, so a discriminator that sees the label can
    fit one batch quickly.
    """
    channels, height, width = shape
    if height < 2 * num_classes + 7 or width < 8:
        raise ValueError(f"toy_class_images: {num_classes} bars need images of at least {2 * num_classes + 7} rows "
                         f"and 8 columns, got shape {shape}")
    labels, images = torch.arange(n) % num_classes, torch.full((n, channels, height, width), -1.0)
    for i, k in enumerate(labels.tolist()):
        images[i, :, 2 * k + 4: 2 * k + 7, 5: width - 5] = 1.0
    images = images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return images.clamp(-1, 1).to(device), labels.to(device)

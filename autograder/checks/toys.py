"""Tiny models for step and training checks: small MLPs without batch norm or dropout,
so one step is deterministic and cheap, conditional when built with ``num_classes``.
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

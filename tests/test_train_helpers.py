"""Tiny networks and data shared by the trainer tests (no tests here).

Small enough that a training step costs about a millisecond on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

SIDE = 8


class TinyG(nn.Module):
    """``z (N, 8)`` -> ``(N, 1, 8, 8)`` in [-1, 1]; optional BatchNorm (for buffer checks)."""

    def __init__(self, z_dim: int = 8, batchnorm: bool = False) -> None:
        super().__init__()
        self.z_dim = z_dim
        layers: list[nn.Module] = [nn.Linear(z_dim, 32)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(32))
        layers += [nn.ReLU(), nn.Linear(32, SIDE * SIDE), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, SIDE, SIDE)


class TinyD(nn.Module):
    """``(N, 1, 8, 8)`` -> logits ``(N,)``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class ConvG(nn.Module):
    """Conv generator with BatchNorm: ``z (N, 8)`` -> ``(N, 3, 8, 8)`` (channels_last / AMP paths)."""

    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 8
        self.net = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 4), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(-1, 8, 1, 1))


class ConvD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 1, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class CondG(nn.Module):
    """Conditional: ``G(z, labels)``; declares ``num_classes``."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.z_dim, self.num_classes = 8, num_classes
        self.embed = nn.Embedding(num_classes, 8)
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, SIDE * SIDE), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, self.embed(labels)], 1)).view(-1, 1, SIDE, SIDE)


class CondD(nn.Module):
    """Conditional critic; records the labels it was called with."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, SIDE * SIDE)
        self.net = nn.Sequential(nn.Linear(SIDE * SIDE, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
        self.seen_labels: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.seen_labels.append(labels.detach().clone())
        return self.net(x.flatten(1) + self.embed(labels)).view(-1)


class ItemDataset(Dataset):
    """A map-style dataset without ``batch()``: goes through the DataLoader path."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


def image_data(n: int = 64, channels: int = 1, side: int = SIDE, num_classes: int = 3, seed: int = 0) -> TensorDataset:
    """Random images in [-1, 1] with labels in ``[0, num_classes)``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, side, side, generator=g) * 2 - 1
    labels = torch.randint(num_classes, (n,), generator=g)
    return TensorDataset(images, labels)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of all parameters."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def all_changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(not torch.equal(a[k], b[k]) for k in a)

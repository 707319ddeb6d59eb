"""Convolutional encoder / decoder of the HUJI seed, and what is built from them.

The encoder is a small classifier-shaped network: ``n_layers`` convolutions
(kernel 4, stride 2, padding 1, so each halves the side, rounding down) with
16, 32, 64, ... filters, then a fully connected layer to a low-dimensional
code. The decoder mirrors it: FC, reshape to the coarse grid, transposed
convolutions back to the image size, then sigmoid (images in ``[0, 1]``) or
tanh (``[-1, 1]``). Defaults follow the seed: 2 conv layers and a 10-d code
for 28x28 MNIST; one more conv layer at 64x64 (CelebA64), where a 48-64-d
code is the seed's suggestion.

=================  ================================================  ==========================
image_size         encoder sizes (n_layers=None)                      channels
=================  ================================================  ==========================
28                 28 -> 14 -> 7                                      16, 32
64                 64 -> 32 -> 16 -> 8                                16, 32, 64
=================  ================================================  ==========================

Built from these:

* :class:`ConvAutoencoder`: encoder + decoder, ``forward`` returns ``(recon, z)``
  (``z`` is needed by the latent-moment losses and for interpolation).
* :class:`ConvDecoder` is also a GAN generator (``z (N, latent_dim)`` -> image;
  use ``out_activation="tanh"`` with ``[-1, 1]`` data).
* :class:`ConvDiscriminator`: the encoder shape mapped to one logit, shape
  ``(N,)`` (the HUJI loss-saturation experiment).

The encoder has no norm by default and the decoder uses BatchNorm: the decoder
doubles as a DCGAN-style generator, where BN helps, while a discriminator with
BN mixes real and fake statistics per batch. Both are configurable.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gan_utils.models.layers import (
    NormKind,
    apply_spectral_norm,
    check_images,
    check_latent,
    check_norm_kind,
    make_norm,
)
from gan_utils.models.upsample import UpsampleBlock, UpsampleMode, check_upsample_mode

__all__ = ["ConvEncoder", "ConvDecoder", "ConvAutoencoder", "ConvDiscriminator", "encoder_sizes"]

OutActivation = Literal["sigmoid", "tanh", "none"]
_OUT_ACTIVATIONS = ("sigmoid", "tanh", "none")


def default_n_layers(image_size: int) -> int:
    """The seed's default depth: 2 conv layers below 64x64, 3 from 64x64 on."""
    return 3 if image_size >= 64 else 2


def encoder_sizes(image_size: int, n_layers: int) -> list[int]:
    """Spatial sides ``[S, S//2, S//4, ...]`` (``n_layers + 1`` entries) of the encoder.

    Raises ``ValueError`` when the map would shrink below 1x1.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    sizes = [image_size]
    for _ in range(n_layers):
        if sizes[-1] < 2:
            raise ValueError(
                f"image_size {image_size} is too small for {n_layers} stride-2 conv layers"
            )
        sizes.append(sizes[-1] // 2)
    return sizes


def _activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {kind!r}")


def _out_activation(kind: str) -> nn.Module:
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"out_activation must be one of {_OUT_ACTIVATIONS}, got {kind!r}")


class ConvEncoder(nn.Module):
    """Images ``(N, channels, S, S)`` -> codes ``(N, latent_dim)``.

    Args:
        image_size: input side ``S``.
        channels: input channels (1 MNIST, 3 CelebA).
        latent_dim: output size (about 10 for MNIST, 48-64 for CelebA64).
        n_layers: stride-2 conv layers; ``None`` = 2 below 64x64, 3 from 64x64.
        base_channels: filters of the first conv (16); doubled at every layer.
        norm: norm after each conv (``"none"`` by default).
        activation: ``"relu"`` or ``"leaky_relu"`` (slope 0.2).
        fc_hidden: optional width of a hidden FC layer before the code.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        latent_dim: int = 10,
        n_layers: int | None = None,
        base_channels: int = 16,
        norm: NormKind = "none",
        activation: Literal["relu", "leaky_relu"] = "relu",
        fc_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_norm_kind(norm)
        n_layers = default_n_layers(image_size) if n_layers is None else n_layers
        self.sizes = encoder_sizes(image_size, n_layers)
        self.image_size, self.channels, self.latent_dim = image_size, channels, latent_dim
        convs: list[nn.Module] = []
        c_in = channels
        for i in range(n_layers):
            c_out = base_channels * 2**i
            convs += [
                nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=norm == "none"),
                make_norm(norm, c_out),
                _activation(activation),
            ]
            c_in = c_out
        self.features = nn.Sequential(*convs)
        self.feature_shape = (c_in, self.sizes[-1], self.sizes[-1])
        flat = c_in * self.sizes[-1] ** 2
        head: list[nn.Module] = [nn.Flatten(1)]
        if fc_hidden is not None:
            head += [nn.Linear(flat, fc_hidden), _activation(activation)]
            flat = fc_hidden
        head.append(nn.Linear(flat, latent_dim))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, channels, S, S)`` -> ``(N, latent_dim)``."""
        check_images(x, self.channels, self.image_size, type(self).__name__)
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """Codes ``(N, latent_dim)`` -> images ``(N, channels, S, S)``; the mirror of :class:`ConvEncoder`.

    Args:
        latent_dim: code size.
        image_size, channels, n_layers, base_channels: as for the encoder it mirrors
            (transposed convs use ``output_padding`` so odd sides like 7 come back).
        norm: norm after each hidden upsampling stage (``"batch"`` by default).
        out_activation: ``"sigmoid"`` (``[0, 1]``), ``"tanh"`` (``[-1, 1]``) or ``"none"`` (logits).
        upsample: ``"convtranspose"`` | ``"nearest"`` | ``"bilinear"`` (see :class:`UpsampleBlock`).
        fc_hidden: optional width of a hidden FC layer after the code.

    Accepts ``(N, latent_dim)`` or ``(N, latent_dim, 1, 1)``; ``z_dim`` is an
    alias of ``latent_dim`` so the decoder can stand in as a GAN generator.
    """

    def __init__(
        self,
        latent_dim: int = 10,
        image_size: int = 28,
        channels: int = 1,
        n_layers: int | None = None,
        base_channels: int = 16,
        norm: NormKind = "batch",
        out_activation: OutActivation = "sigmoid",
        upsample: UpsampleMode = "convtranspose",
        fc_hidden: int | None = None,
    ) -> None:
        super().__init__()
        check_norm_kind(norm)
        check_upsample_mode(upsample)
        n_layers = default_n_layers(image_size) if n_layers is None else n_layers
        sizes = encoder_sizes(image_size, n_layers)
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        self.out_activation = out_activation
        c = base_channels * 2 ** (n_layers - 1)
        self.grid_shape = (c, sizes[-1], sizes[-1])
        flat = c * sizes[-1] ** 2
        fc: list[nn.Module] = []
        d = latent_dim
        if fc_hidden is not None:
            fc += [nn.Linear(d, fc_hidden), nn.ReLU(inplace=True)]
            d = fc_hidden
        fc += [nn.Linear(d, flat), nn.ReLU(inplace=True)]
        self.fc = nn.Sequential(*fc)
        stages: list[nn.Module] = []
        for i in range(n_layers - 1, -1, -1):
            last = i == 0
            c_out = channels if last else c // 2
            pad = sizes[i] - 2 * sizes[i + 1]
            stages.append(
                UpsampleBlock(
                    c, c_out, mode=upsample, bias=last or norm == "none", output_padding=pad
                )
            )
            if last:
                stages.append(_out_activation(out_activation))
            else:
                stages += [make_norm(norm, c_out), nn.ReLU(inplace=True)]
            c = c_out
        self.stages = nn.Sequential(*stages)

    @property
    def z_dim(self) -> int:
        """Alias of ``latent_dim`` (the GAN generator convention)."""
        return self.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent_dim)`` -> ``(N, channels, S, S)`` in the range of ``out_activation``."""
        z = check_latent(z, self.latent_dim, type(self).__name__)
        h = self.fc(z).reshape(z.shape[0], *self.grid_shape)
        return self.stages(h)

    def sample_latent(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` standard-normal codes ``(n, latent_dim)``."""
        if device is None:
            device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, device=device)


class ConvAutoencoder(nn.Module):
    """HUJI-seed autoencoder: ``x (N, C, S, S)`` -> ``(recon (N, C, S, S), z (N, latent_dim))``.

    Args:
        image_size: 28 (MNIST) or 64 (CelebA64), or any size the encoder can halve.
        channels: image channels.
        latent_dim: code size (10 for MNIST, 48-64 for CelebA64).
        n_layers: conv layers per side (``None``: 2 below 64x64, 3 from 64x64).
        out_activation: ``"sigmoid"`` for ``[0, 1]`` data (``value_range="unit"``),
            ``"tanh"`` for ``[-1, 1]`` data.
        base_channels: filters of the first conv.
        upsample: decoder upsampling mode.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        latent_dim: int = 10,
        n_layers: int | None = None,
        out_activation: OutActivation = "sigmoid",
        base_channels: int = 16,
        upsample: UpsampleMode = "convtranspose",
    ) -> None:
        super().__init__()
        self.encoder = ConvEncoder(image_size, channels, latent_dim, n_layers, base_channels)
        self.decoder = ConvDecoder(
            latent_dim,
            image_size,
            channels,
            n_layers,
            base_channels,
            out_activation=out_activation,
            upsample=upsample,
        )
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` -> ``(N, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, latent_dim)`` -> ``(N, C, S, S)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (N, C, S, S)`` -> ``(recon (N, C, S, S), z (N, latent_dim))``."""
        z = self.encoder(x)
        return self.decoder(z), z


class ConvDiscriminator(nn.Module):
    """Encoder-shaped discriminator: images ``(N, C, S, S)`` -> logits ``(N,)``.

    Same conv stack as :class:`ConvEncoder` (LeakyReLU 0.2), ending in one
    logit. ``norm`` defaults to ``"none"``; ``spectral_norm=True`` wraps every
    conv and linear layer. :meth:`probability` gives ``sigmoid(logits)``.
    """

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        n_layers: int | None = None,
        base_channels: int = 16,
        norm: NormKind = "none",
        spectral_norm: bool = False,
        fc_hidden: int | None = None,
    ) -> None:
        super().__init__()
        self.body = ConvEncoder(
            image_size,
            channels,
            1,
            n_layers,
            base_channels,
            norm=norm,
            activation="leaky_relu",
            fc_hidden=fc_hidden,
        )
        self.image_size, self.channels = image_size, channels
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` -> logits ``(N,)``."""
        check_images(x, self.channels, self.image_size, type(self).__name__)
        return self.body(x).reshape(x.shape[0])

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(logits)``, shape ``(N,)``."""
        return torch.sigmoid(self(x))

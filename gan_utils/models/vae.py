"""Variational autoencoders: the fully connected VAE of Penn Table 1 and a conv VAE.

``FCVAE`` at its defaults is Table 1::

    x (N, 784) -> FC 400, ReLU -> FC 20 (mu), FC 20 (logvar)      encoder q(z|x)
    z (N, 20)  -> FC 400, ReLU -> FC 784, sigmoid                  decoder p(x|z)

The table lists a ReLU after the two 20-unit heads; the kit leaves it out: a
ReLU would forbid negative means and variances below 1 (``logvar >= 0``), so
the posterior could never move towards the data. ``logvar`` is the log of the
variance; ``std = exp(logvar / 2)``.

Both VAEs expose the same API:

* ``encode(x) -> (mu, logvar)``, each ``(N, latent_dim)``;
* ``reparameterize(mu, logvar, n_samples=None)`` -> ``z = mu + std * eps``,
  ``(N, D)``, or ``(K, N, D)`` with ``n_samples=K`` (IWAE, bits per dim);
  it always samples, in train and eval mode alike;
* ``decode_logits(z)`` -> pre-sigmoid outputs (for a stable Bernoulli NLL with
  ``binary_cross_entropy_with_logits``); ``decode(z)`` -> images in ``[0, 1]``;
  both accept ``z`` with any leading dims ``(..., latent_dim)``;
* ``forward(x, return_logits=False) -> (recon, mu, logvar)``;
* ``sample(n)`` -> ``n`` images decoded from the prior ``N(0, I)``.

``GaussianFCVAE`` is ``FCVAE`` with a continuous decoder for bits per dim: the
same network gives the means ``decode(z) = sigmoid(logits)`` and one learned
log standard deviation per pixel (``log_scale``, shared by all images), so
``p(x|z) = N(x; decode(z), diag(decoder_sigma()^2))`` is a density of
dequantized data. A Bernoulli decoder is not (it gives probabilities of binary
pixels), and a Gaussian with unit variance is a density but a very poor one
for data in ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gan_utils.models.autoencoder import ConvDecoder, ConvEncoder, OutActivation
from gan_utils.models.layers import check_flat, resolution_plan
from gan_utils.models.upsample import UpsampleMode

__all__ = ["FCVAE", "ConvVAE", "GaussianFCVAE", "reparameterize"]


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None
) -> torch.Tensor:
    """Sample ``z ~ N(mu, exp(logvar))`` differentiably: ``z = mu + exp(logvar / 2) * eps``.

    ``mu, logvar``: ``(N, D)``. Returns ``(N, D)``, or ``(n_samples, N, D)``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(
            f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    std = torch.exp(0.5 * logvar)
    if n_samples is None:
        return mu + std * torch.randn_like(std)
    eps = torch.randn((n_samples, *std.shape), dtype=std.dtype, device=std.device)
    return mu.unsqueeze(0) + std.unsqueeze(0) * eps


def _check_code(z: torch.Tensor, latent_dim: int, name: str) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() < 2 or z.shape[-1] != latent_dim:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(
            f"{name} expects latent codes of shape (N, {latent_dim}) or (K, N, {latent_dim}), got {shape}"
        )


class _VAEMixin:
    """Shared sampling / forward logic; subclasses define encode and decode_logits."""

    latent_dim: int
    out_activation: str

    def reparameterize(
        self, mu: torch.Tensor, logvar: torch.Tensor, n_samples: int | None = None
    ) -> torch.Tensor:
        """See :func:`reparameterize`."""
        return reparameterize(mu, logvar, n_samples)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., latent_dim)`` -> images ``(..., C, H, W)`` after the output activation."""
        logits = self.decode_logits(z)  # type: ignore[attr-defined]
        if self.out_activation == "sigmoid":
            return torch.sigmoid(logits)
        if self.out_activation == "tanh":
            return torch.tanh(logits)
        return logits

    def forward(
        self, x: torch.Tensor, return_logits: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` -> ``(recon or logits shaped like x, mu (N, D), logvar (N, D))``."""
        mu, logvar = self.encode(x)  # type: ignore[attr-defined]
        z = self.reparameterize(mu, logvar)
        out = self.decode_logits(z) if return_logits else self.decode(z)  # type: ignore[attr-defined]
        return out.reshape(x.shape), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` images decoded from ``z ~ N(0, I)``, in the output range."""
        if device is None:
            device = next(self.parameters()).device  # type: ignore[attr-defined]
        return self.decode(torch.randn(n, self.latent_dim, device=device))


class FCVAE(_VAEMixin, nn.Module):
    """Fully connected VAE (Penn Table 1): 784 -> 400 -> (20, 20) -> 400 -> 784.

    Args:
        in_features: pixels per image (784 for MNIST).
        hidden: hidden units (400).
        latent_dim: code size (20).
        image_shape: shape ``decode`` gives each image (``(1, 28, 28)``; its
            product must equal ``in_features``). ``forward`` returns the
            reconstruction in the shape of its input, so ``(N, 784)`` and
            ``(N, 1, 28, 28)`` batches both work.

    Pixels are modelled as Bernoulli probabilities in ``[0, 1]``: feed data with
    ``value_range="unit"``.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 400,
        latent_dim: int = 20,
        image_shape: Sequence[int] | None = (1, 28, 28),
    ) -> None:
        super().__init__()
        image_shape = (in_features,) if image_shape is None else tuple(image_shape)
        n = 1
        for s in image_shape:
            n *= s
        if n != in_features:
            raise ValueError(
                f"image_shape {image_shape} has {n} values, expected in_features={in_features}"
            )
        self.in_features, self.hidden, self.latent_dim = in_features, hidden, latent_dim
        self.image_shape = image_shape
        self.out_activation = "sigmoid"
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.fc3 = nn.Linear(latent_dim, hidden)
        self.fc4 = nn.Linear(hidden, in_features)

    def encode(
        self, x: torch.Tensor, return_features: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (N, 784)`` or ``(N, 1, 28, 28)`` -> ``(mu, logvar)``, each ``(N, latent_dim)``.

        With ``return_features=True`` also returns the hidden layer ``h (N, hidden)``
        (the context an inverse autoregressive flow conditions on).
        """
        x = check_flat(x, self.in_features, type(self).__name__)
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        return (mu, logvar, h) if return_features else (mu, logvar)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., latent_dim)`` -> Bernoulli logits ``(..., *image_shape)``."""
        _check_code(z, self.latent_dim, type(self).__name__)
        logits = self.fc4(F.relu(self.fc3(z)))
        return logits.reshape(*z.shape[:-1], *self.image_shape)


class GaussianFCVAE(FCVAE):
    """:class:`FCVAE` with a Gaussian decoder whose per-pixel variance is learned.

    ``decode(z)`` gives the means in ``[0, 1]`` and :meth:`decoder_sigma` the
    standard deviations ``exp(log_scale)`` (``image_shape``), clamped below at
    ``min_scale`` so the density stays finite on pixels that never vary. Train it
    with ``likelihood="gaussian"``: the kit's trainer and
    :func:`gan_utils.metrics.evaluate_vae_likelihood` read ``decoder_sigma()``.

    Args:
        init_scale: starting standard deviation of every pixel (0.1).
        min_scale: floor of the standard deviation (1e-3, about the spread of the
            dequantization noise ``1 / (256 sqrt 12)``).
        in_features, hidden, latent_dim, image_shape: as for :class:`FCVAE`.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 400,
        latent_dim: int = 20,
        image_shape: Sequence[int] | None = (1, 28, 28),
        init_scale: float = 0.1,
        min_scale: float = 1e-3,
    ) -> None:
        super().__init__(in_features, hidden, latent_dim, image_shape)
        if not (init_scale > 0 and min_scale > 0 and init_scale >= min_scale):
            raise ValueError(
                f"expected 0 < min_scale <= init_scale, got init_scale={init_scale}, min_scale={min_scale}"
            )
        self.min_scale = float(min_scale)
        self.log_scale = nn.Parameter(torch.full(self.image_shape, math.log(init_scale)))

    def decoder_sigma(self) -> torch.Tensor:
        """Per-pixel standard deviations ``(*image_shape)``, at least ``min_scale``."""
        return torch.exp(self.log_scale.clamp_min(math.log(self.min_scale)))


class ConvVAE(_VAEMixin, nn.Module):
    """Convolutional VAE for 64x64 RGB (CelebA) or 28x28 grey (MNIST) images.

    Encoder: :class:`ConvEncoder` (conv 4x4 s2 p1, BatchNorm, LeakyReLU 0.2;
    ``base_channels`` doubling) down to 4x4 (64x64 input) or 7x7 (28x28), then
    one FC layer to ``2 * latent_dim`` split into ``(mu, logvar)``. Decoder:
    :class:`ConvDecoder`, the mirror, with any upsampling mode.

    Args:
        image_size: input side (``4 * 2**k`` or ``7 * 2**k`` when ``n_layers`` is ``None``).
        channels: image channels.
        latent_dim: code size (the Montreal seed suggests order 100).
        n_layers: stride-2 layers; default halves down to 4x4 or 7x7.
        base_channels: filters of the first conv.
        upsample: ``"convtranspose"`` | ``"nearest"`` | ``"bilinear"``.
        out_activation: ``"sigmoid"`` (``[0, 1]`` Bernoulli means) or ``"tanh"``.

    Shapes: ``x (N, C, S, S)`` -> ``(recon (N, C, S, S), mu (N, D), logvar (N, D))``.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 128,
        n_layers: int | None = None,
        base_channels: int = 32,
        upsample: UpsampleMode = "convtranspose",
        out_activation: OutActivation = "sigmoid",
    ) -> None:
        super().__init__()
        if out_activation not in ("sigmoid", "tanh", "none"):
            raise ValueError(
                f"out_activation must be 'sigmoid', 'tanh' or 'none', got {out_activation!r}"
            )
        if n_layers is None:
            n_layers = resolution_plan(image_size)[1]
        self.image_size, self.channels, self.latent_dim = image_size, channels, latent_dim
        self.image_shape = (channels, image_size, image_size)
        self.out_activation = out_activation
        self.encoder = ConvEncoder(
            image_size,
            channels,
            2 * latent_dim,
            n_layers,
            base_channels,
            norm="batch",
            activation="leaky_relu",
        )
        self.decoder = ConvDecoder(
            latent_dim,
            image_size,
            channels,
            n_layers,
            base_channels,
            norm="batch",
            out_activation="none",
            upsample=upsample,
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C, S, S)`` -> ``(mu, logvar)``, each ``(N, latent_dim)``."""
        stats = self.encoder(x)
        return stats[:, : self.latent_dim], stats[:, self.latent_dim :]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., latent_dim)`` -> pre-activation images ``(..., C, S, S)``."""
        _check_code(z, self.latent_dim, type(self).__name__)
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent_dim))
        return out.reshape(*lead, *self.image_shape)

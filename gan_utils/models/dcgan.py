"""DCGAN generator and discriminator (Penn seed Table 2 and its mirror).

At the defaults (``z_dim=100, width=128, image_size=64``) the generator is
exactly Table 2::

    z (N, 100)            -> ConvT 4x4, pad 0           -> (N, 1024, 4, 4)   BN, ReLU
                          -> ConvT 4x4, s2, p1          -> (N, 512, 8, 8)    BN, ReLU
                          -> ConvT 4x4, s2, p1          -> (N, 256, 16, 16)  BN, ReLU
                          -> ConvT 4x4, s2, p1          -> (N, 128, 32, 32)  BN, ReLU
                          -> ConvT 4x4, s2, p1          -> (N, 3, 64, 64)    tanh

and the discriminator mirrors it (Conv 4x4 s2 p1, LeakyReLU(0.2), no norm on
the first layer, a final 4x4 conv to one logit). ``width`` scales every
channel count; ``image_size`` may be any ``4 * 2**k`` (8 ... 128 ...) or
``7 * 2**k`` (14, 28, 56): the MNIST variant ``image_size=28`` starts from a
7x7 map (ConvT 7x7, pad 0) and doubles twice, 7 -> 14 -> 28, as in the Aalto
home assignment.

Outputs follow the kit's contract: the generator returns images in
``[-1, 1]``; the discriminator returns raw logits of shape ``(N,)`` (the
seed's sigmoid output is ``D.probability(x)`` = ``sigmoid(D(x))``; losses take
logits for numerical stability).

>>> G, D = DCGANGenerator(), DCGANDiscriminator()
>>> _ = dcgan_init(G), dcgan_init(D)
>>> D(G(torch.randn(2, 100))).shape
torch.Size([2])
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from gan_utils.models.layers import (
    NormKind,
    apply_spectral_norm,
    check_images,
    check_latent,
    check_norm_kind,
    make_norm,
    resolution_plan,
)
from gan_utils.models.upsample import UpsampleBlock, UpsampleMode, check_upsample_mode

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_init"]


class DCGANGenerator(nn.Module):
    """DCGAN generator: ``z (N, z_dim)`` -> images ``(N, out_channels, S, S)`` in ``[-1, 1]``.

    Args:
        z_dim: latent size (100 in the Penn seed).
        out_channels: 3 for RGB, 1 for MNIST.
        width: channels of the last hidden layer; the first has
            ``width * 2**(k-1)`` where ``k`` is the number of doublings
            (``8 * width = 1024`` at 64x64 with ``width=128``).
        image_size: output side ``S``: ``4 * 2**k`` or ``7 * 2**k`` (e.g. 64, 32, 28).
        upsample: how each x2 stage upsamples: ``"convtranspose"`` (Table 2),
            ``"nearest"`` or ``"bilinear"`` (+ 3x3 conv); see :class:`UpsampleBlock`.

    Input: ``(N, z_dim)`` or ``(N, z_dim, 1, 1)``; other shapes raise ``ValueError``.
    Convolutions followed by BatchNorm have no bias (BN's shift replaces it).
    """

    def __init__(
        self,
        z_dim: int = 100,
        out_channels: int = 3,
        width: int = 128,
        image_size: int = 64,
        upsample: UpsampleMode = "convtranspose",
    ) -> None:
        super().__init__()
        check_upsample_mode(upsample)
        base, n_up = resolution_plan(image_size)
        self.z_dim, self.out_channels, self.width = z_dim, out_channels, width
        self.image_size, self.upsample = image_size, upsample
        ch = width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, kernel_size=base, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(n_up - 1):
            layers += [
                UpsampleBlock(ch, ch // 2, mode=upsample, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [UpsampleBlock(ch, out_channels, mode=upsample, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one generated image."""
        return (self.out_channels, self.image_size, self.image_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(N, z_dim)`` or ``(N, z_dim, 1, 1)`` -> ``(N, C, S, S)`` in ``[-1, 1]``."""
        z = check_latent(z, self.z_dim, type(self).__name__)
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))

    def sample_latent(
        self,
        n: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` standard-normal latent codes ``(n, z_dim)`` on ``device`` (default: the model's)."""
        if device is None:
            device = next(self.parameters()).device
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` images ``(n, C, S, S)`` in ``[-1, 1]`` from fresh latents (no grad)."""
        return self(self.sample_latent(n, device, generator))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator / critic: images ``(N, C, S, S)`` -> logits ``(N,)``.

    Args:
        in_channels: image channels.
        width: channels of the first conv; each stride-2 stage doubles them
            (128, 256, 512, 1024 at 64x64 with ``width=128``).
        image_size: input side ``S`` (same rules as the generator).
        norm: normalisation after every conv but the first and the last:
            ``"batch"`` (DCGAN), ``"none"`` (WGAN-GP critic: the gradient
            penalty is per sample, so batch statistics must not mix samples),
            ``"layer"`` (``GroupNorm(1, C)``) or ``"instance"``.
        spectral_norm: wrap every conv in spectral normalisation
            (``torch.nn.utils.parametrizations.spectral_norm``).

    The output is an unbounded logit (a WGAN critic value, or the
    pre-sigmoid score of a standard GAN); :meth:`probability` applies the
    seed's sigmoid. Convolutions followed by a norm layer have no bias.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 128,
        image_size: int = 64,
        norm: NormKind = "batch",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        check_norm_kind(norm)
        base, n_down = resolution_plan(image_size)
        self.in_channels, self.width, self.image_size = in_channels, width, image_size
        self.norm, self.spectral_norm = norm, spectral_norm
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, kernel_size=4, stride=2, padding=1, bias=True),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        ch = width
        for _ in range(n_down - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, kernel_size=4, stride=2, padding=1, bias=norm == "none"),
                make_norm(norm, ch * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, kernel_size=base, stride=1, padding=0, bias=True))
        self.net = nn.Sequential(*layers)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` -> logits ``(N,)``."""
        check_images(x, self.in_channels, self.image_size, type(self).__name__)
        return self.net(x).reshape(x.shape[0])

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """``sigmoid(logits)``: the seed's probability that ``x`` is real, shape ``(N,)``."""
        return torch.sigmoid(self(x))


_CONV_TYPES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)
_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
)


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    """The trainable weight tensor, looking through a spectral-norm parametrisation."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def _warm_spectral_norm(layer: nn.Module, n_iterations: int = 15) -> None:
    """Re-run power iterations after the weight changed, as spectral_norm does at creation."""
    if not parametrize.is_parametrized(layer, "weight"):
        return
    for p in layer.parametrizations.weight:
        if hasattr(p, "_power_method") and hasattr(p, "_reshape_weight_to_matrix"):
            p._power_method(p._reshape_weight_to_matrix(_raw_weight(layer)), n_iterations)


@torch.no_grad()
def dcgan_init(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation of ``module`` and all its submodules, in place.

    Conv, transposed-conv and linear weights ~ ``N(0, std)``; norm-layer
    scales ~ ``N(1, std)``; all biases (and norm shifts) = 0. Spectral-norm
    parametrised layers get their underlying weight initialised (and their
    power-iteration vectors re-warmed for the new weight). Returns
    ``module``, so ``G = dcgan_init(DCGANGenerator())`` works; ``G.apply(dcgan_init)``
    works too (it just reinitialises some layers more than once).
    """
    for m in module.modules():
        if isinstance(m, _CONV_TYPES):
            _raw_weight(m).normal_(0.0, std)
            if m.bias is not None:
                m.bias.zero_()
            _warm_spectral_norm(m)
        elif isinstance(m, _NORM_TYPES):
            if getattr(m, "weight", None) is not None:
                m.weight.normal_(1.0, std)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return module

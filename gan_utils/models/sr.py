"""Super-resolution U-Net generator and patch discriminator (Penn seed, part 3).

The generator takes the degraded image (16x16 upsampled back to 64x64 with
bilinear interpolation) and returns the sharpened 64x64 image in ``[-1, 1]``::

    encoder  x (3, 64)  -> e1 (32, 32) -> e2 (64, 16) -> e3 (128, 8) -> e4 (256, 4) -> e5 (512, 2)
             each: Conv 4x4 s2 p1, BatchNorm, LeakyReLU(0.2)
    decoder  e5               -> up (256, 4),  cat e4 -> (512, 4)
                              -> up (128, 8),  cat e3 -> (256, 8)
                              -> up (64, 16),  cat e2 -> (128, 16)
                              -> up (32, 32),  cat e1 -> (64, 32)
                              -> up (16, 64),  cat x  -> (19, 64)
             each up: ConvT 4x4 s2 p1, BatchNorm, LeakyReLU(0.2)
    output   Conv 3x3 p1 -> (3, 64), tanh

(``(C, S)`` = channels, side.) Skips join the decoder at every resolution and
the input image itself is concatenated before the last layer, as the seed asks.

Stride/padding choice: the seed's table lists the decoder's transposed convs
with "Padding=0" and no stride. A 4x4 transposed conv with stride 1 and
padding 0 only grows a map by 3 pixels (2 -> 5 -> 8 -> 11 -> 14 -> 17), which
never meets the encoder's 4, 8, 16, 32, 64 maps, so skips could not be
concatenated. The kit uses stride 2, padding 1 (exact doubling, the mirror of
the encoder) with the table's channel counts 256, 128, 64, 32, 16. The table's
last "TransposedConv 6, 3x3, padding 1" is a stride-1 layer; a stride-1
transposed conv is an ordinary conv with a flipped kernel, so it is written as
``Conv2d(3x3, padding 1)``.

:class:`PatchDiscriminator` is the seed's discriminator: Conv 4x4 s2 p1 with
32 ... 512 channels (BatchNorm, LeakyReLU), then a 3x3 conv to one channel of
logits (no sigmoid: losses take logits). With the seed's final stride 2 a
64x64 input gives a 1x1 map; ``final_stride=1`` or fewer layers give a larger
map, each logit judging one patch.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_utils.models.layers import (
    NormKind,
    apply_spectral_norm,
    check_images,
    check_norm_kind,
    make_norm,
)

__all__ = ["SRUNetGenerator", "PatchDiscriminator", "reduce_patch_logits"]


def _down(c_in: int, c_out: int, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=norm == "none"),
        make_norm(norm, c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class SRUNetGenerator(nn.Module):
    """U-Net encoder-decoder for 16 -> 64 super-resolution (seed defaults).

    Args:
        in_channels: channels of the degraded input (and of the output).
        base: channels of the first encoder conv (32); encoder channels are
            ``base * (1, 2, 4, 8, 16)``, decoder ``base * (8, 4, 2, 1, 1/2)``.
        n_levels: stride-2 encoder layers (5: 64 -> 2).

    Shapes: ``(N, C, S, S) -> (N, C, S, S)`` in ``[-1, 1]``, where ``S`` is a
    multiple of ``2**n_levels`` (64 in the seed). Encoder outputs are kept in
    ``forward`` only; nothing is cached on the module.
    """

    def __init__(self, in_channels: int = 3, base: int = 32, n_levels: int = 5) -> None:
        super().__init__()
        if n_levels < 1:
            raise ValueError(f"n_levels must be >= 1, got {n_levels}")
        if base < 2 or base % 2:
            raise ValueError(f"base must be an even number >= 2, got {base}")
        self.in_channels, self.base, self.n_levels = in_channels, base, n_levels
        enc = [base * 2**i for i in range(n_levels)]
        self.encoder = nn.ModuleList(
            _down(c_in, c_out) for c_in, c_out in zip([in_channels, *enc[:-1]], enc, strict=True)
        )
        # decoder stage i upsamples to the resolution of encoder output enc[-2-i] (or the input)
        skips = [*enc[-2::-1], in_channels]
        dec_out = [c // 2 for c in enc[::-1]]
        ups: list[nn.Module] = []
        c = enc[-1]
        for c_out, c_skip in zip(dec_out, skips, strict=True):
            ups.append(_up(c, c_out))
            c = c_out + c_skip
        self.decoder = nn.ModuleList(ups)
        self.final = nn.Conv2d(c, in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` (``S`` divisible by ``2**n_levels``) -> ``(N, C, S, S)`` in ``[-1, 1]``."""
        check_images(x, self.in_channels, None, type(self).__name__)
        step = 2**self.n_levels
        if x.shape[-1] % step or x.shape[-2] % step:
            raise ValueError(
                f"{type(self).__name__} expects images of shape (N, {self.in_channels}, H, W) with H and W "
                f"divisible by {step} (e.g. (N, {self.in_channels}, 64, 64)), got {tuple(x.shape)}"
            )
        feats = [x]
        for down in self.encoder:
            feats.append(down(feats[-1]))
        h = feats.pop()
        for up in self.decoder:
            h = torch.cat([up(h), feats.pop()], dim=1)
        return torch.tanh(self.final(h))


def reduce_patch_logits(logits: torch.Tensor) -> torch.Tensor:
    """Average a ``(N, 1, h, w)`` patch-logit map to one logit per image, ``(N,)``."""
    if logits.dim() != 4 or logits.shape[1] != 1:
        raise ValueError(f"expected patch logits of shape (N, 1, h, w), got {tuple(logits.shape)}")
    return logits.mean(dim=(1, 2, 3))


class PatchDiscriminator(nn.Module):
    """Seed discriminator for super-resolution: images -> patch logits ``(N, 1, h, w)``.

    Args:
        in_channels: 3 for the output image alone; 6 to judge (input, output) pairs
            concatenated on the channel axis.
        base: channels of the first conv (32), doubled per layer up to ``base * 2**(n_layers-1)``.
        n_layers: Conv 4x4 s2 p1 layers (5 in the seed: 64 -> 2).
        final_stride: stride of the last 3x3 conv (2 in the seed: 2x2 -> 1x1; 1 keeps 2x2).
        norm: norm after every 4x4 conv (the seed uses BatchNorm on all of them).
        spectral_norm: wrap every conv in spectral normalisation.
        reduce: return ``(N,)`` (mean over the map) instead of ``(N, 1, h, w)``,
            so the model plugs into losses and trainers that expect ``(N,)``.

    ``h = w = ceil(S / 2**n_layers / final_stride)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base: int = 32,
        n_layers: int = 5,
        final_stride: int = 2,
        norm: NormKind = "batch",
        spectral_norm: bool = False,
        reduce: bool = False,
    ) -> None:
        super().__init__()
        check_norm_kind(norm)
        if final_stride not in (1, 2):
            raise ValueError(f"final_stride must be 1 or 2, got {final_stride}")
        self.in_channels, self.n_layers, self.reduce = in_channels, n_layers, reduce
        chans = [base * 2**i for i in range(n_layers)]
        self.body = nn.Sequential(
            *(_down(a, b, norm) for a, b in zip([in_channels, *chans[:-1]], chans, strict=True))
        )
        self.head = nn.Conv2d(chans[-1], 1, kernel_size=3, stride=final_stride, padding=1)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, S, S)`` -> logits ``(N, 1, h, w)``, or ``(N,)`` when ``reduce=True``."""
        check_images(x, self.in_channels, None, type(self).__name__)
        if min(x.shape[-2:]) < 2**self.n_layers:
            raise ValueError(
                f"{type(self).__name__} with {self.n_layers} stride-2 layers needs images of at least "
                f"{2**self.n_layers}x{2**self.n_layers}, got {tuple(x.shape)}"
            )
        logits = self.head(self.body(x))
        return reduce_patch_logits(logits) if self.reduce else logits

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """The seed's sigmoid output: ``sigmoid(logits)``, same shape as ``forward``."""
        return torch.sigmoid(self(x))

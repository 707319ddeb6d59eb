"""Three ways to double a feature map (the Montreal seed's comparison).

``UpsampleBlock(in_ch, out_ch, mode)`` maps ``(N, in_ch, H, W)`` to
``(N, out_ch, 2H + p, 2W + p)`` (``p = output_padding``, 0 or 1) with

* ``"convtranspose"``: ``ConvTranspose2d(kernel 4, stride 2, padding 1)``. Each
  output pixel is a sum over the input pixels whose 4x4 footprint covers it.
  With kernel 4 and stride 2 every output pixel gets exactly 2x2 taps (no
  uneven overlap), but the taps come from different kernel entries for even
  and odd output positions, so an untrained or poorly trained layer can still
  produce a checkerboard pattern.
* ``"nearest"``: nearest-neighbour upsampling (each pixel copied to a 2x2
  block), then ``Conv2d(kernel 3, padding 1)``. All outputs use the same kernel:
  no checkerboard, but blocky structure has to be smoothed by the conv.
* ``"bilinear"``: bilinear upsampling (``align_corners=False``), then
  ``Conv2d(kernel 3, padding 1)``: smooth interpolation, then a learned filter;
  smoothest outputs, sometimes blurrier.

All three produce the same output shape, so any generator can swap them.

>>> block = UpsampleBlock(64, 32, mode="nearest")
>>> block(torch.zeros(2, 64, 8, 8)).shape
torch.Size([2, 32, 16, 16])
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

UpsampleMode = Literal["convtranspose", "nearest", "bilinear"]
UPSAMPLE_MODES: tuple[str, ...] = ("convtranspose", "nearest", "bilinear")


def check_upsample_mode(mode: str) -> str:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`UPSAMPLE_MODES`; return it."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    return mode


class UpsampleBlock(nn.Module):
    """Double the spatial size of a feature map and change its channel count.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        mode: ``"convtranspose"`` | ``"nearest"`` | ``"bilinear"`` (see module doc).
        bias: whether the conv has a bias (``False`` when a norm layer follows).
        output_padding: 0 or 1; adds one row/column so odd sizes can be reached
            (e.g. 3 -> 7 when mirroring an encoder that went 7 -> 3).

    Shapes: ``(N, in_ch, H, W) -> (N, out_ch, 2H + output_padding, 2W + output_padding)``.
    The learnable layer is ``self.conv`` in every mode.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        mode: UpsampleMode = "convtranspose",
        bias: bool = True,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.mode = check_upsample_mode(mode)
        if output_padding not in (0, 1):
            raise ValueError(f"output_padding must be 0 or 1, got {output_padding}")
        self.output_padding = output_padding
        self.conv: nn.Module
        if mode == "convtranspose":
            self.conv = nn.ConvTranspose2d(
                in_ch,
                out_ch,
                kernel_size=4,
                stride=2,
                padding=1,
                output_padding=output_padding,
                bias=bias,
            )
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_ch, H, W) -> (N, out_ch, 2H + p, 2W + p)``."""
        if self.mode == "convtranspose":
            return self.conv(x)
        size = (2 * x.shape[-2] + self.output_padding, 2 * x.shape[-1] + self.output_padding)
        if self.mode == "nearest":
            up = F.interpolate(x, size=size, mode="nearest")
        else:
            up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.conv(up)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, output_padding={self.output_padding}"

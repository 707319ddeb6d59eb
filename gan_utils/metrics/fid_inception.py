"""The FID Inception network: torchvision's Inception-v3 with the 2015 TensorFlow graph's quirks.

Published FID (Heusel et al. 2017) and Inception Score numbers use the
TensorFlow Inception graph of 2015-12-05, not torchvision's retrained
Inception-v3. Its PyTorch port (the file ``pt_inception-2015-12-05-6726825d.pth``
that pytorch-fid and torchmetrics load) has torchvision's layer names and
shapes with three differences, reproduced here:

* 1008 output classes instead of 1000, and no auxiliary classifier;
* the average pools inside the ``Mixed_5*``, ``Mixed_6*`` and ``Mixed_7b``
  blocks leave the zero padding out of the average (TensorFlow's
  ``count_include_pad=False``);
* the pool branch of the last block, ``Mixed_7c``, is a *max* pool.

The network only runs here with weights the user supplies (see
:mod:`gan_utils.metrics.extractors`); nothing is downloaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

__all__ = ["FID_INCEPTION_CLASSES", "build_fid_inception_v3"]

FID_INCEPTION_CLASSES = 1008


def _tf_avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _FIDInceptionA(InceptionA):
    def _forward(self, x: Tensor) -> list[Tensor]:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(_tf_avg_pool(x))]


class _FIDInceptionC(InceptionC):
    def _forward(self, x: Tensor) -> list[Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        return [self.branch1x1(x), b7, b7d, self.branch_pool(_tf_avg_pool(x))]


class _FIDInceptionE(InceptionE):
    """``Mixed_7b`` (``max_pool=False``) or ``Mixed_7c`` (``max_pool=True``)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return [self.branch1x1(x), b3, b3d, self.branch_pool(pooled)]


def build_fid_inception_v3() -> Inception3:
    """The FID Inception architecture with freshly initialised weights (load a state dict into it).

    Input: ``(N, 3, 299, 299)`` scaled to [-1, 1] (``transform_input=False``).
    The 2048-d output of ``avgpool`` is the FID feature; ``fc`` has 1008 classes.
    """
    net = Inception3(num_classes=FID_INCEPTION_CLASSES, aux_logits=False, transform_input=False, init_weights=False)
    net.Mixed_5b = _FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = _FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = _FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = _FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = _FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = _FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = _FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = _FIDInceptionE(1280, max_pool=False)
    net.Mixed_7c = _FIDInceptionE(2048, max_pool=True)
    return net

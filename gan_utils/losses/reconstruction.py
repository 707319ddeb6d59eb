"""Pixel reconstruction losses and the conditional-GAN generator objective (pix2pix, SR).

pix2pix (Isola et al., 2017) trains the generator with an adversarial term plus
a pixel term: ``L_G = adv(D(x, G(x))) + lambda * ||y - G(x)||_1`` (L1 blurs less
than L2). The super-resolution assignment uses the same shape with MSE.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor

from gan_utils.losses._checks import check_same_shape, check_tensor, reduce
from gan_utils.losses.gan import generator_loss

RECON_KINDS: tuple[str, ...] = ("l1", "mse")

__all__ = [
    "RECON_KINDS",
    "GeneratorLossTerms",
    "reconstruction_loss",
    "masked_reconstruction_loss",
    "sr_generator_loss",
    "pix2pix_generator_loss",
]


def _check_kind(kind: str) -> None:
    if kind not in RECON_KINDS:
        raise ValueError(
            f"unknown reconstruction kind {kind!r}; expected one of {', '.join(RECON_KINDS)}"
        )


def _pixel_error(fake: Tensor, real: Tensor, kind: str) -> Tensor:
    _check_kind(kind)
    check_tensor("fake", fake, min_dim=1)
    check_tensor("real", real, min_dim=1)
    check_same_shape("fake", fake, "real", real)
    if kind == "l1":
        return F.l1_loss(fake, real, reduction="none")
    return F.mse_loss(fake, real, reduction="none")


def reconstruction_loss(
    fake: Tensor, real: Tensor, kind: str = "l1", reduction: str = "mean"
) -> Tensor:
    """``mean |fake - real|`` (``"l1"``) or ``mean (fake - real)^2`` (``"mse"``).

    ``"mean"`` averages over every element (batch, channels and pixels), like
    ``F.l1_loss`` / ``F.mse_loss``; shapes must match exactly (no broadcasting).
    """
    return reduce(_pixel_error(fake, real, kind), reduction)


def masked_reconstruction_loss(
    fake: Tensor, target: Tensor, mask: Tensor, kind: str = "mse"
) -> Tensor:
    """Reconstruction error over the kept pixels only (inpainting by GAN inversion).

    Args:
        fake: ``(N, C, H, W)`` generated images.
        target: ``(N, C, H, W)`` degraded images (missing pixels hold anything).
        mask: 1 = kept, 0 = missing; any shape broadcastable to ``fake`` (e.g.
            ``(1, H, W)`` from ``gan_utils.data.degradations``).

    Returns:
        The mean error over kept elements: ``sum(mask * err) / sum(mask)``, so the
        value does not shrink as the mask hides more pixels.
    """
    err = _pixel_error(fake, target, kind)
    check_tensor("mask", mask)
    try:
        m = mask.to(err.dtype).expand_as(err)
    except RuntimeError as exc:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to images of shape "
            f"{tuple(err.shape)}"
        ) from exc
    kept = m.sum()
    if float(kept) <= 0:
        raise ValueError("mask keeps no pixels (all zeros): nothing to reconstruct from")
    return (m * err).sum() / kept


class GeneratorLossTerms(NamedTuple):
    """``total = adv_weight * adversarial + recon_weight * reconstruction`` (scalars)."""

    total: Tensor
    adversarial: Tensor
    reconstruction: Tensor


def sr_generator_loss(
    fake_logits: Tensor,
    fake: Tensor,
    real: Tensor,
    recon_weight: float = 1.0,
    adv_weight: float = 1.0,
    adv_kind: str = "nonsaturating",
    recon_kind: str = "mse",
) -> GeneratorLossTerms:
    """Generator objective for super-resolution / image-to-image GANs.

    Args:
        fake_logits: discriminator logits on the generated images (``(N,)`` or patch
            ``(N, 1, h, w)``); ``adv_kind`` is any of ``GAN_LOSS_KINDS``.
        fake: ``(N, C, H, W)`` generated high-resolution images.
        real: ``(N, C, H, W)`` ground-truth images, same range as ``fake``.
    """
    adv = generator_loss(adv_kind, fake_logits)
    rec = reconstruction_loss(fake, real, kind=recon_kind)
    total = adv_weight * adv + recon_weight * rec
    return GeneratorLossTerms(total=total, adversarial=adv, reconstruction=rec)


def pix2pix_generator_loss(
    fake_logits: Tensor, fake: Tensor, real: Tensor, l1_weight: float = 100.0
) -> GeneratorLossTerms:
    """pix2pix generator loss: non-saturating GAN term + ``l1_weight`` * L1 (lambda = 100)."""
    return sr_generator_loss(
        fake_logits,
        fake,
        real,
        recon_weight=l1_weight,
        adv_weight=1.0,
        adv_kind="nonsaturating",
        recon_kind="l1",
    )

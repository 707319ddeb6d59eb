"""Pixel losses, masked reconstruction and the SR / pix2pix generator objective."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _imgs(seed: int) -> torch.Tensor:
    return torch.randn(3, 2, 4, 4, dtype=D64, generator=torch.Generator().manual_seed(seed))


def test_reconstruction_loss_values():
    a, b = _imgs(0), _imgs(1)
    torch.testing.assert_close(L.reconstruction_loss(a, b, "l1"), (a - b).abs().mean())
    torch.testing.assert_close(L.reconstruction_loss(a, b, "mse"), ((a - b) ** 2).mean())
    torch.testing.assert_close(
        L.reconstruction_loss(a, b, "mse", reduction="sum"), F.mse_loss(a, b, reduction="sum")
    )
    assert L.reconstruction_loss(a, b, reduction="none").shape == a.shape
    assert torch.autograd.gradcheck(
        lambda x: L.reconstruction_loss(x, b, "mse"), (a.requires_grad_(),)
    )


def test_masked_reconstruction_counts_kept_pixels_only():
    fake = torch.zeros(2, 1, 2, 2, dtype=D64)
    target = torch.tensor([[[[1.0, 2.0], [100.0, 100.0]]], [[[3.0, 4.0], [-50.0, 7.0]]]], dtype=D64)
    mask = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])  # (1, H, W): top row kept
    expected = (1 + 4 + 9 + 16) / 4
    assert L.masked_reconstruction_loss(fake, target, mask).item() == pytest.approx(expected)
    assert L.masked_reconstruction_loss(fake, target, mask, kind="l1").item() == pytest.approx(2.5)
    full = torch.ones(1, 2, 2)
    torch.testing.assert_close(
        L.masked_reconstruction_loss(fake, target, full), F.mse_loss(fake, target)
    )
    with pytest.raises(ValueError, match="keeps no pixels"):
        L.masked_reconstruction_loss(fake, target, torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        L.masked_reconstruction_loss(fake, target, torch.ones(1, 3, 3))


def test_sr_and_pix2pix_generator_loss():
    fake, real = _imgs(2), _imgs(3)
    logits = torch.randn(3, dtype=D64)
    out = L.sr_generator_loss(logits, fake, real, recon_weight=10.0, adv_weight=0.5)
    adv = F.softplus(-logits).mean()
    rec = ((fake - real) ** 2).mean()
    torch.testing.assert_close(out.adversarial, adv)
    torch.testing.assert_close(out.reconstruction, rec)
    torch.testing.assert_close(out.total, 0.5 * adv + 10.0 * rec)
    hinge = L.sr_generator_loss(logits, fake, real, adv_kind="hinge", recon_kind="l1")
    torch.testing.assert_close(hinge.total, -logits.mean() + (fake - real).abs().mean())
    p2p = L.pix2pix_generator_loss(logits, fake, real)
    torch.testing.assert_close(p2p.total, adv + 100.0 * (fake - real).abs().mean())


def test_reconstruction_errors():
    with pytest.raises(ValueError, match="l1, mse"):
        L.reconstruction_loss(_imgs(0), _imgs(1), kind="l2")
    with pytest.raises(ValueError, match="same shape"):
        L.reconstruction_loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="unknown GAN loss kind"):
        L.sr_generator_loss(torch.zeros(3), _imgs(0), _imgs(1), adv_kind="bce")

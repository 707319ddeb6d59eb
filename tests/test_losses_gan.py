"""Adversarial losses: values against naive formulas, saturation limits, dispatch, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _logits(n: int = 16, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, generator=g, dtype=D64)


# --- values at moderate logits, against the textbook formulas in float64 --------------------


def test_bce_discriminator_matches_log_sigmoid_formula():
    real, fake = _logits(seed=1), _logits(seed=2)
    expected = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(L.bce_discriminator_loss(real, fake), expected)
    bce = F.binary_cross_entropy_with_logits
    alt = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    torch.testing.assert_close(L.discriminator_loss("nonsaturating", real, fake), alt)
    torch.testing.assert_close(L.discriminator_loss("minimax", real, fake), alt)


def test_bce_discriminator_at_chance_is_two_log_two():
    z = torch.zeros(8)
    assert L.bce_discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_generator_losses_match_log_sigmoid_formulas():
    fake = _logits(seed=3)
    d = torch.sigmoid(fake)
    torch.testing.assert_close(L.minimax_generator_loss(fake), torch.log(1 - d).mean())
    torch.testing.assert_close(L.nonsaturating_generator_loss(fake), -torch.log(d).mean())
    torch.testing.assert_close(L.generator_loss("minimax", fake), torch.log(1 - d).mean())
    torch.testing.assert_close(L.generator_loss("nonsaturating", fake), -torch.log(d).mean())


def test_minimax_generator_loss_is_negative():
    # log(1 - D) <= 0: the generator minimises a non-positive quantity.
    assert (L.minimax_generator_loss(_logits(seed=4), reduction="none") < 0).all()


def test_lsgan_wgan_hinge_values():
    real, fake = _logits(seed=5), _logits(seed=6, n=16)
    torch.testing.assert_close(
        L.lsgan_discriminator_loss(real, fake), ((real - 1) ** 2).mean() + (fake**2).mean()
    )
    torch.testing.assert_close(L.lsgan_generator_loss(fake), ((fake - 1) ** 2).mean())
    torch.testing.assert_close(
        L.lsgan_discriminator_loss(real, fake, real_target=0.5, fake_target=-1.0),
        ((real - 0.5) ** 2).mean() + ((fake + 1) ** 2).mean(),
    )
    torch.testing.assert_close(L.wgan_critic_loss(real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(L.wgan_generator_loss(fake), -fake.mean())
    hinge = torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean()
    torch.testing.assert_close(L.hinge_discriminator_loss(real, fake), hinge)
    torch.testing.assert_close(L.hinge_generator_loss(fake), -fake.mean())


def test_dispatch_matches_named_functions_for_every_kind():
    real, fake = _logits(seed=7), _logits(seed=8)
    named_d = {
        "minimax": L.bce_discriminator_loss,
        "nonsaturating": L.bce_discriminator_loss,
        "lsgan": L.lsgan_discriminator_loss,
        "wgan": L.wgan_critic_loss,
        "hinge": L.hinge_discriminator_loss,
    }
    named_g = {
        "minimax": L.minimax_generator_loss,
        "nonsaturating": L.nonsaturating_generator_loss,
        "lsgan": L.lsgan_generator_loss,
        "wgan": L.wgan_generator_loss,
        "hinge": L.hinge_generator_loss,
    }
    assert set(L.GAN_LOSS_KINDS) == set(named_d) == set(named_g)
    for kind in L.GAN_LOSS_KINDS:
        torch.testing.assert_close(
            L.discriminator_loss(kind, real, fake), named_d[kind](real, fake)
        )
        torch.testing.assert_close(L.generator_loss(kind, fake), named_g[kind](fake))


def test_reductions_and_patch_logits():
    real, fake = _logits(seed=9).view(4, 1, 2, 2), _logits(seed=10).view(4, 1, 2, 2)
    per = L.bce_discriminator_loss(real, fake, reduction="none")
    assert per.shape == (4, 1, 2, 2)
    torch.testing.assert_close(per.mean(), L.bce_discriminator_loss(real, fake))
    torch.testing.assert_close(
        L.nonsaturating_generator_loss(fake, reduction="sum"), F.softplus(-fake).sum()
    )


def test_different_batch_sizes_allowed_for_mean():
    loss = L.discriminator_loss("hinge", torch.zeros(5), torch.zeros(7))
    assert loss.item() == pytest.approx(2.0)


# --- extremes: finite values and gradients, and the saturation the course teaches -----------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logit_values_are_finite_and_correct(dtype):
    big = torch.tensor([100.0], dtype=dtype)
    # naive float32 formulas break here; ours must not
    assert torch.isinf(torch.log(1 - torch.sigmoid(big.float()))).all()
    assert L.minimax_generator_loss(big).item() == pytest.approx(-100.0)  # log(1-D) ~ -l
    assert abs(L.minimax_generator_loss(-big).item()) < 1e-40  # D ~ 0: log(1-D) ~ 0
    assert L.nonsaturating_generator_loss(-big).item() == pytest.approx(100.0)
    assert abs(L.nonsaturating_generator_loss(big).item()) < 1e-40
    assert L.bce_discriminator_loss(-big, big).item() == pytest.approx(200.0)
    assert abs(L.bce_discriminator_loss(big, -big).item()) < 1e-40


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saturation_gradients_when_discriminator_wins(dtype):
    """D rejects the fakes (logit -100): minimax G gradient vanishes, non-saturating is -1/N."""
    n = 8
    fake = torch.full((n,), -100.0, dtype=dtype, requires_grad=True)
    (g_ns,) = torch.autograd.grad(L.nonsaturating_generator_loss(fake), fake)
    (g_mm,) = torch.autograd.grad(L.minimax_generator_loss(fake), fake)
    assert torch.isfinite(g_ns).all() and torch.isfinite(g_mm).all()
    torch.testing.assert_close(g_ns, torch.full_like(g_ns, -1.0 / n))
    assert g_mm.abs().max().item() < 1e-40  # saturated: sigmoid(-100) / N ~ 5e-45
    # LSGAN does not saturate either: d/dl (l - 1)^2 / N = 2 (l - 1) / N
    (g_ls,) = torch.autograd.grad(L.lsgan_generator_loss(fake), fake)
    torch.testing.assert_close(g_ls, torch.full_like(g_ls, 2 * (-101.0) / n))
    # When D is fooled (logit +100) the roles swap: minimax gives -1/N, non-saturating ~0.
    fooled = torch.full((n,), 100.0, dtype=dtype, requires_grad=True)
    (g_mm2,) = torch.autograd.grad(L.minimax_generator_loss(fooled), fooled)
    (g_ns2,) = torch.autograd.grad(L.nonsaturating_generator_loss(fooled), fooled)
    torch.testing.assert_close(g_mm2, torch.full_like(g_mm2, -1.0 / n))
    assert g_ns2.abs().max().item() < 1e-40


def test_bce_discriminator_gradients_at_extremes():
    n = 4
    real = torch.full((n,), -100.0, requires_grad=True)  # real judged fake: large error
    fake = torch.full((n,), 100.0, requires_grad=True)  # fake judged real: large error
    gr, gf = torch.autograd.grad(L.bce_discriminator_loss(real, fake), (real, fake))
    torch.testing.assert_close(gr, torch.full_like(gr, -1.0 / n))
    torch.testing.assert_close(gf, torch.full_like(gf, 1.0 / n))


def test_generator_loss_moves_the_right_way():
    # every G loss falls as D(G(z)) rises
    lo, hi = torch.full((4,), -1.0), torch.full((4,), 0.5)
    for kind in L.GAN_LOSS_KINDS:
        assert L.generator_loss(kind, hi) < L.generator_loss(kind, lo), kind


def test_gradcheck_losses_float64():
    real = _logits(n=6, seed=11).requires_grad_(True)
    fake = _logits(n=6, seed=12).add(0.3).requires_grad_(True)  # away from hinge kinks
    for kind in L.GAN_LOSS_KINDS:
        assert torch.autograd.gradcheck(
            lambda r, f, kind=kind: L.discriminator_loss(kind, r, f), (real, fake)
        )
        assert torch.autograd.gradcheck(lambda f, kind=kind: L.generator_loss(kind, f), (fake,))


# --- errors ----------------------------------------------------------------------------------


def test_unknown_kind_lists_kinds():
    with pytest.raises(ValueError) as info:
        L.discriminator_loss("bce", torch.zeros(2), torch.zeros(2))
    for kind in L.GAN_LOSS_KINDS:
        assert kind in str(info.value)
    with pytest.raises(ValueError, match="nonsaturating"):
        L.generator_loss("non-saturating", torch.zeros(2))


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match=r"\(4,\) and \(4, 1\)"):
        L.bce_discriminator_loss(torch.zeros(4), torch.zeros(4, 1))
    with pytest.raises(TypeError, match="floating-point"):
        L.generator_loss("nonsaturating", torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        L.generator_loss("wgan", [0.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        L.generator_loss("wgan", torch.zeros(0))
    with pytest.raises(ValueError, match="reduction"):
        L.nonsaturating_generator_loss(torch.zeros(3), reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        L.bce_discriminator_loss(torch.zeros(3), torch.zeros(4), reduction="none")

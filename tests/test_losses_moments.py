"""Latent moment losses: constructed cases with known moments, scipy reference, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from gan_utils import losses as L

# CPU budget: the whole tests/test_losses*.py set runs in well under 30 s.
pytestmark = pytest.mark.timeout(30)

D64 = torch.float64


def _rademacher(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """Each column holds exactly n/2 values +1 and n/2 values -1 (mean 0, var 1, kurtosis 1)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.cat([torch.ones(n // 2), -torch.ones(n // 2)]).to(D64)
    return torch.stack([base[torch.randperm(n, generator=g)] for _ in range(d)], dim=1)


def test_moments_match_scipy():
    z = torch.randn(500, 4, dtype=D64, generator=torch.Generator().manual_seed(1)) ** 3
    m, v, k = L.latent_moments(z, eps=0.0)
    zn = z.numpy()
    np.testing.assert_allclose(m.numpy(), zn.mean(0))
    np.testing.assert_allclose(v.numpy(), zn.var(0))  # population variance
    np.testing.assert_allclose(k.numpy(), stats.kurtosis(zn, axis=0, fisher=False, bias=True))


def test_standard_normal_sample_has_small_loss():
    z = torch.randn(100_000, 3, generator=torch.Generator().manual_seed(2))
    out = L.latent_moment_loss(z)
    assert out.total.item() < 2e-3
    assert out.mean.item() < 1e-4 and out.var.item() < 1e-3 and out.kurtosis.item() < 2e-3


def test_shifted_and_scaled_normal_samples_have_large_loss():
    z = torch.randn(50_000, 3, generator=torch.Generator().manual_seed(3))
    shifted = L.latent_moment_loss(z + 2.0)
    assert shifted.mean.item() == pytest.approx(4.0, rel=0.02)
    assert shifted.var.item() < 1e-3 and shifted.kurtosis.item() < 1e-2  # shift-invariant
    scaled = L.latent_moment_loss(3.0 * z)
    assert scaled.var.item() == pytest.approx(64.0, rel=0.03)  # (9 - 1)^2
    assert scaled.kurtosis.item() < 1e-2  # scale-invariant


def test_each_term_on_constructed_cases():
    r = _rademacher(64, 2)
    out = L.latent_moment_loss(r)  # mean 0, var 1, kurtosis 1
    assert out.mean.item() == pytest.approx(0.0, abs=1e-12)
    assert out.var.item() == pytest.approx(0.0, abs=1e-12)
    assert out.kurtosis.item() == pytest.approx(4.0, rel=1e-6)  # (1 - 3)^2
    out = L.latent_moment_loss(2.0 * r + 0.5)  # mean 0.5, var 4, kurtosis 1
    assert out.mean.item() == pytest.approx(0.25)
    assert out.var.item() == pytest.approx(9.0)
    assert out.kurtosis.item() == pytest.approx(4.0, rel=1e-6)
    # averaged over axes: axis 0 has var 1, axis 1 has var 4 -> ((0) + (3)^2) / 2
    mixed = torch.stack([r[:, 0], 2.0 * r[:, 1]], dim=1)
    assert L.latent_moment_loss(mixed).var.item() == pytest.approx(4.5)
    weighted = L.latent_moment_loss(2.0 * r + 0.5, weights=(1.0, 2.0, 3.0))
    assert weighted.total.item() == pytest.approx(0.25 + 2 * 9.0 + 3 * 4.0, rel=1e-6)


def test_gradcheck_and_descent_direction():
    z = torch.randn(12, 3, dtype=D64, generator=torch.Generator().manual_seed(4)).requires_grad_(
        True
    )
    assert torch.autograd.gradcheck(lambda t: L.latent_moment_loss(t).total, (z,))
    # a small gradient step on shifted codes lowers the loss
    z2 = torch.randn(256, 3, dtype=D64, generator=torch.Generator().manual_seed(5)) + 1.0
    z2.requires_grad_(True)
    loss = L.latent_moment_loss(z2).total
    (g,) = torch.autograd.grad(loss, z2)
    assert L.latent_moment_loss(z2.detach() - 0.5 * g).total < loss


def test_collapsed_axis_is_finite_and_errors():
    z = torch.zeros(8, 2)
    out = L.latent_moment_loss(z)
    assert torch.isfinite(out.total)
    assert out.var.item() == pytest.approx(1.0)  # (0 - 1)^2
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        L.latent_moment_loss(torch.zeros(8))
    with pytest.raises(ValueError, match="N >= 2"):
        L.latent_moment_loss(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="weights"):
        L.latent_moment_loss(torch.zeros(4, 4), weights=(1.0, 1.0))

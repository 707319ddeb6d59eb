"""Frechet distance against closed forms computed independently in the tests (budget: < 5 s)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gan_utils.metrics.frechet as frechet_module
from gan_utils.metrics.frechet import (
    compute_features,
    feature_statistics,
    frechet_classifier_distance,
    frechet_distance,
)


def _random_psd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d) + (0.0 if rank else 0.1) * np.eye(d)


def _reference(mu1, s1, mu2, s2) -> float:
    """tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2): a symmetric PSD square root, through eigh only."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


@pytest.mark.parametrize("m1,s1,m2,s2", [(0.0, 1.0, 0.0, 1.0), (1.5, 2.0, -0.5, 0.5), (3.0, 0.01, 3.0, 9.0)])
def test_one_dimensional_gaussians(m1, s1, m2, s2):
    expected = (m1 - m2) ** 2 + s1 + s2 - 2 * np.sqrt(s1 * s2)
    got = frechet_distance(np.array([m1]), np.array([[s1]]), np.array([m2]), np.array([[s2]]))
    assert got == pytest.approx(expected, abs=1e-10)


def test_diagonal_covariances():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_commuting_covariances_in_a_rotated_basis():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    a, b = rng.uniform(0.2, 2.0, 8), rng.uniform(0.2, 2.0, 8)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu = rng.normal(size=8)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-8)


def test_general_covariances_match_the_symmetric_form():
    rng = np.random.default_rng(2)
    s1, s2 = _random_psd(rng, 12), _random_psd(rng, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_reference(mu1, s1, mu2, s2), rel=1e-8)


def test_symmetric_zero_on_identical_and_accepts_tensors():
    rng = np.random.default_rng(3)
    s1, s2 = _random_psd(rng, 10), _random_psd(rng, 10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert d12 > 0.1
    assert d12 == pytest.approx(d21, rel=1e-9)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) < 1e-9
    as_tensors = frechet_distance(*(torch.from_numpy(t).float() for t in (mu1, s1, mu2, s2)))
    assert as_tensors == pytest.approx(d12, rel=1e-5)  # float32 inputs, float64 arithmetic


def test_retries_with_eps_when_the_square_root_is_not_finite(monkeypatch):
    rng = np.random.default_rng(4)
    s1, s2 = _random_psd(rng, 5), _random_psd(rng, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    real_sqrtm, calls = frechet_module.linalg.sqrtm, []

    def flaky_sqrtm(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(frechet_module.linalg, "sqrtm", flaky_sqrtm)
    eps = 1e-3
    with pytest.warns(RuntimeWarning, match="not finite"):
        got = frechet_distance(mu1, s1, mu2, s2, eps=eps)
    assert len(calls) == 2
    offset = eps * np.eye(5)
    np.testing.assert_allclose(calls[1], (s1 + offset) @ (s2 + offset))
    # only the cross term uses the offset matrices
    w, v = np.linalg.eigh(s1 + offset)
    root = (v * np.sqrt(w)) @ v.T
    tr_cross = np.sqrt(np.linalg.eigvalsh(root @ (s2 + offset) @ root)).sum()
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_cross
    assert got == pytest.approx(expected, rel=1e-8)


def test_singular_covariances_stay_finite():
    rng = np.random.default_rng(5)
    s1, s2 = _random_psd(rng, 20, rank=3), _random_psd(rng, 20, rank=4)
    got = frechet_distance(np.zeros(20), s1, np.zeros(20), s2)
    assert np.isfinite(got)
    assert got == pytest.approx(_reference(np.zeros(20), s1, np.zeros(20), s2), abs=1e-4)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"same length"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(3, 3\)"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        feature_statistics(np.zeros(4))


def test_feature_statistics_are_mean_and_unbiased_covariance():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mu, sigma = feature_statistics(x)
    centred = x - x.mean(0)
    np.testing.assert_allclose(mu, x.mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(sigma, (centred.T @ centred / 49).numpy(), rtol=1e-12)


class _Net(torch.nn.Module):
    """Logits = a fixed projection of 'features' (the flattened image)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(4, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_classifier_distance_uses_the_feature_layer_and_restores_mode():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 1, 2, 2, generator=g)
    fake = 0.5 * torch.randn(300, 1, 2, 2, generator=g) + 1.0
    net = _Net().train()
    got = frechet_classifier_distance(real, fake, net, batch_size=64)
    mr, sr = feature_statistics(real.flatten(1))
    mf, sf = feature_statistics(fake.flatten(1))
    assert got == pytest.approx(frechet_distance(mr, sr, mf, sf), rel=1e-6)
    assert net.training  # put back in train mode after the eval-mode pass
    # a plain callable is used as it is
    assert frechet_classifier_distance(real, fake, lambda x: x.flatten(1)) == pytest.approx(got, rel=1e-6)
    assert compute_features(real, net, batch_size=7).shape == (300, 4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        compute_features(real.flatten(1), net)

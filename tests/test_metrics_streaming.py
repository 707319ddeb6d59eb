"""Streaming float64 moments, the Frechet distance against scipy's sqrtm formula, and FID/KID/IS
through the extractor interface against torchmetrics on the same features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from gan_utils.metrics import (
    FeatureExtractor,
    StreamingMoments,
    accumulate_features,
    evaluate_samples,
    frechet_distance,
    tensor_source,
)

torchmetrics = pytest.importorskip("torchmetrics")


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, 2 * d))
    return a @ a.T / (2 * d) + 0.05 * np.eye(d)


def _sqrtm_fid(mu1, s1, mu2, s2) -> float:
    """pytorch-fid's formula: tr sqrtm(S1 S2) with scipy, real part."""
    covmean = linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def _eigvals_fid(mu1, s1, mu2, s2) -> float:
    """torch-fidelity / torchmetrics' formula: tr sqrt(S1 S2) = sum of sqrt(eigenvalues)."""
    tr = np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real.sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


# ---------------------------------------------------------------- Frechet distance

@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
@pytest.mark.parametrize("d,seed", [(3, 0), (16, 1), (64, 2)])
def test_frechet_distance_matches_scipy_sqrtm_formula(d: int, seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _spd(rng, d), _spd(rng, d)
    got = frechet_distance(mu1, s1, mu2, s2, method=method)
    assert got == pytest.approx(_sqrtm_fid(mu1, s1, mu2, s2), rel=1e-6)
    assert got == pytest.approx(_eigvals_fid(mu1, s1, mu2, s2), rel=1e-6)


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_distance_equal_covariances_is_mean_distance(method: str) -> None:
    rng = np.random.default_rng(3)
    for d in (2, 10, 40):
        mu1, mu2, s = rng.normal(size=d), rng.normal(size=d), _spd(rng, d)
        expected = float(((mu1 - mu2) ** 2).sum())
        assert frechet_distance(mu1, s, mu2, s, method=method) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_frechet_eigh_handles_rank_deficient_covariances() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 6))  # rank 4 and 6 in 30-d
    s1, s2 = a @ a.T, b @ b.T
    mu = np.zeros(30)
    got = frechet_distance(mu, s1, mu, s2, method="eigh")
    assert got == pytest.approx(_eigvals_fid(mu, s1, mu, s2), rel=1e-6)
    # sqrt of round-off-sized eigenvalues (~1e-15) leaves ~1e-7 each: zero up to 1e-6 of the trace
    assert frechet_distance(mu, s1, mu, s1, method="eigh") == pytest.approx(0.0, abs=1e-6 * np.trace(s1))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(mu, s1, mu, s2, method="svd")


# ---------------------------------------------------------------- streaming moments

def test_streaming_moments_match_numpy_over_uneven_batches() -> None:
    rng = np.random.default_rng(4)
    # a large common offset: the textbook E[xx^T] - mu mu^T would lose digits here
    x = 1e4 + rng.normal(size=(1003, 7)) * rng.uniform(0.1, 3.0, size=7)
    m = StreamingMoments()
    for part in np.array_split(x, [1, 100, 101, 640]):
        m.update(torch.from_numpy(part))
    assert m.n == 1003 and m.dim == 7
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.covariance, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)


def test_streaming_moments_checks() -> None:
    m = StreamingMoments()
    with pytest.raises(ValueError, match="no features"):
        _ = m.mean
    m.update(torch.ones(1, 3))
    with pytest.raises(ValueError, match="at least 2"):
        _ = m.covariance
    with pytest.raises(ValueError, match="dimension 4"):
        m.update(torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        m.update(torch.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        m.update(torch.full((2, 3), float("nan")))


# ---------------------------------------------------------------- against torchmetrics

class _TinyNet(torch.nn.Module):
    """Images (N, 1, 8, 8) -> 12 features and 5 logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                        torch.nn.Linear(4 * 36, 12), torch.nn.Tanh())
        self.head = torch.nn.Linear(12, 5)


class _TinyExtractor(FeatureExtractor):
    name, feature_dim, num_classes = "tiny", 12, 5

    def _check_shape(self, images: torch.Tensor) -> None:
        if tuple(images.shape[1:]) != (1, 8, 8):
            raise ValueError("expected (N, 1, 8, 8)")

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.network.body(batch)
        return f, 3 * self.network.head(f)


class _AsTorchmetricsFeatures(torch.nn.Module):
    """The same extractor for torchmetrics: the float32 features / logits as float64."""

    def __init__(self, ext: FeatureExtractor, logits: bool) -> None:
        super().__init__()
        self.ext, self.logits, self.num_features = ext, logits, ext.num_classes if logits else ext.feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, z = self.ext._forward(x.float())
        return (z if self.logits else f.float()).double()


def _images(n: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * scale).clamp(0, 1)


@pytest.mark.filterwarnings("ignore:Metric `.*` will save all extracted features")
@pytest.mark.filterwarnings("ignore:std.*degrees of freedom")
def test_fid_kid_is_through_the_extractor_match_torchmetrics() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    ext = _TinyExtractor(_TinyNet(), batch_size=64)
    real, fake = _images(300, 1), _images(240, 2, scale=0.7)
    ours = evaluate_samples(tensor_source(fake, batch_size=100), ext, "fid,kid,is",
                            ref=tensor_source(real, batch_size=77), kid_subsets=3, kid_subset_size=240,
                            is_splits=1, progress=False)
    assert ours["extractor"] == "tiny" and ours["n"] == 240 and ours["n_ref"] == 300
    assert set(ours) >= {"fid@tiny", "kid@tiny", "kid_std@tiny", "is@tiny", "is_std@tiny"}

    fid = FrechetInceptionDistance(feature=_AsTorchmetricsFeatures(ext, logits=False))
    kid = KernelInceptionDistance(feature=_AsTorchmetricsFeatures(ext, logits=False), subsets=3, subset_size=240)
    for chunk in real.split(64):
        fid.update(chunk, real=True)
        kid.update(chunk, real=True)
    for chunk in fake.split(64):
        fid.update(chunk, real=False)
        kid.update(chunk, real=False)
    inception = InceptionScore(feature=_AsTorchmetricsFeatures(ext, logits=True), splits=1)
    inception.update(fake)

    assert ours["fid@tiny"] == pytest.approx(float(fid.compute()), rel=1e-6)
    # each KID subset of 240 fake rows is all of them; the real subsets differ (random 240 of 300),
    # so compare the whole-set estimate on equal sizes
    kid_full = KernelInceptionDistance(feature=_AsTorchmetricsFeatures(ext, logits=False), subsets=1, subset_size=240)
    kid_full.update(real[:240], real=True)
    kid_full.update(fake, real=False)
    ours_full = evaluate_samples(tensor_source(fake), ext, "kid", ref=tensor_source(real[:240]), kid_subsets=2,
                                 kid_subset_size=240, progress=False)
    assert ours_full["kid@tiny"] == pytest.approx(float(kid_full.compute()[0]), rel=1e-9)
    assert ours["is@tiny"] == pytest.approx(float(inception.compute()[0]), rel=1e-9)


def test_accumulate_features_keeps_only_what_is_asked() -> None:
    ext = _TinyExtractor(_TinyNet())
    images = _images(50, 5)
    stream = accumulate_features(tensor_source(images, batch_size=16), ext, progress=False)
    assert stream.n == 50 and stream.features is None and stream.probs is None
    kept = accumulate_features(tensor_source(images, batch_size=16), ext, keep_features=True, keep_probs=True,
                               progress=False)
    feats, probs = ext.features_and_probs(images)
    torch.testing.assert_close(kept.features, feats)
    torch.testing.assert_close(kept.probs, probs)
    # same batches, same float32 features: the moments agree with numpy to float64 round-off
    np.testing.assert_allclose(stream.moments.covariance, np.cov(kept.features.double().numpy(), rowvar=False),
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(stream.moments.mean, kept.features.double().mean(0).numpy(), rtol=1e-12)
    torch.testing.assert_close(probs.sum(1), torch.ones(50, dtype=torch.float64))

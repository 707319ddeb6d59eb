"""Sample-quality scores of gan_utils.metrics.scores against closed forms and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist
from scipy.stats import wasserstein_distance

from gan_utils.metrics import (
    inception_score,
    kid,
    mmd_rbf,
    mode_score,
    polynomial_mmd2,
    precision_recall,
    sliced_wasserstein,
)

torchmetrics = pytest.importorskip("torchmetrics")


def _random_probs(n: int, c: int, seed: int = 0, sharpness: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(sharpness * torch.randn(n, c, generator=g, dtype=torch.float64), 1)


def _is_reference(p: np.ndarray, splits: int) -> list[float]:
    """The original IS formula, written out with numpy loops."""
    n = p.shape[0]
    out = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(0)
        kl = [sum(pi * math.log(pi / qi) for pi, qi in zip(row, py, strict=True) if pi > 0) for row in part]
        out.append(math.exp(np.mean(kl)))
    return out


class _Logits(torch.nn.Module):
    """A small custom feature extractor: images (N, 3, 8, 8) -> float64 logits (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 36, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * self.net(x.float()).double()


# ---------------------------------------------------------------- Inception Score

def test_is_uniform_predictions_is_one() -> None:
    mean, std = inception_score(torch.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("c", [2, 10])
def test_is_one_hot_balanced_is_number_of_classes(c: int) -> None:
    probs = torch.eye(c).repeat(20, 1)  # 20 per class, each split balanced
    mean, std = inception_score(probs, splits=10 if c == 2 else 2)
    assert mean == pytest.approx(c, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_is_one_hot_single_class_is_one() -> None:
    probs = torch.zeros(50, 10)
    probs[:, 3] = 1
    assert inception_score(probs, splits=5)[0] == pytest.approx(1.0)


def test_is_matches_numpy_reference_with_uneven_splits() -> None:
    p = _random_probs(103, 6, seed=1)
    mean, std = inception_score(p, splits=4)
    # 103 samples: near-equal consecutive parts (26, 26, 26, 25)
    ours = [inception_score(part, splits=1)[0] for part in torch.tensor_split(p, 4)]
    assert mean == pytest.approx(float(np.mean(ours)), rel=1e-12)
    assert std == pytest.approx(float(np.std(ours)), rel=1e-9)
    p100 = p[:100]
    ref = _is_reference(p100.numpy(), 4)
    assert inception_score(p100, splits=4) == pytest.approx((np.mean(ref), np.std(ref)), rel=1e-10)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save")
def test_is_matches_torchmetrics() -> None:
    from torchmetrics.image.inception import InceptionScore

    net = _Logits()
    images = torch.rand(200, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    metric = InceptionScore(feature=net, splits=10)
    metric.update(images)
    torch.manual_seed(123)
    tm_mean, tm_std = metric.compute()
    torch.manual_seed(123)
    perm = torch.randperm(200)  # torchmetrics shuffles before splitting
    with torch.no_grad():
        probs = torch.softmax(net(images), 1)[perm]
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(float(tm_mean), rel=1e-10)
    # torchmetrics reports the sample std (ddof=1), the kit the original's ddof=0
    assert std * math.sqrt(10 / 9) == pytest.approx(float(tm_std), rel=1e-8)


def test_is_rejects_logits_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.randn(20, 10).abs())
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(torch.randn(20, 10))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        inception_score(torch.ones(10))
    with pytest.raises(ValueError, match="splits"):
        inception_score(torch.full((5, 2), 0.5), splits=6)
    with pytest.raises(ValueError, match="NaN"):
        inception_score(torch.full((5, 2), float("nan")))


# ---------------------------------------------------------------- Mode Score

def test_mode_score_equals_is_when_prior_matches() -> None:
    p = _random_probs(200, 10, seed=3)
    assert mode_score(p, p, splits=1)[0] == pytest.approx(inception_score(p, splits=1)[0], rel=1e-12)
    # a reference set with the same class histogram but other images
    ref = 0.5 * (p + p.roll(1, 0))
    assert mode_score(p, ref, splits=1)[0] == pytest.approx(inception_score(p, splits=1)[0], rel=1e-12)
    balanced = torch.eye(10).repeat(10, 1)
    assert mode_score(balanced, torch.full((7, 10), 0.1), splits=5)[0] == pytest.approx(10.0)


def test_mode_score_penalises_a_wrong_class_histogram() -> None:
    half = torch.eye(10)[:5].repeat(20, 1)  # confident, but only digits 0-4
    real = torch.eye(10).repeat(10, 1)
    is_mean = inception_score(half, splits=1)[0]
    ms_mean = mode_score(half, real, splits=1)[0]
    assert is_mean == pytest.approx(5.0)
    # KL(p(y) || p*) = log 2 for half the classes at double mass
    assert ms_mean == pytest.approx(5.0 / 2.0, rel=1e-12)


def test_mode_score_checks_classes() -> None:
    with pytest.raises(ValueError, match="same number of classes"):
        mode_score(torch.full((4, 2), 0.5), torch.full((4, 3), 1 / 3))
    only0 = torch.zeros(4, 2)
    only0[:, 0] = 1
    with pytest.raises(ValueError, match="never predicts"):
        mode_score(torch.full((4, 2), 0.5), only0, splits=1)


# ---------------------------------------------------------------- KID / polynomial MMD

def _poly_mmd_reference(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def test_polynomial_mmd2_matches_numpy_reference() -> None:
    g = np.random.default_rng(0)
    x, y = g.normal(size=(40, 6)), g.normal(0.3, 1.2, size=(30, 6))
    assert polynomial_mmd2(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(_poly_mmd_reference(x, y), rel=1e-12)


def test_kid_with_full_subsets_is_the_full_sample_estimate() -> None:
    g = np.random.default_rng(1)
    x, y = g.normal(size=(50, 4)), g.normal(0.5, 1.0, size=(50, 4))
    mean, std = kid(torch.from_numpy(x), torch.from_numpy(y), subsets=5, subset_size=50)
    assert mean == pytest.approx(_poly_mmd_reference(x, y), rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)
    # subset_size is clipped to the smaller set
    assert kid(torch.from_numpy(x), torch.from_numpy(y[:20]), subsets=2, subset_size=1000)[0] != mean


def test_kid_is_seeded() -> None:
    x, y = torch.randn(80, 3), torch.randn(60, 3) + 0.2
    assert kid(x, y, subsets=4, subset_size=20, seed=5) == kid(x, y, subsets=4, subset_size=20, seed=5)
    assert kid(x, y, subsets=4, subset_size=20, seed=5) != kid(x, y, subsets=4, subset_size=20, seed=6)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_matches_torchmetrics() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    class Feats(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1).double()

    g = torch.Generator().manual_seed(4)
    real = torch.rand(120, 2, 3, 3, generator=g)
    fake = torch.rand(100, 2, 3, 3, generator=g) * 0.8 + 0.1
    metric = KernelInceptionDistance(feature=Feats(), subsets=7, subset_size=40)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(9)
    tm_mean, tm_std = metric.compute()
    # the same subsets torchmetrics drew, through the kit's polynomial MMD
    torch.manual_seed(9)
    fr, ff = real.flatten(1).double(), fake.flatten(1).double()
    values = []
    for _ in range(7):
        ir = torch.randperm(120)[:40]
        jf = torch.randperm(100)[:40]
        values.append(polynomial_mmd2(fr[ir], ff[jf]))
    assert float(np.mean(values)) == pytest.approx(float(tm_mean), rel=1e-10)
    assert float(np.std(values)) == pytest.approx(float(tm_std), rel=1e-8)
    # and the kit's own subsets: the whole-set estimate agrees exactly
    full = KernelInceptionDistance(feature=Feats(), subsets=1, subset_size=100)
    full.update(real[:100], real=True)
    full.update(fake, real=False)
    assert kid(fr[:100], ff, subsets=3, subset_size=100)[0] == pytest.approx(float(full.compute()[0]), rel=1e-10)


def test_kid_is_unbiased_while_the_v_statistic_is_not() -> None:
    g = torch.Generator().manual_seed(0)
    unbiased, biased = [], []
    d = 5
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of tiny ops: thread hand-offs would dominate on a busy machine
    try:
        for _ in range(150):
            x = torch.randn(30, d, generator=g, dtype=torch.float64)
            y = torch.randn(30, d, generator=g, dtype=torch.float64)
            unbiased.append(kid(x, y, subsets=1, subset_size=30)[0])
            k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
            biased.append(float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()))
    finally:
        torch.set_num_threads(threads)
    se = np.std(unbiased) / math.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3.5 * se
    assert np.mean(biased) > 20 * se
    assert min(unbiased) < 0 < max(unbiased)  # an unbiased estimate of 0 takes both signs


def test_kid_rejects_mismatched_features() -> None:
    with pytest.raises(ValueError, match="same feature dimension"):
        kid(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        kid(torch.randn(1, 3), torch.randn(10, 3))


# ---------------------------------------------------------------- MMD (RBF)

def _rbf_mmd_reference(x: np.ndarray, y: np.ndarray, h: float) -> float:
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * h * h))  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (kxx.sum() - m) / (m * (m - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2 * k(x, y).mean()


def test_mmd_rbf_matches_reference_and_median_rule() -> None:
    g = np.random.default_rng(2)
    x, y = g.normal(size=(40, 3)), g.normal(1.0, 1.0, size=(35, 3))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert mmd_rbf(tx, ty, bandwidth=0.7) == pytest.approx(_rbf_mmd_reference(x, y, 0.7), rel=1e-10)
    h = float(np.median(pdist(np.concatenate([x, y]))))
    assert mmd_rbf(tx, ty) == pytest.approx(_rbf_mmd_reference(x, y, h), rel=1e-10)


def test_mmd_rbf_zero_mean_for_equal_and_positive_for_shifted() -> None:
    g = torch.Generator().manual_seed(1)
    same = [mmd_rbf(torch.randn(40, 2, generator=g), torch.randn(40, 2, generator=g), bandwidth=1.0) for _ in range(100)]
    se = np.std(same) / 10
    assert abs(np.mean(same)) < 3.5 * se
    shifted = mmd_rbf(torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 1.5)
    assert shifted > 0.1
    assert shifted > 50 * se


def test_mmd_rbf_bad_bandwidth() -> None:
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_rbf(torch.randn(5, 2), torch.randn(5, 2), bandwidth=0.0)
    with pytest.raises(ValueError, match="bandwidth 0"):
        mmd_rbf(torch.zeros(5, 2), torch.zeros(5, 2))


# ---------------------------------------------------------------- sliced Wasserstein

@pytest.mark.parametrize("n,m", [(50, 50), (37, 61), (1, 5)])
def test_sliced_wasserstein_1d_is_exact_w1(n: int, m: int) -> None:
    g = np.random.default_rng(n + m)
    x, y = g.normal(size=n), g.exponential(2.0, size=m)
    ours = sliced_wasserstein(torch.from_numpy(x)[:, None], torch.from_numpy(y)[:, None], n_projections=3)
    assert ours == pytest.approx(wasserstein_distance(x, y), rel=1e-10)


def test_sliced_wasserstein_shifted_gaussians_closed_form() -> None:
    # N(0, I) vs N(delta, I): each projection is a 1-D shift by theta.delta, so
    # SW1 = |delta| E|theta_1| = |delta| Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)); d = 2 -> 2|delta|/pi
    g = torch.Generator().manual_seed(0)
    delta = torch.tensor([3.0, 0.0], dtype=torch.float64)
    x = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2000, 2, generator=g, dtype=torch.float64) + delta
    ours = sliced_wasserstein(x, y, n_projections=800, seed=1)
    assert ours == pytest.approx(2 * 3.0 / math.pi, rel=0.05)
    assert sliced_wasserstein(x, y + 1.0, n_projections=800, seed=1) > ours
    assert sliced_wasserstein(x, x) == 0.0


# ---------------------------------------------------------------- precision / recall

def _pr_reference(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(a: np.ndarray) -> np.ndarray:
        return np.sort(cdist(a, a), axis=1)[:, k]

    prec = float(np.mean((cdist(fake, real) <= radii(real)[None, :]).any(1)))
    rec = float(np.mean((cdist(real, fake) <= radii(fake)[None, :]).any(1)))
    return prec, rec


def test_precision_recall_known_cases() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(100, 4, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    # 1-D grid 0..9 (k=1 radius 1 everywhere) against fakes at 0.5 and 20
    grid = torch.arange(10.0)[:, None]
    fake = torch.tensor([[0.5], [20.0]])
    assert precision_recall(grid, fake, k=1) == (0.5, 1.0)


def test_precision_recall_matches_bruteforce_reference() -> None:
    g = np.random.default_rng(3)
    real, fake = g.normal(size=(120, 5)), g.normal(0.5, 0.7, size=(90, 5))
    ours = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3)
    assert ours == pytest.approx(_pr_reference(real, fake, 3), abs=1e-12)


def test_precision_recall_needs_more_than_k_points() -> None:
    with pytest.raises(ValueError, match="at least 4 rows"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2), k=3)
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(torch.randn(10, 2), torch.randn(10, 2), k=0)

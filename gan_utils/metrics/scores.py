"""Sample-quality scores on features or class probabilities (float64, Python floats out).

Every function takes tensors (or arrays) that a feature extractor produced and
returns plain floats, computed in float64 whatever the input dtype:

* :func:`inception_score` - ``exp(E_x KL(p(y|x) || p(y)))`` over splits;
* :func:`mode_score` - the Inception Score times ``exp(-KL(p(y) || p*(y)))``,
  which penalises a class histogram that differs from the real data's;
* :func:`kid` - Kernel Inception Distance: unbiased MMD^2 with the cubic
  polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets;
* :func:`mmd_rbf` - unbiased MMD^2 with a Gaussian (RBF) kernel, median
  bandwidth rule by default;
* :func:`sliced_wasserstein` - mean 1-D Wasserstein-1 distance over random
  projections;
* :func:`precision_recall` - Kynkaanniemi et al. (2019) k-NN manifold
  precision (how many samples look real) and recall (how much of the real data
  the samples cover).

The Frechet distance lives in :mod:`gan_utils.metrics.frechet`.

>>> import torch
>>> probs = torch.eye(10).repeat(100, 1)         # confident, balanced over 10 classes
>>> inception_score(probs)[0]                    # doctest: +ELLIPSIS
10.0...
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "inception_score",
    "kid",
    "mmd_rbf",
    "mode_score",
    "polynomial_mmd2",
    "precision_recall",
    "sliced_wasserstein",
]

# rows of a probability matrix must sum to 1 within this (float32 softmax round-off is ~1e-6)
_PROB_SUM_TOL = 1e-3


def _as_matrix(a: torch.Tensor | np.ndarray, name: str, min_rows: int = 1) -> torch.Tensor:
    """``a`` as a finite float64 CPU tensor of shape (N, D) with ``N >= min_rows``."""
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (N, D), got {type(a).__name__}")
    if a.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(a.shape)}")
    if a.is_complex() or a.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    a = a.detach().to("cpu", torch.float64)
    if a.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {a.shape[0]}")
    if a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {tuple(a.shape)}")
    if not torch.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _as_probs(p: torch.Tensor | np.ndarray, name: str, min_rows: int = 1) -> torch.Tensor:
    p = _as_matrix(p, name, min_rows)
    if (p < 0).any():
        raise ValueError(f"{name} must hold probabilities (non-negative), got a minimum of {float(p.min()):.3g}")
    sums = p.sum(1)
    worst = float((sums - 1).abs().max())
    if worst > _PROB_SUM_TOL:
        raise ValueError(
            f"each row of {name} must sum to 1 (class probabilities, e.g. softmax(logits)), "
            f"but a row sums to {float(sums[(sums - 1).abs().argmax()]):.4g}; pass probabilities, not logits"
        )
    return p / sums[:, None]


def _check_splits(splits: int, n: int) -> None:
    if not isinstance(splits, int) or isinstance(splits, bool) or splits < 1:
        raise ValueError(f"splits must be a positive int, got {splits!r}")
    if splits > n:
        raise ValueError(f"splits={splits} is more than the {n} samples: each split needs at least one sample")


def _xlogy_ratio(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Elementwise ``p * log(p / q)`` with ``0 * log 0 = 0`` (q broadcast against p)."""
    return torch.xlogy(p, p) - torch.xlogy(p, q.expand_as(p))


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std())  # population std (ddof=0), as the original IS and KID code


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of class probabilities.

    ``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y)`` the mean of ``p(y|x)``
    over the split. High when each sample is classified confidently (low
    entropy of ``p(y|x)``) and the classes are used evenly (high entropy of
    ``p(y)``); it lies in ``[1, C]``. It never looks at real data and is blind
    to diversity inside a class.

    Args:
        probs: ``(N, C)`` class probabilities, rows summing to 1 (``softmax``
            of a classifier's logits, not the logits themselves).
        splits: the samples are cut, in order, into this many near-equal
            consecutive parts (``torch.tensor_split``); the score is computed on
            each part.

    Returns:
        ``(mean, std)`` over the splits (population std, ``ddof=0``, as the
        original code). Uniform predictions give 1; confident predictions
        balanced over ``C`` classes give ``C``.
    """
    p = _as_probs(probs, "probs")
    _check_splits(splits, p.shape[0])
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        kl = _xlogy_ratio(part, marginal).sum(1).mean()
        scores.append(math.exp(float(kl)))
    return _mean_std(scores)


def mode_score(probs: torch.Tensor, ref_probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Mode Score (Che et al. 2017): the Inception Score penalised by a wrong class histogram.

    ``MS = exp(E_x KL(p(y|x) || p(y)) - KL(p(y) || p*(y)))`` where ``p(y)`` is
    the mean prediction over the split of generated samples and ``p*(y)`` the
    mean prediction over ``ref_probs`` (the real data). So
    ``MS = IS * exp(-KL(p(y) || p*(y)))``: it equals the Inception Score when
    the generated class histogram matches the real one, and is smaller
    otherwise (e.g. a generator that draws only some digits).

    Note: the form sometimes quoted, ``exp(E_x KL(p(y|x) || p*(y)) - KL(p(y) || p*(y)))``,
    is algebraically *identical* to the Inception Score (expand the logs:
    the ``log p*`` terms cancel because ``E_x p(y|x) = p(y)``), so it cannot see
    the class prior; this function uses Che et al.'s form above.

    Args:
        probs: ``(N, C)`` class probabilities of the generated samples.
        ref_probs: ``(M, C)`` class probabilities of real samples (same classifier).
        splits: as in :func:`inception_score`.

    Returns:
        ``(mean, std)`` over the splits (``ddof=0``).
    """
    p = _as_probs(probs, "probs")
    ref = _as_probs(ref_probs, "ref_probs")
    if ref.shape[1] != p.shape[1]:
        raise ValueError(f"probs and ref_probs must have the same number of classes, got {p.shape[1]} and {ref.shape[1]}")
    _check_splits(splits, p.shape[0])
    prior = ref.mean(0, keepdim=True)
    scores = []
    for part in torch.tensor_split(p, splits):
        marginal = part.mean(0, keepdim=True)
        kl_cond = _xlogy_ratio(part, marginal).sum(1).mean()
        kl_prior = _xlogy_ratio(marginal, prior).sum()
        if not torch.isfinite(kl_prior):
            raise ValueError("the generated samples use a class that ref_probs never predicts (p*(y) = 0): KL(p(y) || p*(y)) is infinite")
        scores.append(math.exp(float(kl_cond - kl_prior)))
    return _mean_std(scores)


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD^2 of two feature sets with ``k(a, b) = (a.b / d + coef)^degree`` (one KID subset).

    ``x`` is ``(m, d)``, ``y`` is ``(n, d)``, ``m, n >= 2``. The within-set
    kernel means leave out the diagonal (``i != j``), which is what makes the
    estimate unbiased: its expectation is exactly 0 when both sets come from
    the same distribution.
    """
    x, y = _as_matrix(x, "x", 2), _as_matrix(y, "y", 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature dimension, got {x.shape[1]} and {y.shape[1]}")
    return _polynomial_mmd2(x, y, degree, coef)


def _polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef: float = 1.0) -> float:
    d = x.shape[1]
    k_xx = (x @ x.T / d + coef) ** degree
    k_yy = (y @ y.T / d + coef) ** degree
    k_xy = (x @ y.T / d + coef) ** degree
    return _unbiased_mmd2(k_xx, k_yy, k_xy)


def _unbiased_mmd2(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    m, n = k_xx.shape[0], k_yy.shape[0]
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return float(sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.mean())


def kid(
    feats_a: torch.Tensor,
    feats_b: torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018) between two feature sets.

    For each of ``subsets`` rounds, ``subset_size`` rows of each set are drawn
    without replacement (a ``torch.Generator`` seeded by ``seed``) and the
    unbiased MMD^2 with ``k(x, y) = (x.y / d + 1)^3`` is computed
    (:func:`polynomial_mmd2`). Unlike FID the estimate is unbiased, so it can be
    compared across sample sizes and can come out slightly negative.

    Args:
        feats_a, feats_b: ``(N_a, d)`` and ``(N_b, d)`` features, at least 2 rows each.
        subsets: number of random subsets.
        subset_size: rows per subset, clipped to ``min(N_a, N_b)``.
        seed: seeds the subset draws (same seed, same subsets).

    Returns:
        ``(mean, std)`` of the subset estimates (``ddof=0``).
    """
    a, b = _as_matrix(feats_a, "feats_a", 2), _as_matrix(feats_b, "feats_b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}")
    if not isinstance(subsets, int) or subsets < 1:
        raise ValueError(f"subsets must be a positive int, got {subsets!r}")
    if not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"subset_size must be an int >= 2, got {subset_size!r}")
    size = min(subset_size, a.shape[0], b.shape[0])
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        ia = torch.randperm(a.shape[0], generator=gen)[:size]
        ib = torch.randperm(b.shape[0], generator=gen)[:size]
        values.append(_polynomial_mmd2(a[ia], b[ib]))
    return _mean_std(values)


def _sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``(len(x), len(y))`` in float64, clamped at 0."""
    d = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return d.clamp_min_(0.0)


def _median_pairwise_distance(points: torch.Tensor, chunk: int = 1024) -> float:
    """Median Euclidean distance over the pairs ``i < j`` of ``points`` (computed in row chunks)."""
    n = points.shape[0]
    cols = torch.arange(n)
    upper = []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        d = _sq_dists(points[rows], points)
        upper.append(d[cols[None, :] > rows[:, None]])
    return float(np.median(torch.cat(upper).sqrt_().numpy()))


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 with the Gaussian kernel ``k(a, b) = exp(-|a - b|^2 / (2 bandwidth^2))``.

    Bandwidth rule (``bandwidth=None``): the median heuristic, i.e. the median
    of the Euclidean distances between all pairs of distinct points of the
    pooled sample ``x`` and ``y`` (each pair once, the zero self-distances left
    out). Pass a fixed ``bandwidth`` to compare several models on one scale.

    Args:
        x, y: ``(m, d)`` and ``(n, d)``, ``m, n >= 2``.
        bandwidth: kernel width ``> 0``, or ``None`` for the median heuristic.

    Returns:
        MMD^2; about 0 (either sign) for two samples of one distribution,
        positive when they differ.
    """
    x, y = _as_matrix(x, "x", 2), _as_matrix(y, "y", 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature dimension, got {x.shape[1]} and {y.shape[1]}")
    d_xx, d_yy, d_xy = _sq_dists(x, x), _sq_dists(y, y), _sq_dists(x, y)
    if bandwidth is None:
        bandwidth = _median_pairwise_distance(torch.cat([x, y]))
        if bandwidth <= 0:
            raise ValueError("the median heuristic gave bandwidth 0 (most pooled points coincide): pass bandwidth= explicitly")
    elif not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be a positive finite number or None, got {bandwidth!r}")
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    return _unbiased_mmd2(torch.exp(-gamma * d_xx), torch.exp(-gamma * d_yy), torch.exp(-gamma * d_xy))


def _wasserstein1_sorted(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Exact W1 between empirical distributions, columns of sorted ``xs`` (n, P) and ``ys`` (m, P).

    ``W1 = int_0^1 |F^-1(t) - G^-1(t)| dt``; both quantile functions are step
    functions, constant between the merged breakpoints ``i/n`` and ``j/m``.
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return (xs - ys).abs().mean(0)
    # breakpoints as exact fractions over the common denominator n*m
    cuts = torch.unique(torch.cat([torch.arange(0, n + 1) * m, torch.arange(0, m + 1) * n]))
    lengths = (cuts[1:] - cuts[:-1]).double() / (n * m)
    lefts = cuts[:-1]
    ix, iy = lefts // m, lefts // n  # quantile index of each interval
    return (lengths[:, None] * (xs[ix] - ys[iy]).abs()).sum(0)


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced Wasserstein-1 distance: mean over random unit directions of 1-D W1 between projections.

    Directions are drawn uniformly on the unit sphere (normalised Gaussians,
    a ``torch.Generator`` seeded by ``seed``). Each 1-D distance is exact for
    the empirical distributions: sorted differences for equal sizes, matching of
    the quantile functions otherwise (the value ``scipy.stats.wasserstein_distance``
    gives).

    Args:
        x, y: ``(n, d)`` and ``(m, d)`` samples (any sizes ``>= 1``).
        n_projections: number of random directions.
        seed: seeds the directions.

    Returns:
        The distance (``>= 0``), in the units of the features. In 1-D it is
        the exact W1.
    """
    x, y = _as_matrix(x, "x"), _as_matrix(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same feature dimension, got {x.shape[1]} and {y.shape[1]}")
    if not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be a positive int, got {n_projections!r}")
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(n_projections, x.shape[1], generator=gen, dtype=torch.float64)
    theta = theta / theta.norm(dim=1, keepdim=True)
    xs = torch.sort(x @ theta.T, dim=0).values
    ys = torch.sort(y @ theta.T, dim=0).values
    return float(_wasserstein1_sorted(xs, ys).mean())


def _kth_nn_sq_radius(a: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Squared distance of each row of ``a`` to its k-th nearest other row."""
    out = []
    for start in range(0, a.shape[0], chunk):
        d = _sq_dists(a[start : start + chunk], a)
        # the (k+1)-th smallest counts the point itself (distance 0) as the first
        out.append(d.kthvalue(k + 1, dim=1).values)
    return torch.cat(out)


def _coverage(queries: torch.Tensor, centres: torch.Tensor, sq_radii: torch.Tensor, chunk: int) -> float:
    """Fraction of ``queries`` inside at least one ball ``|q - centre_i|^2 <= sq_radii_i``."""
    inside = 0
    for start in range(0, queries.shape[0], chunk):
        d = _sq_dists(queries[start : start + chunk], centres)
        inside += int((d <= sq_radii[None, :]).any(1).sum())
    return inside / queries.shape[0]


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN manifolds.

    The real manifold is the union of balls around each real feature with
    radius its distance to its ``k``-th nearest real neighbour; likewise for
    the fake manifold. Precision is the fraction of fake samples inside the
    real manifold (sample quality); recall is the fraction of real samples
    inside the fake manifold (coverage). Distances are computed in chunks, so
    memory stays ``O(chunk * N)``.

    Args:
        real: ``(N, d)`` real features, ``N > k``.
        fake: ``(M, d)`` generated features, ``M > k``.
        k: neighbourhood size (3 in the paper).

    Returns:
        ``(precision, recall)``, both in [0, 1]. Identical sets give (1, 1);
        two sets far apart give (0, 0).
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    real, fake = _as_matrix(real, "real", k + 1), _as_matrix(fake, "fake", k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same feature dimension, got {real.shape[1]} and {fake.shape[1]}")
    chunk = 256  # rows per distance block: 256 x N float64 (100 MB at N = 50,000)
    r_real = _kth_nn_sq_radius(real, k, chunk)
    r_fake = _kth_nn_sq_radius(fake, k, chunk)
    precision = _coverage(fake, real, r_real, chunk)
    recall = _coverage(real, fake, r_fake, chunk)
    return precision, recall

"""Hidden checks of the ``metrics`` assignment (Inception Score, Mode Score, RBF MMD, sliced Wasserstein).

References are the kit's scores, called at grade time on the same seeded inputs: ``inception_score`` /
``mode_score`` (float64, population std over splits), ``mmd_rbf`` with an explicit bandwidth (unbiased
MMD^2), and ``sliced_wasserstein`` on one projection at a time (in 1-D the exact W1). N is a multiple of
``splits`` in every case, so all ways of cutting equal consecutive parts agree. The tables graded by
``tests/test_assignments.py`` live in :mod:`.metrics_tables`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

import autograder.assignments.metrics_tables as tables
import autograder.checks as checks
import gan_utils.metrics.scores as kit
from autograder.checks import core

IS, MS, MMD, SW = tables.IS, tables.MS, tables.MMD, tables.SW  # the answer cells
SLIPS, VARIANTS, LIBRARY_COPIES, SOLUTION_FIGURES = tables.SLIPS, tables.VARIANTS, tables.LIBRARY_COPIES, tables.SOLUTION_FIGURES

_PLACES = ("gan_utils.metrics", "gan_utils.metrics.scores")
_SCORES = tuple(f"{m}.{n}" for m in _PLACES for n in ("inception_score", "mode_score"))
_KERNELS = tuple(f"{m}.{n}" for m in _PLACES for n in ("mmd_rbf", "kid")) + ("gan_utils.metrics.scores.polynomial_mmd2",)
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    IS: _SCORES, MS: _SCORES, MMD: _KERNELS, SW: tuple(f"{m}.sliced_wasserstein" for m in _PLACES)}
hidden = checks.hidden_checks(OFF_LIMITS)
RTOL, ATOL = 1e-4, 1e-7


# --- helpers: results as floats, comparisons that name known slips --------------------------
def _floats(value: Any, n: int, what: str) -> list[float]:
    """The student's result as ``n`` floats: a ``(mean, std)`` pair or a single number."""
    if n == 1:
        return [checks.as_number(value, what)]
    if not isinstance(value, (tuple, list)) or len(value) != n:
        checks.fail(f"{what} should return a pair (mean, std) of numbers, got {type(value).__name__}"
                    + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return [checks.as_number(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")" if len(values) > 1 else f"{values[0]:.6g}"


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(math.isfinite(x) and abs(x - y) <= ATOL + RTOL * abs(y) for x, y in zip(a, b, strict=True))


def _compare(fn: Callable[..., Any], reference: Callable[..., Any], cases: Sequence[tuple[Any, ...]], what: str,
             slips: Mapping[str, Callable[..., Any]], n: int = 2, names: tuple[str, ...] = ("mean", "std")) -> None:
    """``fn(*case)`` against ``reference(*case)`` on every case; a wrong value that matches a slip names it."""
    for k, case in enumerate(cases):
        label = f"{what} on case {k} ({', '.join(core.describe(a) for a in case)})"
        got = _floats(checks.call_student(fn, *case, what=what), n, what)
        want = _floats(reference(*case), n, "reference")
        if _close(got, want):
            continue
        for description, alt in slips.items():
            other = _floats(alt(*case), n, "slip")
            if _close(got, other) and not _close(other, want):
                checks.fail(f"{label}: it matches what you get when {description} (expected {_fmt(want)}, got {_fmt(got)})")
        bad = next(i for i in range(n) if not _close(got[i:i + 1], want[i:i + 1]))
        checks.fail(f"{label}: expected {names[bad] if n > 1 else 'the value'} {want[bad]:.7g}, got {got[bad]:.7g} "
                    f"(relative tolerance {RTOL:g}); in all, expected {_fmt(want)}, got {_fmt(got)}")


def _probs(seed: int, n: int, c: int, scale: float, skew: float = 0.0) -> Tensor:
    """Seeded softmax rows (n, c), float32 on the grading device; ``skew`` favours the first classes."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g) * scale - skew * torch.arange(c, dtype=torch.float32)
    return torch.softmax(logits, dim=1).to(checks.grading_device())


def _kl_rows(p: Tensor, q: Tensor) -> Tensor:
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)  # KL(p || q) per row, 0 log 0 = 0


def _over_splits(probs: Tensor, splits: int, log_score: Callable[[Tensor], Tensor], ddof: int = 0) -> tuple[float, float]:
    """(mean, std) of ``exp(log_score(part))`` over the consecutive parts (a slip's own value)."""
    s = torch.stack([torch.exp(log_score(p)) for p in torch.tensor_split(probs.double().cpu(), splits)])
    return float(s.mean()), float(s.std(correction=ddof)) if len(s) > ddof else float("nan")


def _std_pair(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(correction=0))


# --- Inception Score and Mode Score ------------------------------------------------------------
IS_CASES = [(_probs(11, 100, 10, 2.0), 10), (_probs(12, 60, 5, 0.7, skew=0.5), 3), (_probs(13, 64, 10, 4.0), 1), (_probs(14, 90, 7, 3.0, skew=0.3), 9)]
IS_SLIPS: dict[str, Callable[..., Any]] = {
    "the KL is taken the wrong way round, KL(p(y) || p(y|x))": lambda p, s: _over_splits(
        p, s, lambda q: _kl_rows(q.mean(0, keepdim=True).expand_as(q), q).mean()),
    "the exp is left out (that is log IS)": lambda p, s: _std_pair(
        [float(_kl_rows(q, q.mean(0, keepdim=True)).mean()) for q in torch.tensor_split(p.double().cpu(), s)]),
    "exp is taken per sample and then averaged (the mean of exp(KL) instead of exp of the mean KL)":
        lambda p, s: _std_pair([float(torch.exp(_kl_rows(q, q.mean(0, keepdim=True))).mean())
                                for q in torch.tensor_split(p.double().cpu(), s)]),
    "p(y) is the mean over all N samples instead of over each split": lambda p, s: _over_splits(
        p, s, lambda q: _kl_rows(q, p.double().cpu().mean(0, keepdim=True)).mean()),
    "the standard deviation divides by splits - 1 (torch's default); use the population std, std(correction=0)":
        lambda p, s: _over_splits(p, s, lambda q: _kl_rows(q, q.mean(0, keepdim=True)).mean(), ddof=1),
}


@hidden(IS)
def check_inception_score(inception_score: Callable[..., Any]) -> None:
    """Mean and std against the kit's IS on four seeded sets of softmax rows (confident, flat, skewed)."""
    _compare(inception_score, kit.inception_score, IS_CASES, "inception_score", IS_SLIPS)


def _sparse(seed: int, n: int, c: int) -> Tensor:  # rows with exact zeros in about half their classes
    g = torch.Generator().manual_seed(seed)
    p = _probs(seed, n, c, 1.5).cpu() * (torch.rand(n, c, generator=g) < 0.5)
    p[torch.arange(n), torch.randint(c, (n,), generator=g)] += 0.1  # every row keeps some mass
    return (p / p.sum(1, keepdim=True)).to(checks.grading_device())


@hidden(IS)
def check_inception_score_zeros(inception_score: Callable[..., Any]) -> None:
    """Exact zeros (one-hot and sparse rows) give finite scores, and exact ones when the formula is right."""
    onehot = torch.eye(10, device=checks.grading_device()).repeat(8, 1)
    zero_cases = [(onehot, 4), (_sparse(21, 80, 10), 5), (_sparse(22, 30, 6), 3)]
    first = checks.call_student(inception_score, *IS_CASES[0], what="inception_score")
    right = _close(_floats(first, 2, "inception_score"), _floats(kit.inception_score(*IS_CASES[0]), 2, "reference"))
    for k, case in enumerate(zero_cases):
        got = _floats(checks.call_student(inception_score, *case, what="inception_score"), 2, "inception_score")
        if not all(math.isfinite(v) for v in got):
            checks.fail(f"inception_score on rows with exact zeros (case {k}, {core.describe(case[0])}) gave {_fmt(got)}: "
                        "0 * log 0 must count as 0 (torch.xlogy(p, p) or torch.special.entr do this; p * log(p) gives nan)")
    if right:
        _compare(inception_score, kit.inception_score, zero_cases, "inception_score (rows with exact zeros)", {})


def _ms_parts(p: Tensor, ref: Tensor, s: int, sign: float = -1.0, reverse: bool = False) -> tuple[float, float]:
    star = ref.double().cpu().mean(0)
    return _over_splits(p, s, lambda q: _kl_rows(q, q.mean(0)[None]).mean()
                        + sign * (_kl_rows(star, q.mean(0)) if reverse else _kl_rows(q.mean(0), star)))


MS_CASES = [(_probs(31, 100, 10, 2.0, skew=0.4), _probs(32, 300, 10, 2.0), 10),
            (_probs(33, 60, 5, 3.0), _probs(34, 50, 5, 1.0, skew=0.6), 4),
            (_probs(35, 80, 10, 1.0, skew=0.8), _probs(36, 80, 10, 1.0, skew=-0.3), 1)]
MS_SLIPS: dict[str, Callable[..., Any]] = {
    "the prior term KL(p(y) || p*(y)) is missing or cancels: that is the Inception Score "
    "(with p*(y) in place of p(y) inside the first KL the two log p*(y) terms cancel)": lambda p, r, s: kit.inception_score(p, s),
    "the prior term is added instead of subtracted": lambda p, r, s: _ms_parts(p, r, s, sign=1.0),
    "the prior KL is the wrong way round, KL(p*(y) || p(y))": lambda p, r, s: _ms_parts(p, r, s, reverse=True),
}


@hidden(MS)
def check_mode_score(mode_score: Callable[..., Any]) -> None:
    """Against the kit's Mode Score on generated/real histograms that differ; equal to IS when they match."""
    _compare(mode_score, kit.mode_score, MS_CASES, "mode_score", MS_SLIPS)
    probs = MS_CASES[0][0]
    _compare(mode_score, lambda p, r, s: kit.inception_score(p, s), [(probs, probs, 1)],
             "mode_score with ref_probs = probs and one split (the prior term is 0, so MS = IS)", {})


# --- kernels and transport ------------------------------------------------------------------------
def _features(seed: int, n: int, d: int, shift: float = 0.0, scale: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g) * scale + shift).to(checks.grading_device())


def _mmd_alt(x: Tensor, y: Tensor, bw: float, *, biased: bool = False, gamma: float | None = None,
             sqrt_d: bool = False, cross: float = 2.0) -> float:
    x, y = x.double().cpu(), y.double().cpu()
    gamma = 1.0 / (2.0 * bw * bw) if gamma is None else gamma

    def k(a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-gamma * (torch.cdist(a, b) if sqrt_d else torch.cdist(a, b) ** 2))

    def within(a: Tensor) -> Tensor:
        kk = k(a, a)
        return kk.mean() if biased else (kk.sum() - kk.diagonal().sum()) / (len(a) * (len(a) - 1))

    return float(within(x) + within(y) - cross * k(x, y).mean())


MMD_CASES = [(_features(41, 40, 5), _features(42, 50, 5, shift=0.4), 1.5), (_features(43, 30, 8), _features(44, 30, 8, scale=1.5), 3.0),
             (_features(45, 25, 3, shift=1.0), _features(46, 35, 3), 0.5), (_features(47, 60, 4), _features(48, 20, 4), 2.0)]
MMD_SLIPS: dict[str, Callable[..., Any]] = {
    "the diagonal terms k(x_i, x_i) = 1 are included in the within-set means (the biased estimate)":
        lambda x, y, b: _mmd_alt(x, y, b, biased=True),
    "the bandwidth is used as a variance, exp(-|x - y|^2 / (2 bandwidth))": lambda x, y, b: _mmd_alt(x, y, b, gamma=1 / (2 * b)),
    "the 2 is missing in exp(-|x - y|^2 / (2 bandwidth^2))": lambda x, y, b: _mmd_alt(x, y, b, gamma=1 / (b * b)),
    "the distances are not squared": lambda x, y, b: _mmd_alt(x, y, b, sqrt_d=True),
    "the cross term has no factor 2": lambda x, y, b: _mmd_alt(x, y, b, cross=1.0),
    "you return the square root (MMD, not MMD^2)": lambda x, y, b: math.sqrt(max(kit.mmd_rbf(x, y, bandwidth=b), 0.0)),
}


@hidden(MMD)
def check_mmd_rbf(mmd_rbf: Callable[..., Any]) -> None:
    """Unbiased MMD^2 against the kit's on four pairs of sets (unequal sizes, several bandwidths)."""
    _compare(mmd_rbf, lambda x, y, b: kit.mmd_rbf(x, y, bandwidth=b), MMD_CASES, "mmd_rbf", MMD_SLIPS, n=1)


def _sw_reference(x: Tensor, y: Tensor, directions: Tensor) -> float:
    """Mean over the unit directions of the kit's exact 1-D W1 between the projections."""
    x, y, u = x.double().cpu(), y.double().cpu(), directions.double().cpu()
    u = u / u.norm(dim=1, keepdim=True)
    return sum(kit.sliced_wasserstein((x @ v)[:, None], (y @ v)[:, None], n_projections=1) for v in u) / len(u)


def _sw_alt(x: Tensor, y: Tensor, directions: Tensor, *, sort: bool = True, unit: bool = True, power: int = 1,
            reduce: str = "mean") -> float:
    x, y, u = x.double().cpu(), y.double().cpu(), directions.double().cpu()
    u = u / u.norm(dim=1, keepdim=True) if unit else u
    px, py = x @ u.T, y @ u.T
    if sort:
        px, py = px.sort(0).values, py.sort(0).values
    per_direction = ((px - py).abs() ** power).mean(0)
    return float(per_direction.max() if reduce == "max" else per_direction.mean())


def _directions(seed: int, p: int, d: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(p, d, generator=g) * torch.rand(p, 1, generator=g).mul(3).add(0.2)).to(checks.grading_device())


SW_CASES = [(_features(51, 40, 6), _features(52, 40, 6, shift=0.5, scale=1.3), _directions(53, 16, 6)),
            (_features(54, 25, 3, scale=2.0), _features(55, 25, 3), _directions(56, 7, 3)),
            (_features(57, 64, 10), _features(58, 64, 10, shift=-0.3), _directions(59, 32, 10))]
SW_SLIPS: dict[str, Callable[..., Any]] = {
    "the projections are not sorted (sorting is what pairs the i-th smallest with the i-th smallest)":
        lambda x, y, u: _sw_alt(x, y, u, sort=False),
    "the directions are not normalised to unit length": lambda x, y, u: _sw_alt(x, y, u, unit=False),
    "the differences are squared (that is the squared sliced W2)": lambda x, y, u: _sw_alt(x, y, u, power=2),
    "the maximum over directions is taken instead of the mean": lambda x, y, u: _sw_alt(x, y, u, reduce="max"),
}


@hidden(SW)
def check_sliced_wasserstein(sliced_wasserstein: Callable[..., Any]) -> None:
    """Against the mean of the kit's exact 1-D W1 over the given directions (rescaled at random)."""
    _compare(sliced_wasserstein, _sw_reference, SW_CASES, "sliced_wasserstein", SW_SLIPS, n=1)


core.watch_functions(sys.modules[__name__])

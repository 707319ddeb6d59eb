"""One code path from image streams to tagged sample-quality numbers.

:func:`evaluate_samples` runs one feature extractor once over the generated
images and once over the reference images, and computes every requested metric
from what it collected: FID from the streaming float64 moments (nothing kept),
KID / MMD / sliced Wasserstein / precision-recall from the kept features, IS and
Mode Score from the kept class probabilities. Every number's key carries the
extractor's name (``"fid@lenet"``, ``"is@inception"``), and the result also has
an ``"extractor"`` field, so a LeNet score is never mistaken for an Inception one.

>>> from gan_utils.metrics import evaluate_samples, load_extractor, open_source
>>> ext = load_extractor("lenet")                                              # doctest: +SKIP
>>> evaluate_samples(open_source("out/cgan/checkpoint.pt", 5000), ext,
...                  ["fid", "kid", "is"], ref=open_source("mnist", 4500))    # doctest: +SKIP
{'extractor': 'lenet', 'n': 5000, 'n_ref': 4500, 'fid@lenet': ..., ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_utils.metrics.extractors import FeatureExtractor
from gan_utils.metrics.frechet import frechet_distance
from gan_utils.metrics.scores import (
    inception_score,
    kid,
    mmd_rbf,
    mode_score,
    precision_recall,
    sliced_wasserstein,
)
from gan_utils.metrics.sources import ImageSource
from gan_utils.metrics.streaming import accumulate_features

__all__ = [
    "METRICS",
    "ReferenceStatistics",
    "evaluate_samples",
    "load_reference_statistics",
    "is_reference_statistics",
    "parse_metrics",
    "reference_statistics",
    "save_reference_statistics",
]

#: metric name -> (needs a reference set, needs kept features, needs class probabilities)
METRICS: dict[str, tuple[bool, bool, bool]] = {
    "fid": (True, False, False),
    "kid": (True, True, False),
    "is": (False, False, True),
    "mode_score": (True, False, True),
    "mmd": (True, True, False),
    "swd": (True, True, False),
    "pr": (True, True, False),
}
_ALIASES = {"mode": "mode_score", "ms": "mode_score", "mmd_rbf": "mmd", "sliced_wasserstein": "swd",
            "precision_recall": "pr", "precision": "pr", "recall": "pr", "inception_score": "is"}


def parse_metrics(metrics: str | Sequence[str]) -> list[str]:
    """``"fid,kid,is"`` or a list -> canonical names in :data:`METRICS` (duplicates dropped)."""
    items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for raw in items:
        name = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in METRICS:
            raise ValueError(f"unknown metric {raw!r}; expected some of {', '.join(METRICS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError(f"no metric given; expected some of {', '.join(METRICS)}")
    return out


@dataclass
class ReferenceStatistics:
    """Precomputed FID statistics of a reference set (mean, covariance, count, extractor name)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    extractor: str
    name: str = "reference statistics"


def save_reference_statistics(path: str | Path, stats: ReferenceStatistics) -> Path:
    """Write ``mu``, ``sigma``, ``n``, ``extractor`` to an ``.npz`` (reuse with ``--ref PATH``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, mu=stats.mu, sigma=stats.sigma, n=stats.n, extractor=stats.extractor, name=stats.name)
    return path


def load_reference_statistics(path: str | Path) -> ReferenceStatistics:
    """Read what :func:`save_reference_statistics` wrote."""
    with np.load(path) as data:
        missing = {"mu", "sigma", "extractor"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not a reference-statistics file (missing {sorted(missing)})")
        return ReferenceStatistics(data["mu"], data["sigma"], int(data["n"]), str(data["extractor"]),
                                   str(data["name"]) if "name" in data.files else str(path))


def is_reference_statistics(path: str | Path) -> bool:
    """Whether ``path`` is an ``.npz`` holding ``mu`` and ``sigma`` (not images)."""
    path = Path(path)
    if path.suffix != ".npz" or not path.is_file():
        return False
    with np.load(path) as data:
        return "mu" in data.files and "sigma" in data.files


def evaluate_samples(
    samples: ImageSource,
    extractor: FeatureExtractor,
    metrics: str | Sequence[str],
    ref: ImageSource | ReferenceStatistics | None = None,
    *,
    is_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    swd_projections: int = 256,
    mmd_bandwidth: float | None = None,
    mmd_max: int = 2000,
    fid_method: str = "eigh",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Compute ``metrics`` of ``samples`` (against ``ref``) through ``extractor``.

    Args:
        samples: the generated images.
        extractor: the feature network; its ``name`` tags every number.
        metrics: names from :data:`METRICS` (``"fid,kid,is"`` or a list):
            ``fid``, ``kid`` (+ ``kid_std``), ``is`` (+ ``is_std``), ``mode_score``
            (+ ``mode_score_std``), ``mmd`` (RBF, median bandwidth unless
            ``mmd_bandwidth``; on at most ``mmd_max`` samples per side), ``swd`` (sliced Wasserstein), ``pr`` (``precision``, ``recall``).
        ref: the reference (real) images, or precomputed statistics (FID only).
        fid_method: ``"eigh"`` (default: fast, real by construction) or ``"sqrtm"``
            (pytorch-fid's); see :func:`gan_utils.metrics.frechet_distance`.
        is_splits, kid_subsets, kid_subset_size, pr_k, swd_projections, mmd_bandwidth, mmd_max, seed:
            settings of the individual scores (see :mod:`gan_utils.metrics.scores`).
        progress: progress bars on stderr.

    Returns:
        ``{"extractor", "n", ["n_ref", "ref"], "<metric>@<extractor>": float, ...}``.
    """
    wanted = parse_metrics(metrics)
    needs_ref = [m for m in wanted if METRICS[m][0]]
    keep_features = any(METRICS[m][1] for m in wanted)
    keep_probs = any(METRICS[m][2] for m in wanted)
    if needs_ref and ref is None:
        raise ValueError(f"metric(s) {needs_ref} compare with real data: give a reference (--ref mnist or an .npz)")
    if isinstance(ref, ReferenceStatistics):
        other = [m for m in needs_ref if m != "fid"]
        if other:
            raise ValueError(f"precomputed reference statistics only serve FID; {other} need reference images")
        if ref.extractor != extractor.name:
            raise ValueError(f"the reference statistics were computed with the {ref.extractor!r} extractor, "
                             f"not {extractor.name!r}: their FID would be meaningless")

    fake = accumulate_features(samples, extractor, keep_features=keep_features, keep_probs=keep_probs,
                               total=samples.n, progress=progress, desc="samples")
    tag = extractor.name
    result: dict[str, Any] = {"extractor": tag, "n": fake.n}
    real = None
    if needs_ref and isinstance(ref, ImageSource):
        real = accumulate_features(ref, extractor, keep_features=keep_features,
                                   keep_probs="mode_score" in wanted, total=ref.n, progress=progress, desc="reference")
        result.update(n_ref=real.n, ref=ref.name)
    elif isinstance(ref, ReferenceStatistics) and needs_ref:
        result.update(n_ref=ref.n, ref=ref.name)

    for name in wanted:
        if name == "fid":
            if isinstance(ref, ReferenceStatistics):
                mu_r, sigma_r = ref.mu, ref.sigma
            else:
                mu_r, sigma_r = real.moments.mean, real.moments.covariance
            result[f"fid@{tag}"] = frechet_distance(fake.moments.mean, fake.moments.covariance, mu_r, sigma_r,
                                                    method=fid_method)
        elif name == "kid":
            mean, std = kid(fake.features, real.features, kid_subsets, kid_subset_size, seed)
            result[f"kid@{tag}"], result[f"kid_std@{tag}"] = mean, std
        elif name == "is":
            result[f"is@{tag}"], result[f"is_std@{tag}"] = inception_score(fake.probs, min(is_splits, fake.n))
        elif name == "mode_score":
            mean, std = mode_score(fake.probs, real.probs, min(is_splits, fake.n))
            result[f"mode_score@{tag}"], result[f"mode_score_std@{tag}"] = mean, std
        elif name == "mmd":
            # the kernel matrices are O(N^2): a seeded subset of at most mmd_max per side
            gen = torch.Generator().manual_seed(seed)
            fx = fake.features[torch.randperm(fake.n, generator=gen)[:mmd_max]]
            rx = real.features[torch.randperm(real.n, generator=gen)[:mmd_max]]
            result[f"mmd@{tag}"] = mmd_rbf(fx, rx, mmd_bandwidth)
            result["mmd_n"] = min(fx.shape[0], rx.shape[0])
        elif name == "swd":
            result[f"swd@{tag}"] = sliced_wasserstein(fake.features, real.features, swd_projections, seed)
        elif name == "pr":
            result[f"precision@{tag}"], result[f"recall@{tag}"] = precision_recall(real.features, fake.features, pr_k)
    return result


def reference_statistics(ref: ImageSource, extractor: FeatureExtractor, progress: bool = True) -> ReferenceStatistics:
    """Streaming FID statistics of a reference set (save them with :func:`save_reference_statistics`)."""
    stream = accumulate_features(ref, extractor, total=ref.n, progress=progress, desc="reference")
    return ReferenceStatistics(stream.moments.mean, stream.moments.covariance, stream.n, extractor.name, ref.name)

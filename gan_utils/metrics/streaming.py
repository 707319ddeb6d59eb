"""Streaming feature statistics: float64 running sums, so 50,000 samples never sit in memory.

:class:`StreamingMoments` keeps ``n``, ``sum_i (x_i - s)`` and
``sum_i (x_i - s)(x_i - s)^T`` in float64, where the shift ``s`` is the mean
of the first batch. The mean and the unbiased covariance follow from them::

    mean = s + S1 / n,     cov = (S2 - S1 S1^T / n) / (n - 1)

Shifting by a rough mean first avoids the cancellation of the textbook
``E[x x^T] - mu mu^T`` when features have a large mean relative to their
spread; the result is the same as ``numpy.cov`` of all rows to round-off.

:func:`accumulate_features` runs an extractor over a stream of image batches
(see :mod:`gan_utils.metrics.sources`) with a ``tqdm.auto`` progress bar and
fills the moments (for FID), and optionally keeps the features (KID, MMD,
precision/recall and sliced Wasserstein need the samples themselves: ``N x D``
float32, 400 MB for 50,000 Inception features) and the class probabilities
(IS, Mode Score: ``N x K``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gan_utils.metrics.extractors import FeatureExtractor

__all__ = ["FeatureStream", "StreamingMoments", "accumulate_features"]


class StreamingMoments:
    """Running mean and covariance of feature vectors, in float64.

    >>> m = StreamingMoments()
    >>> for batch in torch.randn(10, 100, 4).unbind(0):
    ...     m.update(batch)
    >>> m.n, m.mean.shape, m.covariance.shape
    (1000, (4,), (4, 4))
    """

    def __init__(self) -> None:
        self.n = 0
        self._shift: Tensor | None = None
        self._sum: Tensor | None = None
        self._outer: Tensor | None = None

    @property
    def dim(self) -> int | None:
        """Feature dimension ``D`` (None before the first update)."""
        return None if self._shift is None else int(self._shift.shape[0])

    def update(self, features: Tensor) -> None:
        """Add a batch ``(B, D)`` of features (any float dtype, any device)."""
        if not isinstance(features, Tensor) or features.dim() != 2:
            shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
            raise ValueError(f"features must be a tensor of shape (B, D), got {shape}")
        if features.shape[0] == 0:
            return
        x = features.detach().to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("features contain NaN or inf")
        if self._shift is None:
            self._shift = x.mean(0)
            self._sum = torch.zeros_like(self._shift)
            self._outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
        elif x.shape[1] != self._shift.shape[0]:
            raise ValueError(f"features have dimension {x.shape[1]}, but earlier batches had {self._shift.shape[0]}")
        xc = x.to(self._shift.device) - self._shift
        self._sum += xc.sum(0)
        self._outer.addmm_(xc.T, xc)
        self.n += x.shape[0]

    @property
    def mean(self) -> np.ndarray:
        """Mean ``(D,)`` float64."""
        if self.n == 0:
            raise ValueError("no features were added")
        return (self._shift + self._sum / self.n).cpu().numpy()

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased covariance ``(D, D)`` float64 (needs ``n >= 2``)."""
        if self.n < 2:
            raise ValueError(f"need at least 2 feature vectors to estimate a covariance, got {self.n}")
        s1 = self._sum
        cov = (self._outer - torch.outer(s1, s1) / self.n) / (self.n - 1)
        return (0.5 * (cov + cov.T)).cpu().numpy()


@dataclass
class FeatureStream:
    """What :func:`accumulate_features` collected from one image stream.

    Attributes:
        moments: running mean / covariance of the features.
        features: all features ``(N, D)`` float32 when kept, else None.
        probs: all class probabilities ``(N, K)`` float64 when kept, else None.
        n: number of images seen.
    """

    moments: StreamingMoments
    features: Tensor | None
    probs: Tensor | None
    n: int


def accumulate_features(
    batches: Iterable[Tensor],
    extractor: FeatureExtractor,
    *,
    keep_features: bool = False,
    keep_probs: bool = False,
    total: int | None = None,
    progress: bool = True,
    desc: str = "features",
) -> FeatureStream:
    """Run ``extractor`` over image batches (each ``(B, C, H, W)`` in [0, 1]) and collect statistics.

    Args:
        batches: an iterable of image batches, e.g. from :mod:`gan_utils.metrics.sources`.
        extractor: the feature network (its ``name`` tags the results).
        keep_features: also keep every feature vector (for sample-based metrics).
        keep_probs: also keep the class probabilities (IS, Mode Score).
        total: number of images expected (for the progress bar).
        progress: show a ``tqdm.auto`` bar on stderr.
        desc: the bar's label.
    """
    from tqdm.auto import tqdm

    moments = StreamingMoments()
    feats: list[Tensor] = []
    probs: list[Tensor] = []
    n = 0
    with tqdm(total=total, desc=f"{desc} ({extractor.name})", unit="img", disable=not progress, leave=False) as bar:
        for batch in batches:
            f, p = extractor.features_and_probs(batch, to_cpu=False)
            moments.update(f)  # on the extractor's device
            if keep_features:
                feats.append(f.cpu())
            if keep_probs:
                probs.append(p.cpu())
            n += f.shape[0]
            bar.update(f.shape[0])
    return FeatureStream(
        moments=moments,
        features=torch.cat(feats) if keep_features and feats else None,
        probs=torch.cat(probs) if keep_probs and probs else None,
        n=n,
    )

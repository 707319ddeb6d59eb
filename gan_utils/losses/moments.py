"""Latent moment matching: push an auto-encoder's codes towards a standard normal.

A plain auto-encoder's latent space has no known distribution, so its decoder
cannot be sampled. Adding, per latent axis ``j``, the penalties

    (mean_j)^2  +  (var_j - 1)^2  +  (kurt_j - 3)^2

(the first, second and fourth moments of ``N(0, 1)``; kurtosis 3 is the
non-excess value) lets ``decoder(torch.randn(n, d))`` produce plausible images.
Moments are batch statistics, so use batches of at least a few dozen codes.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from gan_utils.losses._checks import check_tensor

__all__ = ["MomentLoss", "latent_moments", "latent_moment_loss"]


class MomentLoss(NamedTuple):
    """``total = w_mean * mean + w_var * var + w_kurt * kurtosis`` (all scalars).

    Each part is averaged over the latent axes.
    """

    total: Tensor
    mean: Tensor
    var: Tensor
    kurtosis: Tensor


def latent_moments(z: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """Per-axis batch mean, variance and kurtosis of ``z`` ``(N, d)``, each ``(d,)``.

    The variance is the biased (population) one, ``mean((z - m)^2)``; the
    kurtosis is ``mean((z - m)^4) / (var^2 + eps)`` (3 for a normal distribution,
    1 for symmetric +-1 values, ``eps`` keeps a collapsed axis finite).
    """
    check_tensor("z", z)
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"z must have shape (N, d) with N >= 2, got {tuple(z.shape)}")
    m = z.mean(dim=0)
    c = z - m
    var = (c**2).mean(dim=0)
    kurt = (c**4).mean(dim=0) / (var**2 + eps)
    return m, var, kurt


def latent_moment_loss(
    z: Tensor, weights: tuple[float, float, float] = (1.0, 1.0, 1.0), eps: float = 1e-8
) -> MomentLoss:
    """Moment-matching loss towards ``N(0, I)`` for a batch of codes ``z`` ``(N, d)``.

    Returns :class:`MomentLoss` with ``mean = avg_j m_j^2``,
    ``var = avg_j (v_j - 1)^2``, ``kurtosis = avg_j (k_j - 3)^2`` and their
    weighted sum ``total``. Add ``total`` (times a weight) to the reconstruction
    loss.
    """
    if len(weights) != 3:
        raise ValueError(f"weights must be (w_mean, w_var, w_kurtosis), got {weights!r}")
    m, var, kurt = latent_moments(z, eps=eps)
    mean_term = (m**2).mean()
    var_term = ((var - 1.0) ** 2).mean()
    kurt_term = ((kurt - 3.0) ** 2).mean()
    w_m, w_v, w_k = (float(w) for w in weights)
    total = w_m * mean_term + w_v * var_term + w_k * kurt_term
    return MomentLoss(total=total, mean=mean_term, var=var_term, kurtosis=kurt_term)

"""Variational auto-encoder terms: log densities, KL, reconstruction NLLs, ELBO, flows.

Conventions: all log densities are in nats. Per-sample quantities are summed over
the non-batch dims (latent dims for KL, pixels for NLL) and, with the default
``reduction="mean"``, averaged over the batch, so the numbers match the usual
"nats per image" of VAE papers. ``reduction="none"`` returns ``(N,)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_utils.losses._checks import check_same_shape, check_tensor, per_sample_sum, reduce

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS: tuple[str, ...] = ("bernoulli", "gaussian")

__all__ = [
    "LIKELIHOODS",
    "ELBOTerms",
    "FlowELBOTerms",
    "log_normal_diag",
    "log_standard_normal",
    "gaussian_kl",
    "bernoulli_nll",
    "gaussian_nll",
    "reconstruction_nll",
    "elbo",
    "flow_elbo",
]


def log_normal_diag(x: Tensor, mean: Tensor, logvar: Tensor, dim: int | None = -1) -> Tensor:
    """``log N(x; mean, diag(exp(logvar)))``, summed over ``dim`` (``None``: elementwise).

    Broadcasts ``x``, ``mean`` and ``logvar`` against each other (e.g. ``x`` of shape
    ``(k, N, d)`` with ``mean`` ``(N, d)``).
    """
    check_tensor("x", x)
    out = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))
    return out if dim is None else out.sum(dim=dim)


def log_standard_normal(x: Tensor, dim: int | None = -1) -> Tensor:
    """``log N(x; 0, I)``, summed over ``dim`` (``None``: elementwise)."""
    check_tensor("x", x)
    out = -0.5 * (LOG_2PI + x**2)
    return out if dim is None else out.sum(dim=dim)


def gaussian_kl(mu: Tensor, logvar: Tensor, reduction: str = "mean") -> Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` in closed form.

    ``0.5 * sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)`` over the latent dims.

    Args:
        mu, logvar: ``(N, d)`` encoder outputs (``logvar`` = log variance, not log std).
        reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` -> ``(N,)``.
    """
    check_tensor("mu", mu, min_dim=1)
    check_tensor("logvar", logvar, min_dim=1)
    check_same_shape("mu", mu, "logvar", logvar)
    kl = 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar)
    return reduce(per_sample_sum(kl), reduction)


def _check_unit_targets(x: Tensor) -> None:
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"Bernoulli targets must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "images in [-1, 1] (value_range='tanh') need (x + 1) / 2 first"
        )


def bernoulli_nll(
    logits: Tensor, x: Tensor, reduction: str = "mean", from_probs: bool = False
) -> Tensor:
    """Bernoulli negative log-likelihood ``-log p(x | z)``, summed over pixels.

    Args:
        logits: ``(N, ...)`` decoder logits (default), or probabilities in ``[0, 1]``
            when ``from_probs=True`` (for decoders that end in a sigmoid).
        x: ``(N, ...)`` targets in ``[0, 1]`` (binary or grey levels), same shape.
        reduction: ``"mean"`` over the batch, ``"sum"`` or ``"none"`` -> ``(N,)``.
        from_probs: treat ``logits`` as probabilities. Less stable: log terms are
            clamped at ``-100`` (``F.binary_cross_entropy``), so prefer logits.
    """
    check_tensor("logits", logits, min_dim=1)
    check_tensor("x", x, min_dim=1)
    check_same_shape("logits" if not from_probs else "probs", logits, "x", x)
    _check_unit_targets(x)
    if from_probs:
        lo, hi = float(logits.min()), float(logits.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"from_probs=True expects probabilities in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                "pass logits with from_probs=False instead"
            )
        nll = F.binary_cross_entropy(logits, x, reduction="none")
    else:
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return reduce(per_sample_sum(nll), reduction)


def gaussian_nll(
    mean: Tensor,
    x: Tensor,
    logvar: Tensor | float | None = None,
    sigma: Tensor | float | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Gaussian negative log-likelihood ``-log N(x; mean, sigma^2)``, summed over pixels.

    Give the decoder's spread as ``logvar`` (log variance) *or* ``sigma`` (standard
    deviation), as a float or a tensor broadcastable to ``x``; neither means
    ``sigma = 1``. The constant ``0.5 log(2 pi)`` per pixel is included, so the value
    is a true NLL (needed for bits per dim); with fixed ``sigma`` it is
    ``sum (x - mean)^2 / (2 sigma^2)`` plus a constant.
    """
    check_tensor("mean", mean, min_dim=1)
    check_tensor("x", x, min_dim=1)
    check_same_shape("mean", mean, "x", x)
    if logvar is not None and sigma is not None:
        raise ValueError("give either logvar or sigma, not both")
    if sigma is not None:
        sigma_t = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if bool((sigma_t <= 0).any()):
            raise ValueError("sigma must be positive")
        logvar_t = 2.0 * torch.log(sigma_t)
    elif logvar is not None:
        logvar_t = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    else:
        logvar_t = torch.zeros((), dtype=x.dtype, device=x.device)
    nll = -log_normal_diag(x, mean, logvar_t, dim=None)
    return reduce(per_sample_sum(nll), reduction)


def reconstruction_nll(
    recon: Tensor,
    x: Tensor,
    likelihood: str = "bernoulli",
    reduction: str = "mean",
    from_probs: bool = False,
    sigma: Tensor | float = 1.0,
) -> Tensor:
    """Dispatch to :func:`bernoulli_nll` (``recon`` = logits or probs) or
    :func:`gaussian_nll` (``recon`` = means, fixed ``sigma``)."""
    if likelihood == "bernoulli":
        return bernoulli_nll(recon, x, reduction=reduction, from_probs=from_probs)
    if likelihood == "gaussian":
        return gaussian_nll(recon, x, sigma=sigma, reduction=reduction)
    raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {', '.join(LIKELIHOODS)}")


class ELBOTerms(NamedTuple):
    """Batch-mean ELBO terms (scalars); minimise :attr:`loss`.

    ``elbo = -(recon + kl)`` is the evidence lower bound (nats per sample);
    ``loss = recon + beta * kl`` is the beta-VAE training objective (equal to
    ``-elbo`` when ``beta == 1``).
    """

    elbo: Tensor
    recon: Tensor
    kl: Tensor
    beta: float = 1.0

    @property
    def loss(self) -> Tensor:
        return self.recon + self.beta * self.kl

    def as_dict(self) -> dict[str, float]:
        """Plain floats for logging."""
        return {
            "elbo": float(self.elbo),
            "recon": float(self.recon),
            "kl": float(self.kl),
            "loss": float(self.loss),
        }


def elbo(
    recon: Tensor,
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    from_probs: bool = False,
    sigma: Tensor | float = 1.0,
) -> ELBOTerms:
    """Single-sample ELBO with the analytic Gaussian KL.

    Args:
        recon: ``(N, ...)`` decoder output for ``z = mu + exp(logvar / 2) * eps``:
            logits (Bernoulli; probabilities if ``from_probs``) or means (Gaussian).
        x: ``(N, ...)`` data, in ``[0, 1]`` for the Bernoulli likelihood.
        mu, logvar: ``(N, d)`` encoder outputs.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (fixed ``sigma``).
        beta: KL weight in :attr:`ELBOTerms.loss` (the ``elbo`` field ignores it).

    Returns:
        :class:`ELBOTerms` with batch means ``elbo``, ``recon`` (NLL) and ``kl``.
    """
    rec = reconstruction_nll(recon, x, likelihood, from_probs=from_probs, sigma=sigma)
    kl = gaussian_kl(mu, logvar)
    return ELBOTerms(elbo=-(rec + kl), recon=rec, kl=kl, beta=float(beta))


class FlowELBOTerms(NamedTuple):
    """Batch-mean terms of a single-sample ELBO with a flow posterior; minimise ``-elbo``.

    ``kl`` is the Monte-Carlo estimate ``log q(z_K | x) - log p(z_K)`` (it can be
    negative for a single sample, unlike the analytic KL).
    """

    elbo: Tensor
    recon: Tensor
    kl: Tensor
    log_q: Tensor
    log_p: Tensor


def flow_elbo(
    log_px_given_zk: Tensor,
    z0: Tensor,
    zk: Tensor,
    mu: Tensor,
    logvar: Tensor,
    sum_log_det: Tensor,
) -> FlowELBOTerms:
    """ELBO terms for a normalizing-flow posterior ``z_K = f_K o ... o f_1(z_0)``.

    ``z_0 ~ q_0 = N(mu, diag exp(logvar))`` and by the change of variables
    ``log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det d f_k / d z_{k-1}|``.
    The single-sample ELBO is ``log p(x | z_K) + log p(z_K) - log q_K(z_K | x)``
    with the standard-normal prior ``p``.

    Args:
        log_px_given_zk: ``(N,)`` decoder log-likelihood at ``z_K`` (e.g.
            ``-bernoulli_nll(decoder(zk), x, reduction="none")``).
        z0: ``(N, d)`` base sample (reparameterised from ``mu``, ``logvar``).
        zk: ``(N, d)`` sample after the flow.
        mu, logvar: ``(N, d)`` base posterior parameters.
        sum_log_det: ``(N,)`` sum over flow steps of ``log |det J_k|``.
    """
    for name, t in (("z0", z0), ("zk", zk), ("mu", mu), ("logvar", logvar)):
        check_tensor(name, t)
        if t.dim() != 2:
            raise ValueError(f"{name} must have shape (N, d), got {tuple(t.shape)}")
        check_same_shape("z0", z0, name, t)
    n = z0.shape[0]
    for name, t in (("log_px_given_zk", log_px_given_zk), ("sum_log_det", sum_log_det)):
        check_tensor(name, t, min_dim=1)
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    log_q = log_normal_diag(z0, mu, logvar) - sum_log_det
    log_p = log_standard_normal(zk)
    kl = log_q - log_p
    per_sample = log_px_given_zk - kl
    return FlowELBOTerms(
        elbo=per_sample.mean(),
        recon=-log_px_given_zk.mean(),
        kl=kl.mean(),
        log_q=log_q.mean(),
        log_p=log_p.mean(),
    )

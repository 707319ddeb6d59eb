"""Importance-weighted bounds (IWAE), importance-sampled log-likelihood and bits per dim.

IWAE (Burda et al., 2016): with ``z_1..z_k ~ q(z | x)`` and log weights
``log w_j = log p(x | z_j) + log p(z_j) - log q(z_j | x)``,

    L_k(x) = log (1/k) sum_j w_j = logsumexp_j(log w_j) - log k.

``L_1`` is the single-sample ELBO, ``E[L_k] <= E[L_{k+1}] <= log p(x)``, and for
large ``k`` (2000 in the CelebA handout) ``L_k`` is the importance-sampling
estimate of ``log p(x)`` used for bits per dim.

Bits per dim for 8-bit images. The standard preprocessing adds ``u ~ U[0, 1)``
to each integer pixel ``x in {0..255}`` and divides by 256, so a model sees
``y = (x + u) / 256 in [0, 1)^D`` and gives a continuous density ``p(y)``. The
density of ``x + u`` on ``[0, 256)^D`` is ``p(y) / 256^D``, and (Theis et al.,
2016, sec. 2.4) it lower-bounds the discrete likelihood of ``x``. So

    nll_discrete <= -log p(y) + D log 256           (nats per image)
    bpd = (-log p(y) + D log 256) / (D ln 2) = -log p(y) / (D ln 2) + 8.

A uniform density on ``[0, 1]^D`` has ``-log p(y) = 0`` and gives exactly 8 bits
per dim, the cost of storing raw bytes. If the data were scaled to an interval
of width ``w`` (``w = 2`` for ``[-1, 1]``), the offset becomes
``D log(256 / w)``: use ``data_width``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from gan_utils.losses._checks import check_same_shape, check_tensor
from gan_utils.losses.vae import log_normal_diag, log_standard_normal, reconstruction_nll

__all__ = [
    "log_mean_exp",
    "iwae_bound",
    "iwae_log_weights",
    "iwae_from_samples",
    "dequantization_offset",
    "bits_per_dim",
    "uniform_dequantize",
]


def log_mean_exp(x: Tensor, dim: int = 0) -> Tensor:
    """``log(mean(exp(x)))`` along ``dim``, computed stably with ``logsumexp``."""
    check_tensor("x", x, min_dim=1)
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def iwae_bound(log_p_x_given_z: Tensor, log_p_z: Tensor, log_q_z_given_x: Tensor) -> Tensor:
    """Importance-weighted bound ``L_k`` from per-sample log densities.

    Args:
        log_p_x_given_z, log_p_z, log_q_z_given_x: ``(k, N)`` tensors, one row per
            importance sample ``z_j ~ q(z | x)`` and one column per data point.

    Returns:
        ``(N,)``: ``logsumexp_j(log p(x|z_j) + log p(z_j) - log q(z_j|x)) - log k``.
        With ``k = 1`` this is the single-sample ELBO; average over the batch
        yourself (``.mean()``) for a training loss ``-L_k``.
    """
    for name, t in (("log_p_z", log_p_z), ("log_q_z_given_x", log_q_z_given_x)):
        check_tensor(name, t)
        check_same_shape("log_p_x_given_z", log_p_x_given_z, name, t)
    check_tensor("log_p_x_given_z", log_p_x_given_z)
    if log_p_x_given_z.dim() != 2:
        raise ValueError(
            "expected (k, N) log densities (k importance samples of N data points), got "
            f"shape {tuple(log_p_x_given_z.shape)}"
        )
    return log_mean_exp(log_p_x_given_z + log_p_z - log_q_z_given_x, dim=0)


def iwae_log_weights(
    decode: Callable[[Tensor], Tensor],
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    k: int,
    likelihood: str = "bernoulli",
    from_probs: bool = False,
    sigma: Tensor | float = 1.0,
    eps: Tensor | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Log importance weights ``(k, N)`` for a Gaussian encoder and a given decoder.

    Args:
        decode: maps latents ``(M, d)`` to decoder outputs ``(M, ...)`` matching one
            data point's shape: logits (Bernoulli; probabilities if ``from_probs``)
            or means (Gaussian with fixed ``sigma``).
        x: ``(N, ...)`` data (in ``[0, 1]`` for the Bernoulli likelihood).
        mu, logvar: ``(N, d)`` encoder outputs for ``x``.
        k: number of importance samples per data point.
        eps: optional ``(k, N, d)`` standard-normal noise (fixes the samples
            ``z = mu + exp(logvar / 2) * eps``); drawn with ``generator`` if omitted.
        chunk_size: decode at most this many importance samples per data point at
            once (memory bound for ``k = 2000``); the result does not depend on it.

    Returns:
        ``(k, N)`` log weights, differentiable w.r.t. ``mu``, ``logvar`` and the
        decoder (reparameterisation). Wrap in ``torch.no_grad()`` for evaluation.
    """
    check_tensor("x", x, min_dim=1)
    check_tensor("mu", mu, min_dim=2)
    check_tensor("logvar", logvar, min_dim=2)
    check_same_shape("mu", mu, "logvar", logvar)
    n, d = mu.shape
    if x.shape[0] != n:
        raise ValueError(f"x has {x.shape[0]} samples but mu has {n}")
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be a positive int, got {k!r}")
    if eps is not None and tuple(eps.shape) != (k, n, d):
        raise ValueError(f"eps must have shape ({k}, {n}, {d}), got {tuple(eps.shape)}")
    step = k if chunk_size is None else max(1, int(chunk_size))
    std = torch.exp(0.5 * logvar)
    rows = []
    for start in range(0, k, step):
        kc = min(step, k - start)
        if eps is None:
            e = torch.randn((kc, n, d), generator=generator, device=mu.device, dtype=mu.dtype)
        else:
            e = eps[start : start + kc]
        z = mu + std * e  # (kc, N, d)
        log_q = log_normal_diag(z, mu, logvar)
        log_pz = log_standard_normal(z)
        recon = decode(z.reshape(kc * n, d))
        x_rep = x.unsqueeze(0).expand(kc, *x.shape).reshape(kc * n, *x.shape[1:])
        if recon.shape != x_rep.shape:
            raise ValueError(
                f"decode returned shape {tuple(recon.shape)} for {kc * n} latents; expected "
                f"{tuple(x_rep.shape)} to match the data"
            )
        log_px = -reconstruction_nll(
            recon, x_rep, likelihood, reduction="none", from_probs=from_probs, sigma=sigma
        ).view(kc, n)
        rows.append(log_px + log_pz - log_q)
    return torch.cat(rows, dim=0)


def iwae_from_samples(
    decode: Callable[[Tensor], Tensor],
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    k: int = 5,
    likelihood: str = "bernoulli",
    from_probs: bool = False,
    sigma: Tensor | float = 1.0,
    eps: Tensor | None = None,
    chunk_size: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``L_k`` per data point ``(N,)`` for a Gaussian-encoder VAE; see :func:`iwae_log_weights`.

    Training with IWAE: ``loss = -iwae_from_samples(decoder, x, mu, logvar, k=5).mean()``.
    Evaluating ``log p(x)`` (CelebA handout, ``k = 2000``): call under
    ``torch.no_grad()`` with a ``chunk_size`` that fits in memory.
    """
    log_w = iwae_log_weights(
        decode, x, mu, logvar, k, likelihood, from_probs, sigma, eps, chunk_size, generator
    )
    return log_mean_exp(log_w, dim=0)


def dequantization_offset(num_dims: int, n_bins: int = 256, data_width: float = 1.0) -> float:
    """Nats to add to a continuous NLL of rescaled data: ``num_dims * log(n_bins / data_width)``.

    For 8-bit data scaled to ``[0, 1]`` this is ``D log 256``; for ``[-1, 1]``
    (``data_width=2``) it is ``D log 128``.
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    if n_bins <= 0 or data_width <= 0:
        raise ValueError(f"n_bins and data_width must be positive, got {n_bins}, {data_width}")
    return num_dims * math.log(n_bins / data_width)


def bits_per_dim(
    nll_nats: Tensor | float,
    num_dims: int,
    n_bins: int | None = 256,
    data_width: float = 1.0,
) -> Tensor | float:
    """Convert a per-image NLL in nats to bits per dimension.

    ``bpd = (nll + D log(n_bins / data_width)) / (D ln 2)`` where ``nll = -log p(y)``
    is the continuous NLL of dequantized data ``y`` rescaled to an interval of
    width ``data_width`` (see the module docstring). Pass ``n_bins=None`` when
    ``nll_nats`` is already a discrete NLL (e.g. a Bernoulli model of binary
    pixels): then ``bpd = nll / (D ln 2)``.

    Args:
        nll_nats: per-image NLL (tensor of any shape, or a float), e.g.
            ``-iwae_from_samples(..., k=2000)``.
        num_dims: ``D = C * H * W`` (``3 * 64 * 64`` for CelebA 64x64; the handout's
            "4096" counts pixels, not colour channels).
    """
    if num_dims <= 0:
        raise ValueError(f"num_dims must be positive, got {num_dims}")
    offset = 0.0 if n_bins is None else dequantization_offset(num_dims, n_bins, data_width)
    return (nll_nats + offset) / (num_dims * math.log(2.0))


def uniform_dequantize(
    x: Tensor,
    n_bins: int = 256,
    generator: torch.Generator | None = None,
    value_range: str = "unit",
) -> Tensor:
    """``(x + u) / n_bins`` with ``u ~ U[0, 1)`` for integer-valued ``x`` in ``{0..n_bins-1}``.

    Accepts ``uint8`` or integer-valued float tensors; returns float32 (or ``x``'s
    float dtype) in ``[0, 1)`` for ``value_range="unit"`` or ``[-1, 1)`` for
    ``"tanh"`` (then use ``data_width=2`` in :func:`bits_per_dim`).
    """
    if value_range not in ("unit", "tanh"):
        raise ValueError(f"value_range must be 'unit' or 'tanh', got {value_range!r}")
    xf = x.to(x.dtype if torch.is_floating_point(x) else torch.float32)
    if xf.numel() and (float(xf.min()) < 0 or float(xf.max()) > n_bins - 1):
        raise ValueError(
            f"expected integer levels in [0, {n_bins - 1}], got values in "
            f"[{float(xf.min()):.3g}, {float(xf.max()):.3g}]; dequantize raw pixel levels"
        )
    u = torch.rand(xf.shape, generator=generator, device=xf.device, dtype=xf.dtype)
    y = (xf + u) / n_bins
    return 2.0 * y - 1.0 if value_range == "tanh" else y

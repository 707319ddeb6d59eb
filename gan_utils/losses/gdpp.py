"""GDPP: generative determinantal point process loss (Elfeki et al., ICML 2019).

A DPP scores a subset ``S`` by ``det(L_S)`` with a diversity kernel built from
features: ``L_S = Phi(S)^T Phi(S)`` where ``Phi(S)`` holds one feature column per
item. Its entries are inner products (cosine similarities after normalisation):
a batch of near-duplicates gives a kernel close to rank one (one large
eigenvalue, the others ~0, ``det ~ 0``), a diverse batch spreads the spectrum.
GDPP makes the fake batch's kernel match the real batch's:

    L_m = sum_i | lambda_real_i - lambda_fake_i |                 (magnitude)
    L_s = sum_i lambda_hat_real_i (1 - |cos(v_real_i, v_fake_i)|)  (structure)

with eigenpairs ``(lambda_i, v_i)`` in ascending order and
``lambda_hat = (lambda - min) / (max - min)`` the min-max normalised real
eigenvalues, so that the dominant directions matter most.

Choices made here (all documented in :func:`gdpp_loss`):

* Features ``(N, d)`` (e.g. the discriminator's last hidden layer) are
  L2-normalised per sample by default (``normalize=True``), so the kernel is a
  cosine-similarity matrix with unit diagonal and eigenvalues summing to ``N``.
* ``kernel="samples"`` (default) builds the ``N x N`` item kernel of DPP theory
  (``Phi Phi^T`` for row features); ``kernel="features"`` builds the ``d x d``
  kernel ``Phi^T Phi``. Both have the same non-zero eigenvalues; the feature
  kernel's eigenvectors live in feature space, so it does not depend on the
  order of the samples in the two (unpaired) batches.
* The structure term is written as ``1 - |cos|`` instead of the paper's
  ``-cos``: eigenvectors are only defined up to sign, so ``|cos|`` removes an
  arbitrary sign flip, and the constant ``sum lambda_hat`` makes the loss 0 when
  the kernels agree (it equals ``-sum lambda_hat cos + sum lambda_hat`` once
  signs are aligned). ``magnitude="squared"`` uses squared differences (as some
  implementations do) instead of absolute ones.

Add the loss to the generator's loss only. The computation runs in float64 when
the input is float32 or lower (eigenvectors are sensitive to rounding); the
returned scalars have the input's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_utils.losses._checks import check_same_shape, check_tensor

__all__ = ["GDPPLoss", "dpp_kernel", "gdpp_loss"]

KERNELS = ("samples", "features")


class GDPPLoss(NamedTuple):
    """``total = magnitude + structure`` (scalars)."""

    total: Tensor
    magnitude: Tensor
    structure: Tensor


def dpp_kernel(phi: Tensor, kernel: str = "samples", normalize: bool = True) -> Tensor:
    """Diversity kernel of a batch of features ``phi`` ``(N, ...)`` (flattened to ``(N, d)``).

    Returns ``(N, N)`` ``Phi Phi^T`` for ``kernel="samples"`` or ``(d, d)``
    ``Phi^T Phi`` for ``kernel="features"``, with rows L2-normalised first when
    ``normalize``.
    """
    check_tensor("phi", phi, min_dim=2)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    phi = phi.reshape(phi.shape[0], -1)
    if normalize:
        phi = F.normalize(phi, p=2, dim=1, eps=1e-12)
    return phi @ phi.T if kernel == "samples" else phi.T @ phi


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float16, torch.bfloat16, torch.float32) else dtype


def gdpp_loss(
    phi_fake: Tensor,
    phi_real: Tensor,
    kernel: str = "samples",
    normalize: bool = True,
    magnitude: str = "abs",
    eps: float = 1e-12,
) -> GDPPLoss:
    """GDPP loss between fake and real batch features (see the module docstring).

    Args:
        phi_fake: ``(N, d)`` (or ``(N, ...)``) features of generated samples.
        phi_real: features of real samples, same shape.
        kernel: ``"samples"`` (``N x N``, default) or ``"features"`` (``d x d``).
        normalize: L2-normalise each sample's features before building the kernel.
        magnitude: ``"abs"`` (``sum |dlambda|``, the handout's form) or ``"squared"``.
        eps: guards the min-max normalisation when all real eigenvalues are equal.

    Returns:
        :class:`GDPPLoss` ``(total, magnitude, structure)``; all ``>= 0`` and 0 when
        the two kernels coincide.

    Only the top ``min(N, d)`` eigenpairs enter the loss: a kernel larger than its
    rank (``N > d`` for ``"samples"``, ``d > N`` for ``"features"``) has zero
    eigenvalues whose eigenvectors are arbitrary. Gradients through
    ``torch.linalg.eigh`` are well defined when the kept eigenvalues are distinct,
    which holds for generic features; exactly repeated eigenvalues (e.g.
    duplicated or orthogonal constructed features) make them undefined.
    """
    check_tensor("phi_fake", phi_fake, min_dim=2)
    check_tensor("phi_real", phi_real, min_dim=2)
    check_same_shape("phi_fake", phi_fake, "phi_real", phi_real)
    if magnitude not in ("abs", "squared"):
        raise ValueError(f"magnitude must be 'abs' or 'squared', got {magnitude!r}")
    out_dtype = phi_fake.dtype
    work = _work_dtype(out_dtype)
    val_f, vec_f = torch.linalg.eigh(dpp_kernel(phi_fake.to(work), kernel, normalize))
    val_r, vec_r = torch.linalg.eigh(dpp_kernel(phi_real.to(work), kernel, normalize))
    # Weights from the whole real spectrum, then keep the top r = rank-bound pairs:
    # the other eigenvalues are zero and their eigenvectors arbitrary.
    lam_hat = (val_r - val_r.min()) / (val_r.max() - val_r.min() + eps)
    n, d = phi_real.shape[0], phi_real[0].numel()
    r = min(n, d)
    val_f, vec_f, val_r, vec_r, lam_hat = (
        val_f[-r:],
        vec_f[:, -r:],
        val_r[-r:],
        vec_r[:, -r:],
        lam_hat[-r:],
    )
    diff = val_r - val_f
    mag = diff.abs().sum() if magnitude == "abs" else (diff**2).sum()
    cos = (vec_r * vec_f).sum(dim=0)  # columns are unit eigenvectors
    structure = (lam_hat * (1.0 - cos.abs()).clamp_min(0.0)).sum()
    mag, structure = mag.to(out_dtype), structure.to(out_dtype)
    return GDPPLoss(total=mag + structure, magnitude=mag, structure=structure)

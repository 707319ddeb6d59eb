"""Frechet distance between Gaussians fitted to feature vectors.

For two Gaussians ``N(mu1, S1)`` and ``N(mu2, S2)`` the squared 2-Wasserstein
(Frechet) distance has the closed form::

    d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

FID plugs in Inception-v3 features. Inception weights cannot be fetched
offline, so for MNIST the kit uses the penultimate layer of its own small
classifier (:mod:`gan_utils.metrics.mnist_classifier`): the "Frechet LeNet
Distance". The numbers are comparable only between runs that use the *same*
feature network and the same number of samples (the estimate is biased upward
for small sample sizes).

Numerics (all in float64):

* ``scipy.linalg.sqrtm(S1 @ S2)``: the product of two PSD matrices has real,
  non-negative eigenvalues, but round-off can make the square root complex
  with tiny imaginary parts; those are dropped (an imaginary part larger than
  ``imag_tol`` means the statistics are broken and raises ``ValueError``).
* When the square root is not finite (singular covariances, e.g. fewer
  samples than feature dimensions), ``eps * I`` is added to both covariances
  and the square root is taken again (the same fix pytorch-fid applies).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg

__all__ = [
    "compute_features",
    "feature_statistics",
    "frechet_classifier_distance",
    "frechet_distance",
]

ArrayLike = np.ndarray | torch.Tensor


def _as_float64(a: ArrayLike, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().double().numpy()
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real numeric array or tensor, got {type(a).__name__}") from err


def frechet_distance(
    mu1: ArrayLike,
    sigma1: ArrayLike,
    mu2: ArrayLike,
    sigma2: ArrayLike,
    eps: float = 1e-6,
    imag_tol: float = 1e-3,
    method: str = "sqrtm",
) -> float:
    """Squared Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Args:
        mu1, mu2: means, shape ``(D,)`` (numpy arrays or tensors).
        sigma1, sigma2: covariances, shape ``(D, D)``, symmetric PSD.
        eps: diagonal offset added to both covariances when the first matrix
            square root is not finite.
        imag_tol: largest imaginary part of ``diag(sqrtm(sigma1 @ sigma2))``
            tolerated as round-off.
        method: how ``tr((sigma1 sigma2)^(1/2))`` is computed. ``"sqrtm"``
            (default): scipy's ``sqrtm`` of the product, pytorch-fid's way.
            ``"eigh"``: the square roots of the eigenvalues of the symmetric
            ``L^T sigma2 L`` (``sigma1 = L L^T``), which equal those of
            ``sigma1 sigma2`` (negative round-off clipped to 0): the same number
            for PSD inputs, real by construction, no ``eps`` needed, and many
            times faster for 2048-d Inception statistics.

    Returns:
        The distance as a Python float (``>= 0`` up to round-off). Computed in
        float64 whatever the input dtype.
    """
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    sigma1, sigma2 = _as_float64(sigma1, "sigma1"), _as_float64(sigma2, "sigma2")
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"means must be vectors of the same length (D,), got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) to match the means, got {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{name} contains NaN or inf")

    diff = mu1 - mu2
    if method == "eigh":
        return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * _trace_sqrt_product_eigh(sigma1, sigma2))
    if method != "sqrtm":
        raise ValueError(f"method must be 'sqrtm' or 'eigh', got {method!r}")
    with warnings.catch_warnings():
        # scipy warns about singular products; the finiteness check below decides what to do
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        warnings.warn(
            f"sqrtm(sigma1 @ sigma2) is not finite (singular covariances?); adding {eps:g} * I to both and retrying",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = np.eye(d) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        max_imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if max_imag > imag_tol:
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary part of {max_imag:.3g} > {imag_tol:g}: the covariances are not valid PSD matrices")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` for symmetric PSD ``S1``, ``S2`` from symmetric eigenvalues only.

    With ``S1 = L L^T`` (Cholesky; for a singular ``S1`` its PSD square root
    from ``eigh`` instead), ``S1 S2`` is similar to the symmetric PSD
    ``L^T S2 L``: the same non-negative eigenvalues, whose square roots sum to
    the trace. Computed with torch's float64 LAPACK (faster than scipy's here).
    """
    s1 = torch.from_numpy(0.5 * (sigma1 + sigma1.T))
    s2 = torch.from_numpy(0.5 * (sigma2 + sigma2.T))
    factor, info = torch.linalg.cholesky_ex(s1)
    if int(info) != 0:  # not positive definite: use the PSD square root
        w, v = torch.linalg.eigh(s1)
        factor = (v * w.clamp_min(0.0).sqrt()) @ v.T
    inner = factor.T @ s2 @ factor
    lam = torch.linalg.eigvalsh(0.5 * (inner + inner.T))
    return float(lam.clamp_min(0.0).sqrt().sum())


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` (float64) of features ``(N, D)``, ``N >= 2``."""
    f = _as_float64(features, "features")
    if f.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors to estimate a covariance, got {f.shape[0]}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or inf")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _feature_fn(feature_net: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    # A classifier that exposes ``.features(x)`` (like MnistClassifier) is used
    # through that method, so passing the classifier itself gives the
    # penultimate-layer features rather than the 10 logits.
    fn = getattr(feature_net, "features", None)
    return fn if callable(fn) else feature_net


@torch.no_grad()
def compute_features(
    images: torch.Tensor,
    feature_net: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Run ``feature_net`` over ``images`` (N, C, H, W) in batches; returns (N, D) float32 on CPU.

    Modules are put in eval mode for the call and restored afterwards. When
    ``feature_net`` has a callable ``features`` attribute, that is what runs.
    ``images`` must be in the range the network expects (the kit's MNIST
    classifier takes [-1, 1], like the generators' output).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected an image batch (N, C, H, W), got {shape}")
    module = feature_net if isinstance(feature_net, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
        if device is None:
            device = next(module.parameters()).device
    fn = _feature_fn(feature_net)
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size]
            if device is not None:
                batch = batch.to(device)
            feats = fn(batch)
            out.append(feats.reshape(feats.shape[0], -1).float().cpu())
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(out)


def frechet_classifier_distance(
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    feature_net: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module,
    batch_size: int = 500,
) -> float:
    """Frechet distance between real and generated images in ``feature_net``'s feature space.

    With the kit's MNIST classifier this is the "Frechet LeNet Distance" (FLD):
    ``frechet_classifier_distance(real, fake, load_mnist_classifier())``.
    Both image batches ``(N, 1, 28, 28)`` must use the range the network
    expects ([-1, 1] for the kit's classifier). Use a few hundred images per
    side at least; the value drops as the sample sizes grow.
    """
    mu_r, s_r = feature_statistics(compute_features(real_images, feature_net, batch_size))
    mu_f, s_f = feature_statistics(compute_features(fake_images, feature_net, batch_size))
    return frechet_distance(mu_r, s_r, mu_f, s_f)

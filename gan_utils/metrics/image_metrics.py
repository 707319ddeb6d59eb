"""Full-reference image metrics (restoration, super-resolution): PSNR and SSIM.

Thin wrappers around scikit-image's ``skimage.metrics`` (well tested and the
usual reference) that take the kit's tensors, check them, and average over a
batch:

* :func:`psnr` - peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB,
  per image then averaged (identical images give ``inf``);
* :func:`ssim` - structural similarity (Wang et al. 2004) with scikit-image's
  defaults (7x7 uniform window, ``K1 = 0.01``, ``K2 = 0.03``), channels averaged.

Images are ``(N, C, H, W)`` (or one ``(C, H, W)``) in ``[0, data_range]``.
LPIPS is :class:`gan_utils.metrics.perceptual.LPIPS` (it needs a local AlexNet
weights file).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["psnr", "ssim"]


def _pair(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, a in (("pred", pred), ("target", target)):
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().double().numpy()
        elif isinstance(a, np.ndarray):
            a = a.astype(np.float64)
        else:
            raise TypeError(f"{name} must be a tensor or array (N, C, H, W), got {type(a).__name__}")
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or inf")
        arrays.append(a)
    p, t = arrays
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    if not (isinstance(data_range, (int, float)) and data_range > 0):
        raise ValueError(f"data_range must be a positive number (1.0 for [0, 1] images), got {data_range!r}")
    tol = 1e-3 * data_range
    for name, a in (("pred", p), ("target", t)):
        if a.min() < -tol or a.max() > data_range + tol:
            raise ValueError(f"{name} must be in [0, {data_range:g}], got values in [{a.min():.3g}, {a.max():.3g}] "
                             "(convert [-1, 1] images with gan_utils.data.to_unit_range)")
    return p, t


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> float | np.ndarray:
    """PSNR in dB of each ``pred`` image against ``target``; the mean over the batch (``reduction="none"``: per image)."""
    from skimage.metrics import peak_signal_noise_ratio

    p, t = _pair(pred, target, data_range)
    with np.errstate(divide="ignore"):  # identical images: inf, as the definition says
        values = np.array([peak_signal_noise_ratio(ti, pi, data_range=data_range) for pi, ti in zip(p, t, strict=True)])
    return _reduce(values, reduction)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: str = "mean") -> float | np.ndarray:
    """SSIM of each ``pred`` image against ``target`` (1 = identical); the batch mean (``reduction="none"``: per image).

    Images must be at least 7x7 (scikit-image's window).
    """
    from skimage.metrics import structural_similarity

    p, t = _pair(pred, target, data_range)
    if min(p.shape[2:]) < 7:
        raise ValueError(f"SSIM uses a 7x7 window: images must be at least 7x7, got {p.shape[2]}x{p.shape[3]}")
    values = np.array([structural_similarity(ti, pi, data_range=data_range, channel_axis=0)
                       for pi, ti in zip(p, t, strict=True)])
    return _reduce(values, reduction)


def _reduce(values: np.ndarray, reduction: str) -> float | np.ndarray:
    if reduction == "mean":
        return float(values.mean())
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")

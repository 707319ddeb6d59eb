"""What the ``theory`` checks compare with: functional references, the seeded cases, and what each known
slip computes (so a wrong answer is told which slip it matches). The checks are in :mod:`.theory`.

Conventions (stated in the notebook): GDPP as ``gan_utils.losses.gdpp_loss`` with its defaults (row
features L2-normalised, the ``N x N`` kernel, ``|cos|``); ProGAN's 2x is nearest-neighbour and 0.5x
average pooling; AdaIN with the biased variance and ``eps`` inside the square root (as
``nn.InstanceNorm2d``); convolutions as ``F.conv2d`` defines them (cross-correlation); the Inception
Score as ``gan_utils.metrics.inception_score`` (consecutive splits, population std, as Salimans et al.'s code).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autograder.checks as checks
from autograder.checks import core
from gan_utils.losses import gdpp_loss

D64 = torch.float64


def rand(*shape: int, g: torch.Generator, scale: float = 1.0) -> Tensor:
    """Seeded float64 normal values on the grading device."""
    return (torch.randn(*shape, generator=g, dtype=D64) * scale).to(checks.grading_device())


# --- GDPP -------------------------------------------------------------------------------------------
def _structure(phi_fake: Tensor, phi_real: Tensor, signed: bool = False, raw: bool = False, rows: bool = False) -> Tensor:
    """The structure term, optionally written with one of the known slips."""
    (lf, vf), (lr, vr) = (torch.linalg.eigh(p @ p.T) for p in (F.normalize(phi_fake, dim=1), F.normalize(phi_real, dim=1)))
    weight = lr if raw else (lr - lr.min()) / (lr.max() - lr.min())
    cos = (vr * vf).sum(dim=1 if rows else 0)
    return (weight * (1 - (cos if signed else cos.abs()))).sum()


UNNORMALISED = "the features are not L2-normalised per sample"
GDPP_SLIPS: dict[str, dict[str, Callable[[Tensor, Tensor], Tensor]]] = {
    "magnitude": {UNNORMALISED: lambda f, r: gdpp_loss(f, r, normalize=False).magnitude,
                  "you square the eigenvalue differences": lambda f, r: gdpp_loss(f, r, magnitude="squared").magnitude},
    "structure": {UNNORMALISED: lambda f, r: gdpp_loss(f, r, normalize=False).structure,
                  "the cosines keep their sign (an eigenvector is defined only up to its sign: use |cos|)":
                      lambda f, r: _structure(f, r, signed=True),
                  "the weights are the raw eigenvalues, not min-max normalised": lambda f, r: _structure(f, r, raw=True),
                  "you take the rows of eigh's matrix (the eigenvectors are its columns)": lambda f, r: _structure(f, r, rows=True)},
}
GDPP_CASES = ((6, 10), (8, 32), (5, 5))  # (N, d), N <= d


# --- ProGAN fade-in ---------------------------------------------------------------------------------
def up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def ref_fade_in_generator(h: Tensor, to_rgb_old: nn.Module, to_rgb_new: nn.Module, new_block: nn.Module, alpha: float) -> Tensor:
    return (1 - alpha) * up(to_rgb_old(h)) + alpha * to_rgb_new(new_block(up(h)))


def ref_fade_in_discriminator(x: Tensor, from_rgb_old: nn.Module, from_rgb_new: nn.Module, new_block: nn.Module,
                              alpha: float) -> Tensor:
    return (1 - alpha) * from_rgb_old(F.avg_pool2d(x, 2)) + alpha * new_block(from_rgb_new(x))


def fade_cases(side: str) -> list[tuple]:
    """(input, old 1x1 conv, new 1x1 conv, new block, alpha) for alpha = 0, 0.3, 1 (float64, grading device)."""
    torch.manual_seed(7)  # inside the check's forked RNG
    g, c_old, c_new = torch.Generator().manual_seed(17), 6, 4
    if side == "generator":
        mods = (nn.Conv2d(c_old, 3, 1), nn.Conv2d(c_new, 3, 1), nn.Sequential(nn.Conv2d(c_old, c_new, 3, padding=1), nn.LeakyReLU(0.2)))
        x = rand(2, c_old, 4, 4, g=g)
    else:
        mods = (nn.Conv2d(3, c_old, 1), nn.Conv2d(3, c_new, 1),
                nn.Sequential(nn.Conv2d(c_new, c_old, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)))
        x = rand(2, 3, 8, 8, g=g)
    mods = tuple(m.to(device=checks.grading_device(), dtype=D64) for m in mods)
    return [(x, *mods, alpha) for alpha in (0.0, 0.3, 1.0)]


def fade_slips(side: str) -> dict[str, Callable[..., Tensor]]:
    ref = ref_fade_in_generator if side == "generator" else ref_fade_in_discriminator
    slips = {"alpha and 1 - alpha are swapped (alpha = 0 is the old, low-resolution path)": lambda x, *m: ref(x, *m[:-1], 1 - m[-1])}
    if side == "generator":
        slips["the old path is upsampled bilinearly (ProGAN's 2x is nearest-neighbour)"] = lambda h, old, new, block, a: (
            (1 - a) * F.interpolate(old(h), scale_factor=2, mode="bilinear") + a * new(block(up(h))))
    else:
        slips["the images are halved by max pooling (ProGAN's 0.5x is average pooling)"] = lambda x, old, new, block, a: (
            (1 - a) * old(F.max_pool2d(x, 2)) + a * block(new(x)))
    return slips


# --- AdaIN ------------------------------------------------------------------------------------------
def ref_adain(x: Tensor, scale: Tensor, bias: Tensor, eps: float = 1e-5, dims: tuple[int, ...] = (2, 3),
              unbiased: bool = False, eps_outside: bool = False) -> Tensor:
    """AdaIN; the keywords write the known slips."""
    mu, var = x.mean(dim=dims, keepdim=True), x.var(dim=dims, keepdim=True, unbiased=unbiased)
    sigma = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return scale[:, :, None, None] * (x - mu) / sigma + bias[:, :, None, None]


ADAIN_SLIPS = {
    "the variance is the unbiased one (instance normalisation divides by H*W)": lambda *a: ref_adain(*a, unbiased=True),
    "the statistics are taken over the batch too (that is batch normalisation)": lambda *a: ref_adain(*a, dims=(0, 2, 3)),
    "the statistics are taken over the channels too (that is layer normalisation)": lambda *a: ref_adain(*a, dims=(1, 2, 3)),
    "eps is added to the standard deviation instead of inside the square root": lambda *a: ref_adain(*a, eps_outside=True),
    "style_scale and style_bias are swapped": lambda x, s, b, *e: ref_adain(x, b, s, *e),
}


def adain_cases() -> list[tuple]:
    """Three seeded batches; one channel is nearly constant (std 1e-3), where the place of eps matters."""
    g = torch.Generator().manual_seed(31)
    x1 = rand(2, 3, 4, 4, g=g, scale=2.0) + 0.5
    x1[1, 2] = 3.0 + rand(4, 4, g=g, scale=1e-3)
    x2 = rand(3, 2, 5, 7, g=g) * torch.tensor([0.5, 3.0], dtype=D64, device=x1.device).view(1, 2, 1, 1)
    return [(x1, rand(2, 3, g=g), rand(2, 3, g=g)), (x2, rand(3, 2, g=g), rand(3, 2, g=g)),
            (x2, rand(3, 2, g=g), rand(3, 2, g=g), 1e-2)]


# --- convolution gradients --------------------------------------------------------------------------
CONV_CASES = ((6, 6, 3, 1, 0), (7, 9, 3, 2, 1), (8, 7, 4, 3, 2), (5, 5, 5, 1, 2), (9, 8, 2, 2, 0))  # H, W, k, stride, padding
VJP_CASES = ((2, 3, 4, 8, 8, 3, 2, 1), (1, 2, 3, 7, 10, 4, 3, 1), (2, 1, 2, 6, 6, 3, 1, 1))  # N, C_in, C_out, H, W, k, s, p


def conv_grads(grad_out: Tensor, image: Tensor, f: Tensor, stride: int, padding: int) -> tuple[Tensor, Tensor]:
    """(dL/dI, dL/df) by autograd for ``y = conv2d(I, f, stride, padding)`` with ``dL/dy = grad_out`` (2-D tensors)."""
    with torch.enable_grad():
        i, w = image.detach().clone().requires_grad_(True), f.detach().clone().requires_grad_(True)
        y = F.conv2d(i[None, None], w[None, None], stride=stride, padding=padding)[0, 0]
        # a scalar output: grad_outputs would make autograd import sympy (seconds per kernel)
        return core.autograd_grad((y * grad_out.detach()).sum(), [i, w])


def conv_cases() -> list[tuple[Tensor, Tensor, Tensor, int, int]]:
    """(grad_out, image, filter, stride, padding) for each of ``CONV_CASES``."""
    g, out = torch.Generator().manual_seed(211), []
    for h, w, k, s, p in CONV_CASES:
        image, f = rand(h, w, g=g), rand(k, k, g=g)
        out.append((rand((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1, g=g), image, f, s, p))
    return out


def ref_conv_vjp(grad_out: Tensor, weight: Tensor, input_size: tuple[int, int], stride: int, padding: int) -> Tensor:
    """J^T grad_out by autograd through ``F.conv2d``."""
    with torch.enable_grad():
        x = torch.zeros(grad_out.shape[0], weight.shape[1], *input_size, dtype=weight.dtype, device=weight.device,
                        requires_grad=True)
        y = F.conv2d(x, weight.detach(), stride=stride, padding=padding)
        return core.autograd_grad((y * grad_out.detach()).sum(), [x])[0]


# --- truncated normal and the Inception Score -------------------------------------------------------
def truncnorm_cdf(x: Tensor, t: float) -> Tensor:
    """CDF of N(0, 1) conditioned on |z| <= t."""
    lo = torch.special.ndtr(torch.tensor(-t, dtype=D64))
    return (torch.special.ndtr(x) - lo) / (1 - 2 * lo)


def truncnorm_std(t: float) -> float:
    phi, mass = math.exp(-t * t / 2) / math.sqrt(2 * math.pi), math.erf(t / math.sqrt(2))
    return math.sqrt(1 - 2 * t * phi / mass)


def ks_distance(sorted_values: Tensor, cdf: Tensor) -> float:
    """Kolmogorov-Smirnov distance between the empirical CDF of ``sorted_values`` and ``cdf`` at them."""
    m = sorted_values.numel()
    above = torch.arange(1, m + 1, dtype=D64) / m - cdf
    below = cdf - torch.arange(m, dtype=D64) / m
    return float(torch.maximum(above, below).max())


def ref_inception_score(probs: Tensor, splits: int = 10, whole_set_marginal: bool = False) -> tuple[float, float]:
    """The kit's ``gan_utils.metrics.inception_score``: exp(mean_x KL(p(y|x) || p(y))) on ``splits`` consecutive
    parts, (mean, population std) over them. ``whole_set_marginal`` writes a known slip instead: p(y) taken over
    all samples rather than within each part."""
    if not whole_set_marginal:
        # imported here: only this check needs gan_utils.metrics
        from gan_utils.metrics import inception_score

        return inception_score(probs, splits=splits)
    p_all, scores = probs.to(D64), []
    for part in torch.tensor_split(p_all, splits):
        kl = (torch.special.xlogy(part, part) - torch.special.xlogy(part, p_all.mean(dim=0, keepdim=True))).sum(dim=1)
        scores.append(kl.mean().exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def is_cases() -> list[tuple[str, Tensor, int]]:
    """Known cases (uniform -> 1, balanced one-hot -> C) and seeded softmax outputs, with 1 to 10 splits."""
    g, dev, c = torch.Generator().manual_seed(401), checks.grading_device(), 10
    peaked = torch.softmax(rand(1000, c, g=g, scale=3.0), dim=1)
    skewed = torch.softmax(rand(500, c, g=g, scale=2.0) + torch.linspace(0, 4, c, dtype=D64, device=dev), dim=1)
    one_hot = torch.eye(c, dtype=D64, device=dev).repeat(40, 1)
    return [("uniform", torch.full((200, c), 1 / c, dtype=D64, device=dev), 10), ("one-hot, balanced", one_hot, 10),
            ("softmax", peaked, 10), ("softmax", peaked, 1), ("skewed softmax", skewed, 5),
            ("float32 one-hot", one_hot.float(), 4)]

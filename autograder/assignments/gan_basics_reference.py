"""What the ``gan_basics`` checks compare with: functional references, the seeded cases, and what each
known slip computes (so a wrong answer is told which slip it matches). The checks are in :mod:`.gan_basics`.

Conventions (stated in the notebook): densities on a uniform grid of spacing ``dx``, the optimal
discriminator ``p_data / (p_data + p_g)`` and ``1/2`` where both densities vanish, the Jensen-Shannon
divergence with the factor ``1/2`` in nats; the Dirac-GAN of Mescheder et al. (2018, Sec. 2.2) with real data
at 0, generator ``delta_theta``, linear discriminator ``D(x) = psi * x`` (a logit, or a critic value for the
WGANs), and each player's update direction the negative gradient of its own loss; R1 without the ``gamma / 2``
(as ``gan_utils.losses.r1_penalty``); power iteration as in Miyato et al. (2018, Algorithm 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autograder.checks as checks
from autograder.checks import core

D64 = torch.float64
KINDS = ("minimax", "nonsaturating", "wgan", "wgan-gp", "r1")


def rand(*shape: int, g: torch.Generator, scale: float = 1.0) -> Tensor:
    """Seeded float64 normal values on the grading device."""
    return (torch.randn(*shape, generator=g, dtype=D64) * scale).to(checks.grading_device())


# --- optimal discriminator and JSD -------------------------------------------------------------
def ref_optimal_discriminator(p_data: Tensor, p_g: Tensor) -> Tensor:
    total = p_data + p_g
    return torch.where(total > 0, p_data / torch.where(total > 0, total, torch.ones_like(total)), torch.full_like(total, 0.5))


def ref_js_divergence(p_data: Tensor, p_g: Tensor, dx: float, half: bool = True) -> Tensor:
    m = (p_data + p_g) / 2
    kl = lambda p: (torch.special.xlogy(p, p) - torch.special.xlogy(p, m)).sum() * dx  # noqa: E731
    return (0.5 if half else 1.0) * (kl(p_data) + kl(p_g))


def density_cases() -> list[tuple[Tensor, Tensor, float]]:
    """(p_data, p_g, dx): overlapping Gaussians, disjoint uniforms (exact zeros), identical, a 2-D grid."""
    dev, x = checks.grading_device(), torch.linspace(-6, 6, 241, dtype=D64)
    dx = float(x[1] - x[0])
    gauss = lambda mu, s: torch.exp(-((x - mu) / s) ** 2 / 2) / (s * (2 * torch.pi) ** 0.5)  # noqa: E731
    box = lambda a, b: ((x >= a) & (x < b)).to(D64) / (b - a)  # noqa: E731
    g = torch.Generator().manual_seed(5)
    w = torch.rand(30, 40, generator=g, dtype=D64)
    w2 = torch.rand(30, 40, generator=g, dtype=D64) * (torch.rand(30, 40, generator=g, dtype=D64) > 0.3)
    cases = [(gauss(-1.0, 1.0), gauss(1.5, 0.7), dx), (box(-4, -1), box(1, 4), dx), (gauss(0.5, 1.2), gauss(0.5, 1.2), dx),
             (0.7 * gauss(-2, 0.5) + 0.3 * gauss(2, 0.5), box(-0.5, 3), dx), (w / (w.sum() * 0.01), w2 / (w2.sum() * 0.01), 0.01)]
    return [(p.to(dev), q.to(dev), d) for p, q, d in cases]


# --- the Dirac-GAN ----------------------------------------------------------------------------
def dirac_losses(theta: Tensor, psi: Tensor, kind: str, gamma: float, lam: float, slip: str = "") -> tuple[Tensor, Tensor]:
    """(L_G, L_D), each to be minimised by its own player, summed over the grid of points."""
    u = psi * theta  # D(fake); D(real) = psi * 0 = 0
    if kind in ("wgan", "wgan-gp"):
        loss_d, loss_g = u, -u
        if kind == "wgan-gp":
            loss_d = loss_d + lam * ((psi.abs() - 1) ** 2 if slip != "nosign" else (psi - 1) ** 2)
    else:
        loss_d = F.softplus(-torch.zeros_like(u)) + F.softplus(u)
        loss_g = -F.softplus(u) if kind == "minimax" or slip == "ns-as-mm" else F.softplus(-u)
        if kind == "r1":
            loss_d = loss_d + (gamma if slip == "gamma" else gamma / 2) * psi ** 2
    return loss_g.sum(), loss_d.sum()


def ref_dirac_field(theta: Tensor, psi: Tensor, kind: str, gamma: float = 1.0, lam: float = 1.0, slip: str = "") -> tuple[Tensor, Tensor]:
    """(-dL_G/dtheta, -dL_D/dpsi) by autograd (float64)."""
    with torch.enable_grad():
        t, p = (core.tensor_clone(core.tensor_detach(a)).requires_grad_(True) for a in (theta, psi))
        loss_g, loss_d = dirac_losses(t, p, kind, gamma, lam, slip)
        (d_theta,) = core.autograd_grad(loss_g, [t], retain_graph=True)
        (d_psi,) = core.autograd_grad(loss_d, [p])
    sign = -1.0 if slip != "ascent" else 1.0
    return -d_theta, sign * d_psi


DIRAC_SLIPS: dict[str, str] = {
    "ascent": "the discriminator climbs its own loss (dpsi should be -dL_D/dpsi: D descends its loss)",
    "ns-as-mm": "the generator uses the minimax loss log(1 - D(G(z))) (this kind is non-saturating, -log D(G(z)))",
    "gamma": "the R1 term is gamma * psi^2 (the penalty is gamma/2 * |grad D|^2, whose psi-derivative is gamma * psi)",
    "nosign": "the gradient penalty is written as (psi - 1)^2 (it is (|psi| - 1)^2: its derivative carries sign(psi))",
}


def dirac_points(seed: int) -> tuple[Tensor, Tensor]:
    """Seeded (theta, psi) of shape (6, 7) with |psi| >= 0.05 (the penalty (|psi| - 1)^2 has a kink at 0)."""
    g = torch.Generator().manual_seed(seed)
    theta, psi = rand(6, 7, g=g, scale=1.5), rand(6, 7, g=g, scale=1.5)
    return theta, torch.where(psi.abs() < 0.05, psi.sign() * 0.05 + (psi == 0) * 0.05, psi)


# --- penalties --------------------------------------------------------------------------------
def critics() -> list[tuple[nn.Module, tuple[int, ...]]]:
    """Two small smooth float64 critics and their per-sample input shapes: an MLP on points, one on 1x4x4 images."""
    torch.manual_seed(3)  # inside the check's forked RNG
    dev = checks.grading_device()
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Softplus(), nn.Linear(16, 1))
    img = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 1))
    return [(m.to(device=dev, dtype=D64), s) for m, s in ((mlp, (2,)), (img, (1, 4, 4)))]


def _grads(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    x = core.tensor_detach(x).requires_grad_(True)
    (g,) = core.autograd_grad(critic(x).sum(), [x], create_graph=True)
    return g.reshape(g.shape[0], -1)


def ref_r1(critic: Callable[[Tensor], Tensor], real: Tensor, slip: str = "") -> Tensor:
    g = _grads(critic, real)
    if slip == "norm":
        return g.norm(dim=1).mean()
    return g.pow(2).sum(dim=1).sum() if slip == "sum" else g.pow(2).sum(dim=1).mean()


R1_SLIPS = {"norm": "the norm is not squared (R1 is the mean of the squared gradient norms)",
            "sum": "you sum over the batch instead of averaging"}


def ref_gp(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor, slip: str = "") -> Tensor:
    e = eps.reshape(-1, *([1] * (real.dim() - 1)))
    x_hat = {"swap": e * fake + (1 - e) * real, "real": real}.get(slip, e * real + (1 - e) * fake)
    g = _grads(critic, x_hat)
    if slip == "batch":
        return (g.norm() - 1) ** 2
    norms = g.pow(2).sum(dim=1) if slip == "squared" else g.norm(dim=1)
    return ((norms - 1) ** 2).mean()


GP_SLIPS = {"swap": "eps multiplies the fakes (x_hat = eps * real + (1 - eps) * fake)",
            "real": "the penalty is taken at the real samples, not at the interpolates x_hat",
            "squared": "the squared norm is pulled to 1 ((||g||^2 - 1)^2 instead of (||g|| - 1)^2)",
            "batch": "one norm over the whole batch (the norm is per sample)"}


def penalty_batches(seed: int) -> list[tuple[nn.Module, Tensor, Tensor, Tensor]]:
    """(critic, real, fake, eps) for each critic: batches of 5 and 8, eps ~ U[0, 1] of shape (N,)."""
    g, out = torch.Generator().manual_seed(seed), []
    for (critic, shape), n in zip(critics(), (5, 8), strict=True):
        eps = torch.rand(n, generator=g, dtype=D64).to(checks.grading_device())
        out.append((critic, rand(n, *shape, g=g), rand(n, *shape, g=g, scale=2.0) + 1.0, eps))
    return out


# --- power iteration --------------------------------------------------------------------------
def ref_power_iteration(weight: Tensor, u: Tensor, n_iters: int, slip: str = "") -> tuple[Tensor, Tensor, Tensor]:
    """Miyato et al.'s power iteration from ``u``: ``n_iters`` times v <- W^T u / |.|, u <- W v / |.|;
    sigma = u^T W v. ``slip`` writes a known slip instead."""
    norm = (lambda a: a) if slip == "unnormalised" else (lambda a: a / a.norm())
    v = torch.zeros(weight.shape[1], dtype=weight.dtype, device=weight.device)
    u_old = u
    for _ in range(n_iters):
        u_old = u
        v = norm(weight.T @ u)
        u = norm(weight @ v)
    sigma = (u_old if slip == "stale" else u) @ weight @ v
    return sigma, u, v


POWER_SLIPS = {"unnormalised": "u and v are not normalised after each product (the iterates grow as sigma^k)",
               "stale": "sigma uses the u of the previous step (compute sigma = u^T W v with the new u)"}
POWER_CASES = ((6, 4, 1), (5, 5, 2), (3, 8, 5), (7, 3, 3))  # (out, in, n_iters)

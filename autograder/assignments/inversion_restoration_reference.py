"""References and seeded inputs of the ``inversion_restoration`` checks (float64, computed at grade time).

Each reference takes ``slip=`` naming a known mistake, so a check can say which one an answer matches.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_utils.data.degradations import center_box_mask, half_mask, random_pixel_mask

DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- masked_mse ------------------------------------------------------------------------------------
MSE_SLIPS = {
    "no_mask": "the error is averaged over every pixel, the missing ones too (multiply by the mask)",
    "all_pixels": "the masked error is divided by the number of all pixels, not of the kept ones "
                  "(divide by mask.expand_as(generated).sum())",
    "abs": "the absolute error is used instead of the squared error",
    "mask_generated_only": "only G(z) is masked: the target's missing pixels still count",
}


def ref_masked_mse(generated: Tensor, target: Tensor, mask: Tensor, slip: str | None = None) -> Tensor:
    m = mask.to(generated.dtype).expand_as(generated)
    diff = generated - target
    if slip == "no_mask":
        return (diff ** 2).mean()
    if slip == "mask_generated_only":
        return ((m * generated - target) ** 2).sum() / m.sum()
    err = diff.abs() if slip == "abs" else diff ** 2
    return (m * err).sum() / (m.numel() if slip == "all_pixels" else m.sum())


def mse_cases() -> list[tuple[Tensor, Tensor, Tensor]]:
    """(generated, target, mask): the three masks of gan_utils.data, a per-image mask, and RGB images."""
    g = _gen(31)
    cases = []
    for shape, mask in (((3, 1, 8, 8), center_box_mask(8, 0.5)), ((2, 1, 10, 10), random_pixel_mask(10, 0.6, seed=4)),
                        ((4, 1, 6, 6), half_mask(6, "bottom")), ((3, 3, 8, 8), center_box_mask(8, 0.25))):
        gen, tgt = torch.rand(*shape, generator=g, dtype=DT), torch.rand(*shape, generator=g, dtype=DT)
        cases.append((gen, tgt * mask.to(DT), mask.to(DT)))  # the target's missing pixels are 0, as apply_mask leaves them
    per_image = (torch.rand(3, 1, 8, 8, generator=g, dtype=DT) > 0.5).to(DT)
    cases.append((torch.rand(3, 1, 8, 8, generator=g, dtype=DT), torch.rand(3, 1, 8, 8, generator=g, dtype=DT), per_image))
    return cases


# --- invert -------------------------------------------------------------------------------------------
INVERT_SLIPS = {
    "no_zero_grad": "the gradients are never zeroed, so they accumulate over the steps (call opt.zero_grad() each step)",
    "sgd": "z is updated by plain gradient descent (SGD) instead of Adam",
}


def toy_generator(seed: int = 41, z_dim: int = 4) -> nn.Module:
    """A small seeded float64 generator z (N, z_dim) -> images (N, 1, 8, 8) in (0, 1), in eval mode."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(z_dim, 32), nn.Tanh(), nn.Linear(32, 64), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8)))
    return net.to(DT).eval()


def invert_cases() -> list[tuple[Tensor, Tensor, Tensor, int, float]]:
    """(target, mask, z_init, steps, lr): a full mask on images the generator can make, a box on noisy ones."""
    g = _gen(43)
    G = toy_generator()
    with torch.no_grad():
        made = G(torch.randn(3, 4, generator=g, dtype=DT))
    noisy = (made + 0.05 * torch.randn(made.shape, generator=g, dtype=DT)).clamp(0, 1)
    box = center_box_mask(8, 0.5).to(DT)
    return [(made, torch.ones(1, 8, 8, dtype=DT), torch.randn(3, 4, generator=g, dtype=DT), 12, 0.05),
            (noisy * box, box, torch.randn(3, 4, generator=g, dtype=DT), 9, 0.1)]


def ref_invert(G: nn.Module, target: Tensor, mask: Tensor, z_init: Tensor, steps: int, lr: float,
               slip: str | None = None) -> Tensor:
    z = z_init.detach().clone().requires_grad_(True)
    opt = torch.optim.SGD([z], lr=lr) if slip == "sgd" else torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        if slip != "no_zero_grad":
            opt.zero_grad()
        ref_masked_mse(G(z), target, mask).backward()
        opt.step()
    return z.detach()


# --- interpolate_codes ---------------------------------------------------------------------------------
def ref_interpolate(z1: Tensor, z2: Tensor, alphas: Tensor, slip: str | None = None) -> Tensor:
    a = alphas.to(z1)[:, None]
    return (1 - a) * z1 + a * z2 if slip == "swapped" else a * z1 + (1 - a) * z2


def interpolate_cases() -> list[tuple[Tensor, Tensor, Tensor]]:
    g = _gen(51)
    return [(torch.randn(10, generator=g, dtype=DT), torch.randn(10, generator=g, dtype=DT), torch.linspace(0, 1, 7, dtype=DT)),
            (torch.randn(3, generator=g, dtype=DT), torch.randn(3, generator=g, dtype=DT), torch.tensor([0.9, 0.1, 0.5], dtype=DT))]


# --- moment_loss ----------------------------------------------------------------------------------------
MOMENT_SLIPS = {
    "unbiased": "the variance is the unbiased one (divides by N - 1: torch.var's default); this notebook uses the "
                "population variance mean((z - m)^2), e.g. z.var(0, unbiased=False)",
    "sum_axes": "the terms are summed over the latent axes instead of averaged",
    "uncentred": "the fourth moment is taken around 0, not around the mean: kurtosis is mean((z - m)^4) / var^2",
    "excess": "the excess kurtosis (kurtosis - 3) is compared with 3: the target 3 is the plain kurtosis of N(0, 1)",
    "no_square": "the terms are not squared (they must be (mean)^2, (var - 1)^2, (kurt - 3)^2)",
}


def ref_moment_loss(z: Tensor, slip: str | None = None) -> Tensor:
    m = z.mean(dim=0)
    c = z - m
    var = (c ** 2).sum(0) / (z.shape[0] - 1) if slip == "unbiased" else (c ** 2).mean(dim=0)
    fourth = (z ** 4).mean(dim=0) if slip == "uncentred" else (c ** 4).mean(dim=0)
    kurt = fourth / var ** 2
    if slip == "excess":
        kurt = kurt - 3
    if slip == "no_square":
        terms = m.abs() + (var - 1).abs() + (kurt - 3).abs()
    else:
        terms = m ** 2 + (var - 1) ** 2 + (kurt - 3) ** 2
    return terms.sum() if slip == "sum_axes" else terms.mean()


def moment_cases() -> list[tuple[Tensor]]:
    """Codes (N, d): shifted and scaled normal, Laplace (heavy tails), uniform (light tails), few samples."""
    g = _gen(61)
    normal = 1.5 * torch.randn(64, 10, generator=g, dtype=DT) + 0.3
    u = torch.rand(80, 4, generator=g, dtype=DT)
    laplace = -torch.sign(u - 0.5) * torch.log1p(-2 * (u - 0.5).abs())
    uniform = 4 * torch.rand(128, 3, generator=g, dtype=DT) - 2
    return [(normal,), (laplace,), (uniform,), (0.1 * torch.randn(16, 6, generator=g, dtype=DT),)]

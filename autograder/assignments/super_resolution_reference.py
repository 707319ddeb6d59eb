"""References of the ``super_resolution`` checks: the seed's layer table, the generator loss, the G step.

Everything here is computed at grade time on the grading device from seeded inputs; the tiny models of
the step check are the kit's own :class:`~gan_utils.models.sr.SRUNetGenerator` and
:class:`~gan_utils.models.sr.PatchDiscriminator` at small widths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_utils.models.sr import PatchDiscriminator, SRUNetGenerator

Layer = tuple[str, int, int, int]  # (kind, in_channels, out_channels, kernel); kind: down / up / same


def seed_table(in_channels: int = 3, base: int = 32) -> list[Layer]:
    """The Penn seed's generator (Table of part 3) as (kind, in, out, kernel), in order.

    Encoder: Conv 4x4 s2 to base * (1, 2, 4, 8, 16); decoder: ConvT 4x4 s2 to base * (8, 4, 2, 1, 1/2), each
    followed by the concatenation of the encoder map of that resolution (the input image after the last
    one); output: a 3x3 stride-1 conv to ``in_channels``.
    """
    enc = [base * 2**i for i in range(5)]
    layers: list[Layer] = [("down", c_in, c_out, 4) for c_in, c_out in zip([in_channels, *enc[:-1]], enc, strict=True)]
    skips, c = [*enc[-2::-1], in_channels], enc[-1]
    for c_out, c_skip in zip([e // 2 for e in enc[::-1]], skips, strict=True):
        layers.append(("up", c, c_out, 4))
        c = c_out + c_skip
    layers.append(("same", c, in_channels, 3))
    return layers


def conv_layers(model: nn.Module) -> list[Layer]:
    """Every conv of ``model`` as (kind, in, out, kernel): stride 2 = down (conv) / up (transposed), stride 1 = same."""
    out: list[Layer] = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            stride = m.stride[0] if isinstance(m.stride, tuple) else m.stride
            kind = "same" if stride == 1 else ("up" if isinstance(m, nn.ConvTranspose2d) else "down")
            out.append((kind, m.in_channels, m.out_channels, m.kernel_size[0]))
    return out


def describe_layers(layers: list[Layer]) -> str:
    names = {"down": "Conv s2", "up": "ConvT s2", "same": "Conv s1"}
    return ", ".join(f"{names[k]} {i}->{o} ({s}x{s})" for k, i, o, s in layers)


# --- the generator loss -------------------------------------------------------------------------------
def ref_generator_loss(fake_logits: Tensor, fake: Tensor, real: Tensor, adv_weight: float = 1.0, *,
                       slip: str | None = None) -> Tensor:
    """``mean (fake - real)^2 + adv_weight * mean softplus(-fake_logits)`` (MSE + non-saturating, 1:1 at adv_weight=1)."""
    sq = (fake - real) ** 2
    recon = sq.sum() if slip == "sum" else sq.mean()
    if slip == "l1":
        recon = (fake - real).abs().mean()
    adv = -F.softplus(fake_logits).mean() if slip == "minimax" else F.softplus(-fake_logits).mean()
    if slip == "sign":
        adv = -adv
    if slip == "no_weight":
        adv_weight = 1.0
    return recon + adv_weight * adv


LOSS_SLIPS = {
    "the generator uses the saturating minimax loss log(1 - D(G(x))) (minimise -softplus(l), not softplus(-l))": "minimax",
    "the squared errors are summed instead of averaged (F.mse_loss averages over every pixel)": "sum",
    "the reconstruction term is the L1 error |G(x) - y| instead of the squared error": "l1",
    "the adversarial term has the wrong sign (G should make D's logits on its outputs large)": "sign",
    "adv_weight is ignored (it should multiply the adversarial term)": "no_weight",
}


def loss_cases(device: torch.device) -> list[tuple[Any, ...]]:
    """(fake_logits (N,), fake, real, adv_weight): the default weight, other weights, 0 (reconstruction only),
    and very confident discriminators (|logit| up to 200) where a naive log(sigmoid) overflows."""
    g = torch.Generator().manual_seed(31)
    cases = []
    for n, side, w, scale in ((4, 8, 1.0, 2.0), (3, 16, 0.25, 3.0), (5, 8, 0.0, 2.0), (2, 4, 1.0, 1.0), (6, 8, 2.0, 150.0)):
        logits = scale * torch.randn(n, generator=g, dtype=torch.float64)
        if scale > 100:
            logits[:3] = torch.tensor([-200.0, 120.0, -95.0], dtype=torch.float64)
        fake = torch.tanh(torch.randn(n, 3, side, side, generator=g, dtype=torch.float64))
        real = torch.rand(n, 3, side, side, generator=g, dtype=torch.float64) * 2 - 1
        cases.append((logits.float().to(device), fake.float().to(device), real.float().to(device), w))
    return cases


# --- the G step ---------------------------------------------------------------------------------------
def step_state(device: torch.device, seed: int = 5) -> dict[str, Any]:
    """A tiny U-Net (16x16, two levels) and patch discriminator, their SGD optimisers and a seeded batch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = SRUNetGenerator(in_channels=3, base=4, n_levels=2).to(device)
        D = PatchDiscriminator(in_channels=3, base=4, n_layers=2, reduce=True).to(device)
    g = torch.Generator().manual_seed(seed + 1)
    high = torch.rand(6, 3, 16, 16, generator=g).to(device) * 2 - 1
    low = F.interpolate(F.interpolate(high, size=4, mode="bilinear", antialias=True, align_corners=False),
                        size=16, mode="bilinear", align_corners=False)
    return {"G": G, "D": D, "low": low, "high": high, "adv_weight": 0.5,
            "opt_g": torch.optim.SGD(G.parameters(), lr=0.1), "opt_d": torch.optim.SGD(D.parameters(), lr=0.1)}


def ref_g_step(s: dict[str, Any], *, zero_grad: bool = True, detach: bool = False, target: str = "high",
               loss_fn: Callable[..., Tensor] = ref_generator_loss) -> float:
    """One generator update: ``loss = recon(G(low), high) + w * adv(D(G(low)))``; only G's optimiser steps."""
    fake = s["G"](s["low"])
    logits = s["D"](fake.detach() if detach else fake)
    loss = loss_fn(logits, fake, s[target], s["adv_weight"])
    if zero_grad:
        s["opt_g"].zero_grad()
    loss.backward()
    s["opt_g"].step()
    return loss.item()


G_STEP_SLIPS = {
    "an update without opt_g.zero_grad() (old gradients were added in)": {"zero_grad": False},
    "the fakes detached before D (then only the reconstruction term trains G)": {"detach": True},
    "the reconstruction compared with the degraded input instead of the ground truth": {"target": "low"},
    "the minimax generator loss": {"loss_fn": lambda *a: ref_generator_loss(*a, slip="minimax")},
}

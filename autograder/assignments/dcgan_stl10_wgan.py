"""Hidden checks of ``dcgan_stl10`` parts 4 and 5: the WGAN (clipping) and LSGAN losses, weight
clipping and the WGAN critic step; the gradient penalty and the WGAN-GP critic step. Critic steps run
with the course's own losses, clipping and penalty bound in the notebook, so a slip in one of those
costs only its own test. Re-exported by :mod:`.dcgan_stl10`, which hidden tests import.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

import autograder.checks as checks
from autograder.assignments.dcgan_stl10_reference import (
    D_KEYS,
    GP_WEIGHT,
    SEED_CLIP,
    dev,
    gp_case,
    hidden,
    linear_critic,
    reference_clip_weights,
    reference_discriminator_step,
    reference_gradient_penalty,
    reference_wgan_critic_loss,
    run_step,
    score_cases,
    tiny_state,
)
from autograder.checks import compare_close, core, fail
from gan_utils import losses as ref

__all__ = ["check_clip_weights", "check_gradient_penalty_backprop", "check_gradient_penalty_linear",
           "check_gradient_penalty_reference", "check_lsgan_losses", "check_wgan_critic_step", "check_wgan_gp_critic_step",
           "check_wgan_losses"]


# --- Part 4: WGAN (clipping) and LSGAN --------------------------------------------------------------
_SUM = "you sum over the batch instead of averaging (mean)"


@hidden("wgan_losses")
def check_wgan_losses(wgan_critic_loss, wgan_generator_loss, seed: int = 0) -> None:
    cases = score_cases(seed)
    checks.check_loss(wgan_critic_loss, ref.wgan_critic_loss, cases, rtol=1e-6, atol=1e-9, what="wgan_critic_loss", slips={
        "the sign is flipped: the critic minimises mean(f(G(z))) - mean(f(x))": lambda r, f: r.mean() - f.mean(),
        _SUM: lambda r, f: f.sum() - r.sum()})
    checks.check_loss(wgan_generator_loss, ref.wgan_generator_loss, [(f,) for _, f in cases], rtol=1e-6, atol=1e-9,
                      what="wgan_generator_loss", slips={
                          "the sign is flipped: the generator minimises -mean(f(G(z)))": lambda f: f.mean(), _SUM: lambda f: -f.sum()})


@hidden("lsgan_losses")
def check_lsgan_losses(lsgan_discriminator_loss, lsgan_generator_loss, seed: int = 0) -> None:
    cases = score_cases(seed)
    checks.check_loss(lsgan_discriminator_loss, ref.lsgan_discriminator_loss, cases, rtol=1e-6, atol=1e-9,
                      what="lsgan_discriminator_loss", slips={
                          "you add the factor 1/2 (use the handout's form without it)": lambda r, f: 0.5 * ref.lsgan_discriminator_loss(r, f),
                          "the targets are swapped (real -> 1, fake -> 0)": lambda r, f: (r ** 2).mean() + ((f - 1) ** 2).mean(),
                          "you square sigmoid(outputs) instead of the raw outputs":
                              lambda r, f: ((torch.sigmoid(r) - 1) ** 2).mean() + (torch.sigmoid(f) ** 2).mean(),
                          _SUM: lambda r, f: ((r - 1) ** 2).sum() + (f ** 2).sum()})
    checks.check_loss(lsgan_generator_loss, ref.lsgan_generator_loss, [(f,) for _, f in cases], rtol=1e-6, atol=1e-9,
                      what="lsgan_generator_loss", slips={
                          "you add the factor 1/2 (use the handout's form without it)": lambda f: 0.5 * ((f - 1) ** 2).mean(),
                          "the generator pushes D(G(z)) towards 0 instead of 1": lambda f: (f ** 2).mean(),
                          _SUM: lambda f: ((f - 1) ** 2).sum()})


@hidden("wgan_clip")
def check_clip_weights(clip_weights, clip_constant: float, seed: int = 0) -> None:
    """``WGAN_CLIP`` is the seed's 0.05; every parameter clamped in place to ``[-c, c]``; buffers untouched."""
    if not math.isclose(checks.as_number(clip_constant, "WGAN_CLIP"), SEED_CLIP):
        fail(f"the handout clips the critic's weights to [-{SEED_CLIP}, {SEED_CLIP}]; WGAN_CLIP is {clip_constant!r}")
    for clip in (0.05, 0.3):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 1)).to(dev())
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 4 * clip)
            model[1].running_var.fill_(5.0)
        tensors, before = list(model.parameters()), checks.snapshot(model)
        buffers = [b.clone() for b in model.buffers()]
        checks.call_student(clip_weights, model, clip, what=f"clip_weights(model, {clip})")
        if any(a is not b for a, b in zip(model.parameters(), tensors, strict=True)):
            fail("clip the parameters in place (p.clamp_ under torch.no_grad(), or p.data.clamp_); do not replace them")
        for (name, p), b in zip(model.named_parameters(), before, strict=True):
            if not core.equal(p.detach(), b.clamp(-clip, clip)):
                fail(f"clip_weights(model, {clip}): parameter {name!r} should equal clamp(p, -{clip}, {clip}); "
                     f"its values lie in [{p.min().item():.3g}, {p.max().item():.3g}]")
        if any(not core.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True)):
            fail("clip only the parameters: buffers such as BatchNorm running statistics must stay as they are")


# what the critic steps look up in the notebook while they are graded: the course's versions
WGAN_STEP_SWAP = {"discriminator_step": reference_discriminator_step, "wgan_critic_loss": reference_wgan_critic_loss,
                  "clip_weights": reference_clip_weights}
GP_STEP_SWAP = {"wgan_critic_loss": reference_wgan_critic_loss, "gradient_penalty": reference_gradient_penalty}


def _wgan_reference(clip: float | None, lam: float | None, clip_first: bool = False):
    """The reference critic step: WGAN loss (+ lam * GP), one update, then clipping to ``[-clip, clip]``."""
    def run(s: dict) -> float:
        if clip is not None and clip_first:  # a slip: clipping before the update
            reference_clip_weights(s["D"], clip)
        fake = s["G"](s["z"]).detach()
        loss = reference_wgan_critic_loss(s["D"](s["real"]), s["D"](fake))
        if lam is not None:
            loss = loss + lam * reference_gradient_penalty(s["D"], s["real"], fake)
        s["opt_d"].zero_grad()
        loss.backward()
        s["opt_d"].step()
        if clip is not None and not clip_first:
            reference_clip_weights(s["D"], clip)
        return loss.item()
    return run


@hidden("wgan_critic_step")
def check_wgan_critic_step(wgan_critic_step, seed: int = 0) -> None:
    """One SGD step on the WGAN critic loss, then every parameter clamped (clip given explicitly: 0.05 and 0.2)."""
    for clip in (SEED_CLIP, 0.2):
        checks.check_step(f"wgan_critic_step(..., clip={clip})", run_step(wgan_critic_step, D_KEYS, WGAN_STEP_SWAP, clip=clip),
                          _wgan_reference(clip, None), tiny_state(seed, scale=3.0), updated=["D"], frozen=["G"],
                          variants={"clipping before the optimiser step instead of after it": _wgan_reference(clip, None, clip_first=True),
                                    "a WGAN update without clipping": _wgan_reference(None, None)})


# --- Part 5: the gradient penalty and the WGAN-GP critic step ---------------------------------------
def _penalty(gp_fn, critic, real, fake, eps, expected: torch.Tensor, what: str) -> torch.Tensor:
    got = checks.call_student(gp_fn, critic, real, fake, eps=eps, what="gradient_penalty")
    if not core.is_tensor(got) or got.numel() != 1:
        fail(f"gradient_penalty should return a scalar tensor, got {core.describe(got)}")
    n, value = real.shape[0], core.tensor_detach(got).reshape(()).to(expected.dtype)
    if float(expected) > 1e-6 and math.isclose(float(value), n * float(expected), rel_tol=1e-6):
        fail(f"{what}: expected {float(expected):.6g}, got {float(value):.6g}, {n} times too large: "
             "average over the batch (mean), not sum")
    compare_close(value, core.tensor_detach(expected), 1e-6, 1e-9, what)
    return got


@hidden("gradient_penalty")
def check_gradient_penalty_linear(gradient_penalty, seed: int = 0) -> None:
    """A linear critic ``f(x) = w.x + b`` gives ``(||w|| - 1)^2`` for any interpolation; with ``eps=None``
    each interpolate lies on the segment between its real and fake sample (one eps per sample)."""
    _, real, fake, eps = gp_case(seed)
    direction = torch.randn(48, dtype=real.dtype, device=dev())
    for norm in (2.5, 0.4):
        w, seen = direction / direction.norm() * norm, []

        def critic(x, w=w, seen=seen):
            seen.append(core.tensor_detach(x))
            return x.flatten(1) @ w + 0.3

        expected = torch.tensor((norm - 1.0) ** 2, dtype=real.dtype, device=dev())
        _penalty(gradient_penalty, critic, real, fake, eps, expected, f"penalty of a linear critic with ||w|| = {norm}")
        _penalty(gradient_penalty, critic, real, fake, None, expected, f"penalty of a linear critic with ||w|| = {norm}, eps=None")
        d, r = (real - fake).flatten(1), (seen[-1] - fake).flatten(1)
        e = (r * d).sum(1, keepdim=True) / (d * d).sum(1, keepdim=True)
        if not core.allclose(r, e * d, atol=1e-8) or bool((e < -1e-9).any() | (e > 1 + 1e-9).any()):
            fail("with eps=None, each x_hat_i must lie on the segment between real_i and fake_i: draw one eps per "
                 "sample, of shape (N, 1, 1, 1), not one per pixel")


@hidden("gradient_penalty")
def check_gradient_penalty_reference(gradient_penalty, seed: int = 0) -> None:
    critic, real, fake, eps = gp_case(seed)
    _penalty(gradient_penalty, critic, real, fake, eps, reference_gradient_penalty(critic, real, fake, eps),
             "gradient penalty of a small conv critic vs the reference on the same eps")


@hidden("gradient_penalty")
def check_gradient_penalty_backprop(gradient_penalty, seed: int = 0) -> None:
    """The penalty's gradient w.r.t. the critic's parameters equals the reference's (needs ``create_graph=True``)."""
    critic, real, fake, eps = gp_case(seed)
    params = list(critic.parameters())
    expected = reference_gradient_penalty(critic, real, fake, eps)
    want = torch.autograd.grad(expected, params, allow_unused=True)  # the last bias does not change the input gradient
    got = _penalty(gradient_penalty, critic, real, fake, eps, expected, "gradient penalty of a small conv critic")
    if not got.requires_grad:
        fail("the penalty does not depend on the critic's parameters through autograd: take the input gradient "
             "with torch.autograd.grad(..., create_graph=True) so that the critic can be trained on it")
    have = torch.autograd.grad(got.reshape(()), params, allow_unused=True)
    for (name, p), a, b in zip(critic.named_parameters(), have, want, strict=True):
        zero = torch.zeros_like(p)
        compare_close(zero if a is None else a, zero if b is None else b, 1e-6, 1e-9,
                      f"gradient of the penalty w.r.t. the critic parameter {name!r}")


@hidden("wgan_gp_critic_step")
def check_wgan_gp_critic_step(wgan_gp_critic_step, seed: int = 0) -> None:
    """One SGD step on ``L_WGAN + lam * GP`` (the reference penalty swapped in; a linear critic makes it exact)."""
    for lam in (None, 2.0):
        kwargs = {} if lam is None else {"lam": lam}
        checks.check_step(f"wgan_gp_critic_step(...{', lam=2.0' if lam else ''})", run_step(wgan_gp_critic_step, D_KEYS, GP_STEP_SWAP, **kwargs),
                          _wgan_reference(None, lam or GP_WEIGHT), tiny_state(seed, critic=linear_critic, lr=0.05),
                          updated=["D"], frozen=["G"], variants={
                              f"the penalty weight {GP_WEIGHT:g} instead of lam": _wgan_reference(None, GP_WEIGHT),
                              "the WGAN critic loss without the penalty": _wgan_reference(None, None)})


core.watch_functions(sys.modules[__name__])

"""Grading checks for the ``dcgan_stl10`` assignment, Parts 4-5: WGAN (weight
clipping), LSGAN, and the WGAN-GP gradient penalty.

References: ``gan_utils.losses`` (losses, ``gradient_penalty`` with a seeded
``torch.Generator`` so the student's function can be given the very same
interpolation weights), closed forms for linear critics, and one SGD step
computed here with ``torch.autograd.grad``. Shared utilities live in
:mod:`autograder.assignments.dcgan_stl10`.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable

import torch
from torch import nn

from autograder.assignments.dcgan_stl10 import (
    SEED_CLIP,
    _as_float,
    _batch,
    _check_generator_untouched,
    _close,
    _compare_params,
    _fail,
    _fill_stale_grads,
    _params,
    _rng,
    _sgd_reference,
    _tiny_pair,
)
from autograder.checks import core
from autograder.checks.core import checked
from gan_utils import losses as ref_losses

GP_WEIGHT = 10.0  # lambda of Gulrajani et al.


def _score_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real scores (6,) and fake scores (4,): different batch sizes catch sum-for-mean and broadcasting."""
    with _rng(seed):
        return torch.randn(6, dtype=torch.float64) + 0.5, torch.randn(4, dtype=torch.float64) - 0.3


def _check_loss(got: object, expected: torch.Tensor, what: str, hints: dict[str, torch.Tensor]) -> None:
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        _fail(f"{what} should return a scalar tensor, got {type(got).__name__}"
              f"{' of shape ' + str(tuple(got.shape)) if isinstance(got, torch.Tensor) else ''}")
    if not got.requires_grad:
        _fail(f"{what} is not differentiable: compute it with torch operations on the scores (no .item(), no .detach())")
    value = got.detach().to(expected.dtype).reshape(())
    for hint, wrong in hints.items():
        if not torch.allclose(expected, wrong) and torch.allclose(value, wrong, atol=1e-8):
            _fail(f"{what}: got {value.item():.6g}, expected {expected.item():.6g}: {hint}")
    _close(value, expected.detach(), what, rtol=1e-6, atol=1e-8)


@checked
def check_wgan_losses(critic_loss_fn: Callable, generator_loss_fn: Callable, seed: int = 0) -> None:
    """``critic_loss_fn(real, fake) = mean(fake) - mean(real)``; ``generator_loss_fn(fake) = -mean(fake)``."""
    real, fake = _score_pair(seed)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    expected = ref_losses.wgan_critic_loss(real, fake)
    _check_loss(critic_loss_fn(real, fake), expected, "WGAN critic loss", {
        "the sign is flipped: the critic minimises mean(f(G(z))) - mean(f(x))": -expected,
        "average over the batch (mean), not sum": fake.sum() - real.sum(),
    })
    expected_g = ref_losses.wgan_generator_loss(fake)
    _check_loss(generator_loss_fn(fake), expected_g, "WGAN generator loss", {
        "the sign is flipped: the generator minimises -mean(f(G(z)))": -expected_g,
        "average over the batch (mean), not sum": -fake.sum(),
    })


@checked
def check_lsgan_losses(discriminator_loss_fn: Callable, generator_loss_fn: Callable, seed: int = 0) -> None:
    """``mean((D(x) - 1)^2) + mean(D(G(z))^2)`` and ``mean((D(G(z)) - 1)^2)`` on raw outputs."""
    real, fake = _score_pair(seed)
    real.requires_grad_(True)
    fake.requires_grad_(True)
    expected = ref_losses.lsgan_discriminator_loss(real, fake)
    _check_loss(discriminator_loss_fn(real, fake), expected, "LSGAN discriminator loss", {
        "use the handout's form without the factor 1/2": 0.5 * expected,
        "the targets are swapped: real -> 1, fake -> 0": ((real ** 2).mean() + ((fake - 1) ** 2).mean()),
        "apply the squares to the raw outputs, not to sigmoid(outputs)":
            ((torch.sigmoid(real) - 1) ** 2).mean() + (torch.sigmoid(fake) ** 2).mean(),
        "average each term over its batch (mean), not sum": ((real - 1) ** 2).sum() + (fake ** 2).sum(),
    })
    expected_g = ref_losses.lsgan_generator_loss(fake)
    _check_loss(generator_loss_fn(fake), expected_g, "LSGAN generator loss", {
        "use the handout's form without the factor 1/2": 0.5 * expected_g,
        "the generator pushes D(G(z)) towards 1, not 0": (fake ** 2).mean(),
        "average over the batch (mean), not sum": ((fake - 1) ** 2).sum(),
    })


# --- WGAN weight clipping ----------------------------------------------------------------------


@checked
def check_clip_constant(value: object) -> None:
    if not isinstance(value, (int, float)) or not math.isclose(float(value), SEED_CLIP):
        _fail(f"the handout clips the critic's weights to [-{SEED_CLIP}, {SEED_CLIP}]; WGAN_CLIP is {value!r}")


@checked
def check_clip_weights(clip_fn: Callable[[nn.Module, float], object], seed: int = 0) -> None:
    """Every parameter clamped in place to ``[-c, c]``; buffers (BN running stats) untouched."""
    for clip in (0.05, 0.3):
        with _rng(seed):
            model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.randn_like(p) * 4 * clip)
                model[1].running_var.fill_(5.0)
                model[1].running_mean.fill_(-3.0)
        tensors = [p for p in model.parameters()]
        before = _params(model)
        buffers = [b.clone() for b in model.buffers()]
        clip_fn(model, clip)
        params = list(model.parameters())
        if any(a is not b for a, b in zip(params, tensors, strict=True)):
            _fail("clip the parameters in place (p.data.clamp_ or p.clamp_ under torch.no_grad()); "
                  "do not replace them with new tensors")
        for (name, p), b in zip(model.named_parameters(), before, strict=True):
            if not torch.equal(p.detach(), b.clamp(-clip, clip)):
                _fail(f"with clip={clip}, parameter {name!r} should equal clamp(p, -{clip}, {clip}); "
                      f"its values now lie in [{p.min().item():.3g}, {p.max().item():.3g}]")
        if any(not torch.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True)):
            _fail("clip only the parameters: buffers such as BatchNorm running statistics must stay as they are")


@checked
def check_wgan_critic_step(step_fn: Callable, seed: int = 0, lr: float = 0.1) -> None:
    """``step_fn(G, D, opt_d, real, z[, clip])``: one WGAN critic update, then weights clipped."""
    for clip in (None, 0.2):
        G, D = _tiny_pair(seed)
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(3.0)
        real, z = _batch(seed + 1)
        ref_D = copy.deepcopy(D)
        ref_loss = ref_losses.wgan_critic_loss(ref_D(real), ref_D(G(z).detach()))
        c = SEED_CLIP if clip is None else clip
        expected = [p.clamp(-c, c) for p in _sgd_reference(ref_D, ref_loss, lr)]
        g_before = _params(G)
        opt = torch.optim.SGD(D.parameters(), lr=lr)
        _fill_stale_grads(D)
        G.zero_grad(set_to_none=True)
        out = step_fn(G, D, opt, real, z) if clip is None else step_fn(G, D, opt, real, z, clip=clip)
        got = _as_float(out, "the WGAN critic step")
        if math.isclose(got, -ref_loss.item(), rel_tol=1e-4) and not math.isclose(got, ref_loss.item(), rel_tol=1e-4):
            _fail("the WGAN critic step returned minus the critic loss: the critic minimises mean(f(G(z))) - mean(f(x))")
        if not math.isclose(got, ref_loss.item(), rel_tol=1e-4, abs_tol=1e-5):
            _fail(f"the WGAN critic step returned {got:.6g}, expected the critic loss before the update, "
                  f"{ref_loss.item():.6g}")
        _check_generator_untouched(G, g_before, "the WGAN critic step")
        label = "default clip (WGAN_CLIP)" if clip is None else f"clip={clip}"
        _compare_params(D, expected, f"WGAN critic step with {label}: expected an SGD step on the WGAN "
                        f"critic loss, then every parameter clamped to [-{c}, {c}]")


# --- WGAN-GP ------------------------------------------------------------------------------------


def _gp_inputs(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with _rng(seed):
        real = torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1
        fake = torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1
        eps = torch.rand(n, 1, 1, 1, dtype=torch.float64)
    return real, fake, eps


def _small_critic(seed: int) -> nn.Module:
    with _rng(seed):
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(),
                             nn.Linear(64, 1), nn.Flatten(0)).double()


def _penalty_value(value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        _fail(f"gradient_penalty should return a scalar tensor, got {type(value).__name__}"
              f"{' of shape ' + str(tuple(value.shape)) if isinstance(value, torch.Tensor) else ''}")
    return value.reshape(())


@checked
def check_gradient_penalty_linear(gp_fn: Callable, seed: int = 0) -> None:
    """For ``f(x) = w . x + b`` the penalty is ``(||w|| - 1)^2`` whatever the interpolation."""
    real, fake, eps = _gp_inputs(seed)
    with _rng(seed + 1):
        direction = torch.randn(48, dtype=torch.float64)
    for norm in (2.5, 0.4):
        w = direction / direction.norm() * norm

        def critic(x: torch.Tensor, w: torch.Tensor = w) -> torch.Tensor:
            return x.flatten(1) @ w + 0.3

        expected = torch.tensor((norm - 1.0) ** 2, dtype=torch.float64)
        _close(_penalty_value(gp_fn(critic, real, fake, eps=eps)).detach(), expected,
               f"gradient penalty of a linear critic with ||w|| = {norm} (closed form (||w|| - 1)^2)",
               rtol=1e-6, atol=1e-9)
        _close(_penalty_value(gp_fn(critic, real, fake)).detach(), expected,
               f"gradient penalty of a linear critic with ||w|| = {norm} and eps=None (random interpolation)",
               rtol=1e-6, atol=1e-9)


@checked
def check_gradient_penalty_reference(gp_fn: Callable, seed: int = 0) -> None:
    """Same value as ``gan_utils.losses.gradient_penalty`` given the same interpolation weights."""
    real, fake, _ = _gp_inputs(seed)
    critic = _small_critic(seed)
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=torch.Generator().manual_seed(seed), dtype=real.dtype)
    expected = ref_losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
    got = _penalty_value(gp_fn(critic, real, fake, eps=eps)).detach()
    n = real.shape[0]
    if torch.allclose(got, expected * n, rtol=1e-6):
        _fail(f"the penalty is {n} times too large: average over the batch (mean), not sum")
    _close(got, expected.detach(), "gradient penalty of a small conv critic vs gan_utils.losses.gradient_penalty "
           "on the same eps", rtol=1e-6, atol=1e-9)


@checked
def check_gradient_penalty_backprop(gp_fn: Callable, seed: int = 0) -> None:
    """The penalty is differentiable w.r.t. the critic's parameters (``create_graph=True``)."""
    real, fake, eps = _gp_inputs(seed)
    critic = _small_critic(seed)
    gen = torch.Generator().manual_seed(seed)
    ref_eps = torch.rand(real.shape[0], 1, 1, 1, generator=gen, dtype=real.dtype)
    expected = ref_losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
    # The last bias does not change the input gradient: its penalty gradient is "unused" (zero).
    expected_grads = torch.autograd.grad(expected, list(critic.parameters()), allow_unused=True)
    critic.zero_grad(set_to_none=True)
    penalty = _penalty_value(gp_fn(critic, real, fake, eps=ref_eps))
    if not penalty.requires_grad:
        _fail("the penalty does not depend on the critic's parameters through autograd: compute the input "
              "gradient with torch.autograd.grad(..., create_graph=True) so the critic can be trained on it")
    penalty.backward()
    for (name, p), g in zip(critic.named_parameters(), expected_grads, strict=True):
        if g is None:
            g = torch.zeros_like(p)
        elif p.grad is None:
            _fail(f"no gradient reached the critic parameter {name!r}; use create_graph=True")
        got = torch.zeros_like(p) if p.grad is None else p.grad
        _close(got, g, f"gradient of the penalty w.r.t. critic parameter {name!r}", rtol=1e-6, atol=1e-9)


@checked
def check_wgan_gp_critic_step(step_fn: Callable, seed: int = 0, lr: float = 0.05) -> None:
    """``step_fn(G, D, opt_d, real, z[, lam])``: WGAN critic loss + lam * GP, one clean update of D.

    A linear critic makes the penalty ``(||w|| - 1)^2`` for any interpolation, so
    the expected update is exact although the step draws its own random ``eps``.
    """
    for lam in (None, 2.0):
        G, _ = _tiny_pair(seed)
        with _rng(seed + 2):
            D = nn.Sequential(nn.Flatten(), nn.Linear(192, 1), nn.Flatten(0))
            with torch.no_grad():
                D[1].weight.mul_(20.0)  # ||w|| well above 1
        real, z = _batch(seed + 1)
        weight = GP_WEIGHT if lam is None else lam
        ref_D = copy.deepcopy(D)
        w = ref_D[1].weight
        ref_loss = ref_losses.wgan_critic_loss(ref_D(real), ref_D(G(z).detach())) + weight * (w.norm() - 1) ** 2
        expected = _sgd_reference(ref_D, ref_loss, lr)
        g_before = _params(G)
        opt = torch.optim.SGD(D.parameters(), lr=lr)
        _fill_stale_grads(D)
        G.zero_grad(set_to_none=True)
        out = step_fn(G, D, opt, real, z) if lam is None else step_fn(G, D, opt, real, z, lam=lam)
        got = _as_float(out, "the WGAN-GP critic step")
        label = f"lam={lam}" if lam is not None else f"the default weight {GP_WEIGHT:g}"
        if not math.isclose(got, ref_loss.item(), rel_tol=1e-4, abs_tol=1e-4):
            _fail(f"with {label}, the WGAN-GP critic step returned {got:.6g}, expected "
                  f"mean(f(G(z))) - mean(f(x)) + lam * penalty = {ref_loss.item():.6g} before the update")
        _check_generator_untouched(G, g_before, "the WGAN-GP critic step")
        _compare_params(D, expected, f"WGAN-GP critic step with {label} (the penalty must be part of the "
                        "loss that is back-propagated)", atol=1e-5)


# A notebook that patches these checks (or what they call) makes every check refuse to run.
core.watch_functions(sys.modules[__name__])

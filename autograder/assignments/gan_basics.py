"""Hidden checks of the ``gan_basics`` assignment (the lecture companion: optimal D and JSD, the Dirac-GAN,
R1 and the gradient penalty, spectral norm by power iteration).

Student interface: ``optimal_discriminator(p_data, p_g)`` and ``js_divergence(p_data, p_g, dx)`` on densities
sampled on a grid; ``dirac_field(theta, psi, kind, gamma=1.0, lam=1.0) -> (d_theta, d_psi)`` elementwise for
``kind`` in ``minimax``, ``nonsaturating``, ``wgan``, ``wgan-gp``, ``r1``; ``r1_penalty(critic, real)`` and
``gradient_penalty(critic, real, fake, eps)`` for a critic returning ``(N,)`` or ``(N, 1)`` scores;
``power_iteration(weight, u, n_iters) -> (sigma, u, v)``. References (:mod:`.gan_basics_reference`) are
computed at grade time in float64 on the grading device (autograd for the Dirac-GAN field and the penalties);
the harness's tables are in :mod:`.gan_basics_tables`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

import autograder.assignments.gan_basics_reference as ref
import autograder.checks as checks
from autograder.assignments.gan_basics_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core, fail
from autograder.checks.tensors import compare_close

_PEN = tuple(f"gan_utils.losses{m}.{n}" for m in ("", ".penalties")
             for n in ("gradient_penalty", "r1_penalty", "r2_penalty", "input_gradients"))
_GAN = tuple(f"gan_utils.losses{m}.{n}" for m in ("", ".gan") for n in (
    "minimax_generator_loss", "nonsaturating_generator_loss", "bce_discriminator_loss", "wgan_critic_loss",
    "wgan_generator_loss", "generator_loss", "discriminator_loss"))
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    "optimal_discriminator": (), "js_divergence": (), "dirac_field": _GAN + _PEN, "r1_penalty": _PEN,
    "gradient_penalty": _PEN, "power_iteration": ("gan_utils.models.layers.apply_spectral_norm",),
}
hidden = checks.hidden_checks(OFF_LIMITS)
Fn = Callable[..., Any]
NONFINITE_HINT = {"zeros": " Where p_data + p_g = 0 the optimal D is arbitrary; this notebook returns 1/2 there (torch.where).",
                  "xlogy": " A term with p = 0 contributes 0 log 0 = 0 (torch.special.xlogy(p, p) - torch.special.xlogy(p, m), or a mask)."}


@hidden("optimal_discriminator")
def check_optimal_discriminator(optimal_discriminator: Fn) -> None:
    """Five pairs of densities (overlapping, disjoint with exact zeros, identical, a mixture, a 2-D grid)."""
    for k, (p, q, _) in enumerate(ref.density_cases()):
        got = core.call_student(optimal_discriminator, p.clone(), q.clone(), what="optimal_discriminator")
        slips = {"p_data and p_g are swapped (D* is the probability that x is real)": ref.ref_optimal_discriminator(q, p)}
        checks.compare_naming_slips(got, ref.ref_optimal_discriminator(p, q), f"optimal_discriminator on case {k} ({core.describe(p)})",
                                    slips, NONFINITE_HINT["zeros"])


@hidden("js_divergence")
def check_js_divergence(js_divergence: Fn) -> None:
    """The same five pairs: 0 for identical densities, log 2 for disjoint ones, the rest against the formula."""
    for k, (p, q, dx) in enumerate(ref.density_cases()):
        got = core.call_student(js_divergence, p.clone(), q.clone(), dx, what="js_divergence")
        got = checks.as_number(got, f"js_divergence on case {k}")
        slips = {"the factor 1/2 is missing (KL(p||m) + KL(q||m) is twice the JSD; its maximum is log 4, not log 2)":
                 ref.ref_js_divergence(p, q, dx, half=False),
                 "the sum is not multiplied by dx (a Riemann sum approximates the integral)": ref.ref_js_divergence(p, q, 1.0)}
        checks.compare_naming_slips(got, float(ref.ref_js_divergence(p, q, dx)), f"js_divergence on case {k} (dx={dx:.3g})", slips,
                                    NONFINITE_HINT["xlogy"], rtol=1e-6, atol=1e-9)


@hidden("dirac_field")
def check_dirac_field(dirac_field: Fn) -> None:
    """Each kind on a seeded 6x7 grid of (theta, psi), with the default and with other gamma / lam."""
    for seed, kw in ((1, {}), (2, {"gamma": 0.3, "lam": 2.0})):
        theta, psi = ref.dirac_points(seed)
        for kind in ref.KINDS:
            args = f"gamma={kw['gamma']}, lam={kw['lam']}" if kw else "defaults"
            what = f"dirac_field(theta, psi, {kind!r}, {args})"
            got = core.call_student(dirac_field, theta.clone(), psi.clone(), kind, **kw, what=what)
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                fail(f"{what} should return (d_theta, d_psi), got {type(got).__name__}")
            slips = {text: ref.ref_dirac_field(theta, psi, kind, **kw, slip=name) for name, text in ref.DIRAC_SLIPS.items()}
            checks.compare_naming_slips(tuple(got), ref.ref_dirac_field(theta, psi, kind, **kw), what, slips)


def _param_grads(critic: torch.nn.Module, value: Tensor, what: str) -> list[Tensor]:
    __tracebackhide__ = True
    if not core.is_tensor(value) or not value.requires_grad:
        fail(f"{what} is not differentiable with respect to the critic's parameters: take the input gradient with "
             "torch.autograd.grad(..., create_graph=True), so that loss.backward() can train the critic on the penalty")
    grads = core.autograd_grad(value, list(critic.parameters()), allow_unused=True)
    return [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, critic.parameters(), strict=True)]


def _check_penalty(student: Fn, reference: Fn, slips: Mapping[str, str], what: str, extra: Sequence[Tensor]) -> None:
    __tracebackhide__ = True
    got = core.call_student(student, *extra, what=what)
    expected = reference(*extra)
    named = {text: reference(*extra, slip=name) for name, text in slips.items()}
    if core.is_tensor(got) and got.numel() == 1:
        got = got.reshape(())
    checks.compare_naming_slips(core.tensor_detach(got) if core.is_tensor(got) else got, core.tensor_detach(expected), what, named)
    for i, (g, e) in enumerate(zip(_param_grads(extra[0], got, what), _param_grads(extra[0], expected, what), strict=True)):
        compare_close(g, e, 1e-6, 1e-9, f"gradient of {what} w.r.t. the critic's parameter {i}")


@hidden("r1_penalty")
def check_r1_penalty(r1_penalty: Fn) -> None:
    """An MLP critic on points and a conv critic on 1x4x4 images: value, and gradient w.r.t. the critic's parameters."""
    for critic, real, _, _ in ref.penalty_batches(11):
        _check_penalty(r1_penalty, ref.ref_r1, ref.R1_SLIPS, f"r1_penalty (real {tuple(real.shape)})", (critic, real))


@hidden("gradient_penalty")
def check_gradient_penalty(gradient_penalty: Fn) -> None:
    """The same critics with given eps: value, and gradient w.r.t. the critic's parameters."""
    for critic, real, fake, eps in ref.penalty_batches(12):
        _check_penalty(gradient_penalty, ref.ref_gp, ref.GP_SLIPS, f"gradient_penalty (real {tuple(real.shape)})",
                       (critic, real, fake, eps))


@hidden("power_iteration")
def check_power_iteration(power_iteration: Fn) -> None:
    """sigma, u, v after 1-5 steps from a given u on four shapes, then sigma after 300 steps against
    torch.linalg.matrix_norm(ord=2)."""
    g = torch.Generator().manual_seed(21)
    for rows, cols, n in ref.POWER_CASES:
        weight, u = ref.rand(rows, cols, g=g), ref.rand(rows, g=g)
        u = u / u.norm()
        what = f"power_iteration(W {rows}x{cols}, u, n_iters={n})"
        got = core.call_student(power_iteration, weight.clone(), u.clone(), n, what=what)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            fail(f"{what} should return (sigma, u, v), got {type(got).__name__}")
        sigma = checks.as_number(got[0], f"{what}: sigma")
        slips = {text: ref.ref_power_iteration(weight, u, n, slip=name) for name, text in ref.POWER_SLIPS.items()}
        checks.compare_naming_slips((sigma, got[1], got[2]), ref.ref_power_iteration(weight, u, n), what, slips)
    weight = ref.rand(8, 6, g=g) + 2.0  # a rank-one shift: a clear gap between the two top singular values
    u = ref.rand(8, g=g)
    got = core.call_student(power_iteration, weight.clone(), u / u.norm(), 300, what="power_iteration(W, u, 300)")
    exact = float(torch.linalg.matrix_norm(weight, ord=2))
    compare_close(checks.as_number(got[0], "sigma"), exact, 1e-8, 1e-10,
                  "sigma after 300 power iterations against torch.linalg.matrix_norm(W, ord=2)")


core.watch_functions(sys.modules[__name__])
core.watch_functions(ref)

"""Hidden checks of the ``inversion_restoration`` assignment (HUJI seed: GAN inversion, masked restoration,
autoencoder interpolation, latent moment losses).

Student interface: ``masked_mse(generated, target, mask)`` (mean squared error over the kept pixels,
``sum(M (G - I)^2) / sum(M)`` with ``M`` expanded to the images' shape); ``invert(G, target, mask, z_init,
steps, lr) -> z`` (Adam on a copy of ``z_init``, ``G`` fixed, the loss looked up by name as ``masked_mse``);
``interpolate_codes(z1, z2, alphas) -> (K, d)`` with rows ``a z1 + (1 - a) z2``; ``moment_loss(z)``: per latent
axis ``mean^2 + (var - 1)^2 + (kurt - 3)^2`` with the population variance, averaged over the axes. References
(:mod:`.inversion_restoration_reference`) run in float64 at grade time; the harness's tables are in
:mod:`.inversion_restoration_tables`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import autograder.assignments.inversion_restoration_reference as ref
import autograder.checks as checks
from autograder.assignments.inversion_restoration_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core, fail
from autograder.checks.tensors import compare_close

_MOMENTS = tuple(f"gan_utils.losses{m}.{n}" for m in ("", ".moments") for n in ("latent_moments", "latent_moment_loss"))
_MASKED = ("gan_utils.losses.masked_reconstruction_loss", "gan_utils.losses.reconstruction.masked_reconstruction_loss",
           "gan_utils.inversion.per_image_masked_mse")
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    "masked_mse": _MASKED,
    "invert": _MASKED + ("gan_utils.inversion.invert_latents",),
    "interpolate_codes": ("gan_utils.inversion.interpolate_latents",),
    "moment_loss": _MOMENTS,
}
hidden = checks.hidden_checks(OFF_LIMITS)
Fn = Callable[..., Any]


def _slips(reference: Fn, texts: dict[str, str]) -> dict[str, Fn]:
    return {text: (lambda *a, _s=name: reference(*a, slip=_s)) for name, text in texts.items()}


@hidden("masked_mse")
def check_masked_mse(masked_mse: Fn) -> None:
    """Five cases (the three masks of gan_utils.data, a per-image mask, RGB): the value, then its gradient
    with respect to ``generated``."""
    checks.check_loss(masked_mse, ref.ref_masked_mse, ref.mse_cases(), rtol=1e-7, atol=1e-10, check_grad=False,
                      what="masked_mse", slips=_slips(ref.ref_masked_mse, ref.MSE_SLIPS))
    for k, (gen, tgt, mask) in enumerate(ref.mse_cases()):
        g_s = gen.clone().requires_grad_(True)
        g_r = gen.clone().requires_grad_(True)
        got = core.call_student(masked_mse, g_s, tgt.clone(), mask.clone(), what="masked_mse")
        if not (core.is_tensor(got) and got.requires_grad):
            fail(f"masked_mse on case {k}: the result must be differentiable in `generated` (no .item(), .detach() "
                 "or torch.no_grad()): invert() follows its gradient to z")
        (grad_s,) = core.autograd_grad(got.sum(), [g_s])
        (grad_r,) = core.autograd_grad(ref.ref_masked_mse(g_r, tgt, mask), [g_r])
        compare_close(grad_s, grad_r, 1e-7, 1e-10, f"gradient of masked_mse w.r.t. generated on case {k} "
                      "(it must be 0 at the missing pixels)")


@hidden("invert")
def check_invert(invert: Fn) -> None:
    """Two inversions of a seeded float64 toy generator (all pixels kept; a box missing) from given z_init,
    with the reference masked_mse swapped in: z after the steps against the reference's Adam run; z_init and the
    generator's parameters unchanged."""
    for k, (target, mask, z_init, steps, lr) in enumerate(ref.invert_cases()):
        G = ref.toy_generator()
        before = [p.detach().clone() for p in G.parameters()]
        z0 = z_init.clone()
        what = f"invert(G, target {tuple(target.shape)}, mask, z_init, steps={steps}, lr={lr}) (case {k})"
        with checks.swapped_in(invert, masked_mse=ref.ref_masked_mse):
            got = core.call_student(invert, G, target.clone(), mask.clone(), z0, steps, lr, what=what)
        if not core.equal(z0, z_init):
            fail(f"{what} changed z_init in place: optimise a copy (z = z_init.detach().clone().requires_grad_(True))")
        if any(not core.equal(core.tensor_detach(p), b) for p, b in zip(G.parameters(), before, strict=True)):
            fail(f"{what} changed the generator's weights: inversion optimises z only (the optimiser gets [z])")
        if not core.is_tensor(got) or tuple(got.shape) != tuple(z_init.shape):
            shape = tuple(got.shape) if core.is_tensor(got) else type(got).__name__
            fail(f"{what} should return the codes z of shape {tuple(z_init.shape)}, got {shape}")
        got = core.tensor_detach(got)
        expected = ref.ref_invert(ref.toy_generator(), target, mask, z_init, steps, lr)
        if not checks.same_values(got, expected):
            if checks.same_values(got, z_init, 1e-7, 1e-10):
                fail(f"{what}: z did not move from z_init; expected {steps} Adam steps on z")
            for name, text in ref.INVERT_SLIPS.items():
                if checks.same_values(got, ref.ref_invert(ref.toy_generator(), target, mask, z_init, steps, lr, slip=name)):
                    fail(f"{what}: it matches what you get when {text}")
        compare_close(got, expected, 1e-6, 1e-9, f"{what}: z after the steps, against {steps} steps of "
                      f"torch.optim.Adam([z], lr={lr}) on masked_mse(G(z), target, mask)")


@hidden("interpolate_codes")
def check_interpolate_codes(interpolate_codes: Fn) -> None:
    """Seven alphas from 0 to 1 on 10-d codes, and three unsorted alphas on 3-d codes."""
    for k, (z1, z2, alphas) in enumerate(ref.interpolate_cases()):
        what = f"interpolate_codes(z1, z2, alphas={[round(a, 3) for a in alphas.tolist()]})"
        got = core.call_student(interpolate_codes, z1.clone(), z2.clone(), alphas.clone(), what=what)
        if (checks.same_values(got, ref.ref_interpolate(z1, z2, alphas, slip="swapped"), 1e-7, 1e-10)
                and not checks.same_values(got, ref.ref_interpolate(z1, z2, alphas), 1e-7, 1e-10)):
            fail(f"{what}: the weights are swapped; row k is alphas[k] * z1 + (1 - alphas[k]) * z2 (alpha = 1 gives z1)")
        compare_close(got, ref.ref_interpolate(z1, z2, alphas), 1e-7, 1e-10, f"{what} (case {k}), shape (K, d)")


@hidden("moment_loss")
def check_moment_loss(moment_loss: Fn) -> None:
    """Four batches of codes (normal with mean 0.3 and std 1.5, Laplace, uniform, 16 small codes): the value and
    its gradient with respect to z."""
    checks.check_loss(moment_loss, ref.ref_moment_loss, ref.moment_cases(), rtol=1e-6, atol=1e-9, what="moment_loss",
                      slips=_slips(ref.ref_moment_loss, ref.MOMENT_SLIPS))


core.watch_functions(sys.modules[__name__])
core.watch_functions(ref)

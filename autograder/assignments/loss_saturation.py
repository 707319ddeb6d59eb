"""Hidden checks of the ``loss_saturation`` assignment (minimax vs non-saturating vs least squares).

References are computed at grade time: the five losses with ``gan_utils.losses`` (from raw logits
``(N,)``, mean over the batch), ``dloss_dlogit(kind, l)`` with autograd in float64, and
``train_iteration(kind, G, D, opt_g, opt_d, real_batches, latents)`` as the same iteration written
by the course on copies of the same tiny models. The tables at the end are graded by
``tests/test_assignments.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

import autograder.checks as checks
import gan_utils.losses as kit
from autograder.assignments.loss_saturation_tables import (  # noqa: F401 - the answer cells; the tables the harness reads
    BCE,
    DER,
    LIBRARY_COPIES,
    LSD,
    LSG,
    MM,
    NS,
    SLIPS,
    SOLUTION_FIGURES,
    TRAIN,
    VARIANTS,
)
from autograder.checks import core

KINDS = ("minimax", "nonsaturating", "lsgan")
mm_g, ns_g, ls_g = kit.minimax_generator_loss, kit.nonsaturating_generator_loss, kit.lsgan_generator_loss
bce_d, ls_d = kit.bce_discriminator_loss, kit.lsgan_discriminator_loss
G_REF = {"minimax": mm_g, "nonsaturating": ns_g, "lsgan": ls_g}
D_REF = {"minimax": bce_d, "nonsaturating": bce_d, "lsgan": ls_d}

# Any kit loss writes any other (minimax(l) = -nonsaturating(-l)) or, by autograd, the derivative.
# train_iteration is handed the losses: only its loop is graded, so the kit's losses stay allowed there.
_KIT = tuple(f"gan_utils.losses{m}.{n}" for m in ("", ".gan") for n in (
    "minimax_generator_loss", "nonsaturating_generator_loss", "lsgan_generator_loss", "bce_discriminator_loss",
    "lsgan_discriminator_loss", "generator_loss", "discriminator_loss"))
OFF_LIMITS: dict[str, tuple[str, ...]] = {**dict.fromkeys((MM, NS, LSG, BCE, LSD, DER), _KIT), TRAIN: ()}
hidden = checks.hidden_checks(OFF_LIMITS)

SUM, SIGMOID = "you sum over the batch instead of averaging", "a sigmoid is applied to values that are already logits"
HALF = "there is a factor 1/2 (this course writes the loss without it)"
RAW = "it is computed on sigmoid outputs; the least-squares loss works on the raw output"
LOSS_SLIPS: dict[str, dict[str, Callable[..., Tensor]]] = {
    "minimax_generator_loss": {
        "you wrote the non-saturating loss -log D(G(z)) (this one is log(1 - D(G(z))))": ns_g,
        "the sign is flipped (minimise log(1 - D), do not maximise it)": lambda f: -mm_g(f),
        SUM: lambda f: mm_g(f, reduction="sum"), SIGMOID: lambda f: mm_g(torch.sigmoid(f))},
    "nonsaturating_generator_loss": {
        "you wrote the saturating (minimax) loss log(1 - D(G(z)))": mm_g, "the sign is flipped": lambda f: -ns_g(f),
        "the fakes are labelled 0 (that is the discriminator's target, not the generator's)": lambda f: -mm_g(f),
        SUM: lambda f: ns_g(f, reduction="sum"), SIGMOID: lambda f: ns_g(torch.sigmoid(f))},
    "lsgan_generator_loss": {
        "the target is 0 (the generator wants D's output at 1, the 'real' target)": lambda f: ls_g(f, target=0.0),
        RAW: lambda f: ls_g(torch.sigmoid(f)), HALF: lambda f: 0.5 * ls_g(f), SUM: lambda f: ls_g(f, reduction="sum"),
        "the square is missing": lambda f: (f - 1).abs().mean()},
    "bce_discriminator_loss": {
        "the sign is flipped": lambda r, f: -bce_d(r, f), SUM: lambda r, f: bce_d(r, f, reduction="sum"),
        "the two terms are averaged instead of added": lambda r, f: 0.5 * bce_d(r, f),
        "real and fake swap roles (real images should be labelled 1, fakes 0)": lambda r, f: bce_d(f, r),
        SIGMOID: lambda r, f: bce_d(torch.sigmoid(r), torch.sigmoid(f))},
    "lsgan_discriminator_loss": {
        "the targets are swapped (real should go to 1, fakes to 0)": lambda r, f: ls_d(f, r),
        RAW: lambda r, f: ls_d(torch.sigmoid(r), torch.sigmoid(f)), HALF: lambda r, f: 0.5 * ls_d(r, f),
        SUM: lambda r, f: ls_d(r, f, reduction="sum"), "the fake target is -1 instead of 0": lambda r, f: ls_d(r, f, fake_target=-1.0)},
}


def _cases(seed: int, n_args: int = 1) -> list[tuple[Tensor, ...]]:
    """Moderate logits (|l| <~ 6): the formula is graded here, the extremes by ``check_stable``."""
    return checks.make_logit_cases(seed=seed, sizes=(1, 8, 64), scale=2.0, extremes=False, n_args=n_args)


def _loss_check(cell: str, name: str, reference: Callable[..., Tensor], seed: int, n_args: int) -> Callable[..., None]:
    @hidden(cell)
    def check(fn: Callable[..., Tensor]) -> None:
        checks.check_loss(fn, reference, _cases(seed, n_args), what=name, slips=LOSS_SLIPS[name])

    check.__name__ = check.__qualname__ = f"check_{name}"
    return check


check_minimax_generator_loss = _loss_check(MM, "minimax_generator_loss", mm_g, 40, 1)
check_nonsaturating_generator_loss = _loss_check(NS, "nonsaturating_generator_loss", ns_g, 50, 1)
check_lsgan_generator_loss = _loss_check(LSG, "lsgan_generator_loss", ls_g, 60, 1)
check_bce_discriminator_loss = _loss_check(BCE, "bce_discriminator_loss", bce_d, 70, 2)
check_lsgan_discriminator_loss = _loss_check(LSD, "lsgan_discriminator_loss", ls_d, 80, 2)
STABLE = "Use" + checks.STABLE_HINT[3:] + "."


@hidden(MM, NS, BCE)
def check_stable(minimax: Callable[..., Tensor], nonsaturating: Callable[..., Tensor], bce: Callable[..., Tensor]) -> None:
    """Finite values and gradients at |logit| up to 120, and exact there when the formula is right
    on moderate logits (a wrong formula costs its own test, not this one)."""
    big = torch.tensor([120.0, 60.0, 30.0, -5.0], device=checks.grading_device())
    for name, fn, ref, n in (("minimax_generator_loss", minimax, mm_g, 1),
                             ("nonsaturating_generator_loss", nonsaturating, ns_g, 1), ("bce_discriminator_loss", bce, bce_d, 2)):
        extreme = [(sign * big, -sign * big)[:n] for sign in (1.0, -1.0)]
        checks.check_loss_stable(fn, ref, [_cases(7, n)[1]], extreme=extreme, what=name, hint=STABLE)


def _derivative(kind: str, logits: Tensor) -> Tensor:
    """dl_i/dl_i of the kit's per-sample loss, by autograd (also under no_grad)."""
    with torch.enable_grad():
        leaf = logits.detach().clone().requires_grad_(True)
        return core.autograd_grad(G_REF[kind](leaf, reduction="sum"), [leaf])[0]


@hidden(DER)
def check_dloss_dlogit(dloss_dlogit: Callable[[str, Tensor], Tensor]) -> None:
    """Per kind, autograd's derivative at 44 logits in [-20, 20] (float64, relative 1e-5)."""
    logits = torch.cat([torch.linspace(-20, 20, 41, dtype=torch.float64),
                        torch.tensor([-7.3, 0.37, 2.5], dtype=torch.float64)]).to(checks.grading_device())
    for kind in KINDS:
        slips = {f"you differentiate the {o} loss": (lambda k, x, o=o: _derivative(o, x)) for o in KINDS if o != kind}
        slips["you return the derivative of the batch mean (no 1/N: one derivative per logit)"] = \
            lambda k, x: _derivative(k, x) / x.numel()
        slips["the sign is flipped"] = lambda k, x: -_derivative(k, x)
        if kind != "lsgan":
            slips["you differentiate with respect to p = D(G(z)), not the logit (the chain rule adds dp/dl = p (1 - p))"] = \
                lambda k, x: _derivative(k, x) / (torch.sigmoid(x) * torch.sigmoid(-x))
        checks.check_loss(dloss_dlogit, _derivative, [(kind, logits)], rtol=1e-5, atol=1e-12, check_grad=False,
                          what=f"dloss_dlogit({kind!r}, l)", slips=slips)


def reference_train_iteration(kind: str, G, D, opt_g, opt_d, real_batches, latents, *, g_loss=None,
                              zero_grad_d: bool = True, zero_grad_g: bool = True) -> dict[str, float]:
    """``len(real_batches)`` D steps on detached fakes, then one G step; the keywords make the usual slips."""
    for real, z in zip(real_batches, latents[:-1], strict=False):
        loss_d = D_REF[kind](D(real), D(G(z).detach()))
        if zero_grad_d:
            opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    logits = D(G(latents[-1]))
    loss_g = (g_loss or G_REF[kind])(logits)
    if zero_grad_g:
        opt_g.zero_grad()
    loss_g.backward()
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in G.parameters() if p.grad is not None))
    opt_g.step()
    d_fake = logits.mean() if kind == "lsgan" else torch.sigmoid(logits).mean()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_fake": d_fake.item(), "grad_norm": norm.item()}


def _state(n_critic: int = 3) -> dict[str, Any]:
    dev, g = checks.grading_device(), torch.Generator().manual_seed(12)
    torch.manual_seed(11)  # inside the check's forked RNG
    G, D = checks.TinyGenerator(z_dim=6, image_shape=(1, 8, 8)).to(dev), checks.TinyDiscriminator(image_shape=(1, 8, 8)).to(dev)
    return {"G": G, "D": D, "opt_g": torch.optim.SGD(G.parameters(), lr=0.2), "opt_d": torch.optim.SGD(D.parameters(), lr=0.2),
            "real": [(torch.rand(10, 1, 8, 8, generator=g) * 2 - 1).to(dev) for _ in range(n_critic)],
            "latents": [torch.randn(10, 6, generator=g).to(dev) for _ in range(n_critic + 1)]}


RESULT_HINTS = {
    "loss_d": "loss_d is the loss of the last discriminator step.",
    "loss_g": "loss_g is the generator loss of the G step, before the update.",
    "d_fake": "d_fake is the mean of sigmoid(D(G(z))) on the G step's fakes (for lsgan: the mean raw output D(G(z))).",
    "grad_norm": "grad_norm is the L2 norm of all of G's gradients together, after backward() and before step().",
}


@hidden(TRAIN)
def check_train_iteration(fn: Callable[..., Mapping[str, Any]]) -> None:
    """Per kind, 3 D steps then one G step on tiny models: parameters after it, returned values, and
    gradients reaching G once; with the reference losses in GENERATOR_LOSSES / DISCRIMINATOR_LOSSES."""
    with checks.swapped_in(fn, GENERATOR_LOSSES=dict(G_REF), DISCRIMINATOR_LOSSES=dict(D_REF)):
        for kind in KINDS:
            _check_iteration(fn, kind)


def _check_iteration(fn: Callable[..., Mapping[str, Any]], kind: str) -> None:
    what, ref = f"train_iteration({kind!r})", reference_train_iteration

    def run(s: dict[str, Any], iteration: Callable[..., Any] = fn, **kw: Any) -> Any:
        return iteration(kind, s["G"], s["D"], s["opt_g"], s["opt_d"], s["real"], s["latents"], **kw)

    def student(s: dict[str, Any]) -> Any:
        s["g_backward"] = counter = [0]  # a hook counts the gradients reaching G
        next(s["G"].parameters()).register_hook(lambda grad: counter.__setitem__(0, counter[0] + 1))
        return run(s)

    variants = {"an iteration without opt_d.zero_grad() (old gradients were added in)": lambda s: run(s, ref, zero_grad_d=False),
                "an iteration without opt_g.zero_grad() (old gradients were added in)": lambda s: run(s, ref, zero_grad_g=False)}
    if kind != "lsgan":
        other = "nonsaturating" if kind == "minimax" else "minimax"
        variants[f"the {other} generator loss (is `kind` used?)"] = lambda s: run(s, ref, g_loss=G_REF[other])
    state = checks.check_step(what, student, lambda s: run(s, ref), _state, updated=("G", "D"), variants=variants, result_tol=None)
    if state["g_backward"][0] != 1:
        checks.fail(f"{what}: gradients reached G {state['g_backward'][0]} times; expected once (the G step). "
                    "Detach the fakes in the discriminator steps (fake.detach(), or torch.no_grad()).")
    result, expected = state["result"], state["expected"]
    if not isinstance(result, Mapping):
        checks.fail(f"{what} should return a dict, got {type(result).__name__}")
    for key, want in expected.items():
        if key not in result:
            checks.fail(f"{what}'s dict lacks {key!r}; expected keys {', '.join(expected)}")
        got = checks.as_number(result[key], f"{what}[{key!r}]")
        if abs(got - want) > 1e-4 * (1 + abs(want)):
            checks.fail(f"{what}[{key!r}]: expected {want:.6g}, got {got:.6g}. {RESULT_HINTS[key]}")


core.watch_functions(sys.modules[__name__])

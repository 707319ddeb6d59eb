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
from autograder.checks import Edit, core, edit, library_copy, rewrite, slip, variant

KINDS = ("minimax", "nonsaturating", "lsgan")
mm_g, ns_g, ls_g = kit.minimax_generator_loss, kit.nonsaturating_generator_loss, kit.lsgan_generator_loss
bce_d, ls_d = kit.bce_discriminator_loss, kit.lsgan_discriminator_loss
G_REF = {"minimax": mm_g, "nonsaturating": ns_g, "lsgan": ls_g}
D_REF = {"minimax": bce_d, "nonsaturating": bce_d, "lsgan": ls_d}

MM, NS, LSG, BCE, LSD = "sat_minimax", "sat_nonsaturating", "sat_lsgan_g", "sat_bce_d", "sat_lsgan_d"
DER, TRAIN = "sat_derivative", "sat_train_iteration"
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


# --- the tables: 5 slip submissions (a train, a derivative and a stability slip in each), 2 variant ones --
T_MM, T_NS, T_LSG = {"test_minimax_generator_loss"}, {"test_nonsaturating_generator_loss"}, {"test_lsgan_generator_loss"}
T_LSD, T_STABLE = {"test_lsgan_discriminator_loss"}, {"test_losses_stable"}
T_DER, T_TRAIN = {"test_dloss_dlogit"}, {"test_train_iteration"}
SOLUTION_FIGURES = 4  # |dl/dl|, the training curves, the sample grids, 5 vs 1 D steps
_MM, _NS, _LSG = "-F.softplus(fake_logits).mean()", "F.softplus(-fake_logits).mean()", "((fake_logits - 1.0) ** 2).mean()"
_BCE, _LSD = "F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()", "((real_logits - 1.0) ** 2).mean() + (fake_logits ** 2).mean()"
_NO_GRAD = "        with torch.no_grad():\n            fake = G(z)\n"
_NORM = "torch.sqrt(sum((p.grad ** 2).sum() for p in G.parameters() if p.grad is not None))"


def _kit(cell: str, import_line: str, body: str) -> tuple[Edit, Edit]:
    """An answer that imports from the kit at the top of its cell and returns ``body``."""
    return edit(cell, "def ", f"{import_line}\n\n\ndef "), edit(cell, {MM: _MM, NS: _NS}[cell], body)


SLIPS = [
    slip("train: D steps do not detach the fakes", edit(TRAIN, _NO_GRAD, "        fake = G(z)\n"), fails=T_TRAIN,
         message="reached G 4 times"),
    slip("derivative taken w.r.t. p", edit(DER, "-torch.sigmoid(logits)", "-1.0 / (1.0 - torch.sigmoid(logits))"), fails=T_DER,
         message="with respect to p"),
    slip("minimax: naive log(1 - sigmoid)", edit(MM, _MM, "torch.log(1 - torch.sigmoid(fake_logits)).mean()"), fails=T_STABLE,
         message="numerically stable"),
    slip("non-saturating: the saturating loss", edit(NS, _NS, _MM), fails=T_NS, message="saturating (minimax)"),
    slip("train: no opt_d.zero_grad()", edit(TRAIN, "        opt_d.zero_grad()\n", ""), fails=T_TRAIN, message="without opt_d.zero_grad()"),
    slip("derivative: minimax written as the non-saturating one", edit(DER, "-torch.sigmoid(logits)", "-torch.sigmoid(-logits)"),
         fails=T_DER, message="differentiate the nonsaturating loss"),
    slip("non-saturating: naive -log(sigmoid)", edit(NS, _NS, "-torch.log(torch.sigmoid(fake_logits)).mean()"), fails=T_STABLE,
         message="numerically stable"),
    slip("lsgan D: factor 1/2", edit(LSD, _LSD, f"0.5 * ({_LSD})"), fails=T_LSD, message="factor 1/2"),
    slip("train: kind ignored in the G step", edit(TRAIN, "g_loss_fn(fake_logits)", 'GENERATOR_LOSSES["nonsaturating"](fake_logits)'),
         fails=T_TRAIN, message="is `kind` used"),
    slip("derivative of the batch mean", edit(DER, "2.0 * (logits - 1.0)", "2.0 * (logits - 1.0) / logits.numel()"), fails=T_DER,
         message="batch mean"),
    slip("bce D: nn.BCELoss on probabilities (log clipped at -100)", edit(BCE, _BCE, "bce(real_p, torch.ones_like(real_p)) + "
         "bce(fake_p, torch.zeros_like(fake_p))"), edit(BCE, "    return", "    bce, real_p, fake_p = torch.nn.BCELoss(), "
         "torch.sigmoid(real_logits), torch.sigmoid(fake_logits)\n    return"), fails=T_STABLE, message="numerically stable"),
    slip("minimax: sum over the batch", edit(MM, ".mean()", ".sum()"), fails=T_MM, message="sum"),
    slip("train: grad_norm of the parameters", edit(TRAIN, "(p.grad ** 2)", "(p ** 2)"), fails=T_TRAIN, message="grad_norm"),
    slip("derivative: non-saturating sign flipped", edit(DER, "-torch.sigmoid(-logits)", "torch.sigmoid(-logits)"), fails=T_DER,
         message="sign is flipped"),
    slip("lsgan G: on sigmoid(l)", edit(LSG, "(fake_logits - 1.0)", "(torch.sigmoid(fake_logits) - 1.0)"), fails=T_LSG, message="sigmoid"),
    slip("train: d_fake is a probability for lsgan too", edit(TRAIN, "fake_logits.mean() if kind", "torch.sigmoid(fake_logits).mean() if kind"),
         fails=T_TRAIN, message="d_fake"),
    slip("lsgan G: detached (no gradient)", edit(LSG, "(fake_logits - 1.0)", "(fake_logits.detach() - 1.0)"), fails=T_LSG,
         message="does not depend differentiably"),
]
LIBRARY_COPIES = [
    library_copy("minimax: module alias of the kit", *_kit(MM, "import gan_utils.losses as L", "L.minimax_generator_loss(fake_logits)"),
                 fails=T_MM | T_STABLE),
    library_copy("non-saturating: from-import alias", *_kit(NS, "from gan_utils.losses import nonsaturating_generator_loss as ns",
                                                            "ns(fake_logits)"), fails=T_NS | T_STABLE),
    library_copy("derivative: autograd through the kit's loss", rewrite(DER, """from gan_utils.losses import generator_loss


def dloss_dlogit(kind, logits):
    leaf = logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(generator_loss(kind, leaf) * leaf.numel(), leaf)[0]
"""), fails=T_DER),
]
VARIANTS = [
    variant("minimax: logsigmoid", edit(MM, _MM, "F.logsigmoid(-fake_logits).mean()")),
    variant("minimax: -BCEWithLogits with target 0", edit(MM, _MM, "-F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))")),
    variant("non-saturating: BCEWithLogits with target 1", edit(NS, _NS, "F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))")),
    variant("non-saturating: textbook stable form max(-l, 0) + log1p(exp(-|l|))",
            edit(NS, _NS, "(torch.clamp(-fake_logits, min=0) + torch.log1p(torch.exp(-fake_logits.abs()))).mean()")),
    variant("lsgan G: a UserWarning from torch.tensor(tensor)",
            edit(LSG, "    return", "    target = torch.tensor(torch.ones_like(fake_logits))  # warns: copy-constructs a tensor\n    return"),
            edit(LSG, "- 1.0)", "- target)")),
    variant("lsgan G: F.mse_loss", edit(LSG, _LSG, "F.mse_loss(fake_logits, torch.ones_like(fake_logits))")),
    variant("bce D: BCEWithLogits", edit(BCE, _BCE, "F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + "
                                                    "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))")),
    variant("bce D: softplus sums divided by N", edit(BCE, _BCE, "F.softplus(-real_logits).sum() / len(real_logits) + "
                                                                "F.softplus(fake_logits).sum() / len(fake_logits)")),
    variant("lsgan D: F.mse_loss", edit(LSD, _LSD, "F.mse_loss(real_logits, torch.ones_like(real_logits)) + "
                                                  "F.mse_loss(fake_logits, torch.zeros_like(fake_logits))")),
    variant("derivative: autograd through the notebook's own losses", rewrite(DER, """def dloss_dlogit(kind, logits):
    leaf = logits.detach().clone().requires_grad_(True)
    return torch.autograd.grad(GENERATOR_LOSSES[kind](leaf) * leaf.numel(), leaf)[0]  # N * mean = sum of the per-sample losses
""")),
    variant("derivative: other closed forms and a warnings.warn", rewrite(DER, """import warnings


def dloss_dlogit(kind, logits):
    warnings.warn("dloss_dlogit: a harmless warning from a correct answer")
    p = torch.sigmoid(logits)
    return {"minimax": -p, "nonsaturating": p - 1, "lsgan": 2 * logits - 2}[kind]
""")),
    variant("train: .detach(), zero_grad(set_to_none=True), clip_grad_norm_, D frozen in the G step",
            edit(TRAIN, _NO_GRAD, "        fake = G(z).detach()\n"), edit(TRAIN, "opt_d.zero_grad()", "opt_d.zero_grad(set_to_none=True)"),
            edit(TRAIN, "    fake_logits = D(G(", "    D.requires_grad_(False)  # no gradient for D in the G step\n    fake_logits = D(G("),
            edit(TRAIN, "opt_g.zero_grad()", "opt_g.zero_grad(set_to_none=True)"),
            edit(TRAIN, "    loss_g.backward()\n", "    loss_g.backward()\n    D.requires_grad_(True)\n"),
            edit(TRAIN, _NORM, 'torch.nn.utils.clip_grad_norm_(G.parameters(), float("inf"))')),
    variant("train: fakes made first under no_grad, module zero_grad, vector_norm, floats by float()", rewrite(TRAIN, """
def train_iteration(kind, G, D, opt_g, opt_d, real_batches, latents):
    with torch.no_grad():  # G does not change during the D steps: make all the fakes first
        fakes = [G(z) for z in latents[:-1]]
    for i in range(len(real_batches)):
        D.zero_grad()
        loss_d = DISCRIMINATOR_LOSSES[kind](D(real_batches[i]), D(fakes[i]))
        loss_d.backward()
        opt_d.step()
    G.zero_grad()
    fake_logits = D(G(latents[len(latents) - 1]))
    loss_g = GENERATOR_LOSSES[kind](fake_logits)
    loss_g.backward()
    grad_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in G.parameters() if p.grad is not None]))
    opt_g.step()
    score = fake_logits if kind == "lsgan" else torch.sigmoid(fake_logits)
    return dict(loss_d=float(loss_d), loss_g=float(loss_g), d_fake=float(score.mean()), grad_norm=float(grad_norm))
""")),
]

core.watch_functions(sys.modules[__name__])

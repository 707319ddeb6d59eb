"""What ``tests/test_assignments.py`` grades for ``loss_saturation``: five slip submissions (a training,
a derivative and a stability slip in each) and two variant ones, plus answers that call the kit.

Edits apply to the solution's answer cells (markers removed); see :mod:`autograder.checks.assignment`.
"""

from __future__ import annotations

import sys

from autograder.checks import Edit, core, edit, library_copy, rewrite, slip, variant

# the answer cells (grade ids)
MM, NS, LSG, BCE, LSD = "sat_minimax", "sat_nonsaturating", "sat_lsgan_g", "sat_bce_d", "sat_lsgan_d"
DER, TRAIN = "sat_derivative", "sat_train_iteration"

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

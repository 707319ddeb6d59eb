"""Hidden checks of the ``example`` assignment (the non-saturating generator loss).

The smallest complete grading module, and the template for new ones: a reference, the
cases the hidden test runs, the library names the answer may not call, and the tables
of slips, correct variants and library copies that ``tests/test_assignments.py``
grades.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

import autograder.checks as checks
from autograder.checks import core, edit, library_copy, rewrite, slip, variant
from gan_utils.losses import minimax_generator_loss, nonsaturating_generator_loss

OFF_LIMITS = {
    "generator_loss_answer": (
        "gan_utils.losses.nonsaturating_generator_loss",
        "gan_utils.losses.generator_loss",
        "gan_utils.losses.gan.nonsaturating_generator_loss",
    ),
}
hidden = checks.hidden_checks(OFF_LIMITS)


@hidden("generator_loss_answer")
def check_generator_loss(generator_loss: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Value and gradient on seeded logits (extremes included); a mean over the batch, blind to its order."""
    cases = checks.make_logit_cases(seed=2024, sizes=(1, 5, 64), scale=4.0, extremes=True)
    slips = {
        "you use the saturating (minimax) loss log(1 - D(G(z)))": minimax_generator_loss,
        "the sign is flipped": lambda f: -nonsaturating_generator_loss(f),
        "you sum over the batch instead of averaging": lambda f: nonsaturating_generator_loss(f, reduction="sum"),
    }
    checks.check_loss(generator_loss, nonsaturating_generator_loss, cases, what="generator_loss", slips=slips)
    checks.check_reduction_mean(generator_loss, cases[1], what="generator_loss")
    checks.check_invariant(generator_loss, cases[2], lambda x: (x.flip(0),), "reversing the order of the batch",
                           what="generator_loss (a mean over the batch treats every sample alike)")


ANSWER = "generator_loss_answer"
TEST = {"test_generator_loss"}
SOLUTION_FIGURES = 0

SLIPS = [
    slip("sum over the batch", edit(ANSWER, ".mean()", ".sum()"), fails=TEST),
    slip("sign flipped", edit(ANSWER, "F.softplus(-fake_logits).mean()", "-F.softplus(-fake_logits).mean()"),
         fails=TEST),
    slip("naive log(sigmoid)", edit(ANSWER, "F.softplus(-fake_logits).mean()", "-torch.log(torch.sigmoid(fake_logits)).mean()"),
         fails=TEST, message="numerically stable"),
    slip("only the first sample", edit(ANSWER, "F.softplus(-fake_logits).mean()", "F.softplus(-fake_logits[0])"), fails=TEST),
]


def _answer(body: str) -> str:
    return f"def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:\n    {body}\n"


VARIANTS = [
    variant("BCEWithLogits", rewrite(ANSWER, _answer(
        "return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))"))),
    variant("logsigmoid", rewrite(ANSWER, _answer("return -F.logsigmoid(fake_logits).mean()"))),
    variant("nn.BCEWithLogitsLoss module", rewrite(ANSWER, _answer(
        "return torch.nn.BCEWithLogitsLoss()(fake_logits, torch.ones_like(fake_logits))"))),
    variant("textbook stable form max(-l, 0) + log1p(exp(-|l|))", rewrite(ANSWER, _answer(
        "return (torch.clamp(-fake_logits, min=0) + torch.log1p(torch.exp(-fake_logits.abs()))).mean()"))),
    variant("emits a UserWarning", rewrite(ANSWER, _answer(
        "import warnings\n    warnings.warn('a harmless warning from a correct answer')\n"
        "    return F.softplus(-fake_logits).mean()"))),
]
LIBRARY_COPIES = [
    library_copy("module alias", rewrite(ANSWER,
        "import gan_utils.losses as L\n\n\n" + _answer("return L.nonsaturating_generator_loss(fake_logits)")), fails=TEST),
]

_ = F  # the variants' source uses F, imported in the notebook
core.watch_functions(sys.modules[__name__])

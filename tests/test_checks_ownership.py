"""Tripwires on the kit's finished references (``autograder.checks.ownership``) and the
``hidden_checks`` decorator: every way of calling an off-limits library object from an
answer is caught, the checks' own reference calls and the library's internal calls go
through, and everything is restored afterwards.

This file's own frames count as "student code" (they are neither ``autograder`` nor
``gan_utils``), which is what a notebook cell is to the tripwire.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autograder
import autograder.checks as checks
import gan_utils.losses as L
from autograder.checks import core
from autograder.checks.ownership import LibraryCopy, own_work
from gan_utils.losses import clip_weights_, nonsaturating_generator_loss
from gan_utils.losses import nonsaturating_generator_loss as renamed
from gan_utils.models.dcgan import DCGANGenerator

NS = "gan_utils.losses.nonsaturating_generator_loss"
X = torch.tensor([-2.0, 0.5, 3.0])


def mine(logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits).mean()


def test_every_spelling_of_a_call_is_caught() -> None:
    def default_arg(x, f=nonsaturating_generator_loss):
        return f(x)

    spellings = {
        "module alias": lambda x: L.nonsaturating_generator_loss(x),
        "renamed import": lambda x: renamed(x),
        "default argument": default_arg,
        "partial": functools.partial(lambda x, f: f(x), f=nonsaturating_generator_loss),
        "dispatcher counts too when listed": lambda x: L.generator_loss("nonsaturating", x),
    }
    names = [NS, "gan_utils.losses.generator_loss"]
    for label, fn in spellings.items():
        with own_work(names), pytest.raises(LibraryCopy, match="write this yourself: gan_utils.losses"):
            fn(X)
        assert torch.allclose(fn(X), mine(X)), f"{label}: the original must work again after the block"


def test_reference_calls_from_the_checks_and_library_internals_go_through() -> None:
    with own_work([NS]):
        # the check computes its reference with the armed function: allowed
        checks.check_loss(mine, nonsaturating_generator_loss, [X.clone()])
        # a library helper that uses it internally (not itself off limits): allowed
        assert torch.allclose(L.generator_loss("nonsaturating", X), mine(X))


def test_objects_that_are_the_reference_fail_at_once() -> None:
    for answer in (nonsaturating_generator_loss, functools.partial(nonsaturating_generator_loss, reduction="mean")):
        with pytest.raises(LibraryCopy), own_work([NS], answers=[answer]):
            pass

    class Sub(DCGANGenerator):
        pass

    with pytest.raises(LibraryCopy, match="DCGANGenerator"), own_work(["gan_utils.models.dcgan.DCGANGenerator"], answers=[Sub]):
        pass
    with own_work([NS], answers=[mine]):  # the student's own function is fine
        pass


def test_classes_are_caught_by_composition_and_restored() -> None:
    class Composed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = DCGANGenerator(z_dim=4, width=2)

    init_code = DCGANGenerator.__init__.__code__
    with own_work(["gan_utils.models.dcgan.DCGANGenerator"]), pytest.raises(LibraryCopy):
        Composed()
    assert DCGANGenerator.__init__.__code__ is init_code
    assert Composed().net(torch.randn(2, 4)).shape == (2, 3, 64, 64)


def test_decorated_functions_are_caught_and_restored() -> None:
    layer = nn.Linear(3, 3)

    def answer(model):
        clip_weights_(model, 0.01)

    with own_work(["gan_utils.losses.clip_weights_"]), pytest.raises(LibraryCopy):
        answer(layer)
    clip_weights_(layer, 0.01)
    assert layer.weight.abs().max() <= 0.01
    assert core.changed_names() == []


def test_unknown_names_are_an_instructor_error() -> None:
    with pytest.raises(LookupError, match="does not exist"), own_work(["gan_utils.losses.no_such_loss"]):
        pass


def _check_from_autograder(body: str):
    """A check function whose code lives in autograder/ (as a real assignment module's does)."""
    namespace = {"checks": checks, "reference": nonsaturating_generator_loss, "X": X}
    filename = os.path.join(os.path.dirname(autograder.__file__), "assignments", "made_by_a_test.py")
    exec(compile(f"def check(fn):\n    {body}\n", filename, "exec"), namespace)
    return checks.hidden_checks({"answer": (NS,)})("answer")(namespace["check"])


def test_hidden_checks_turn_a_copy_into_a_lost_test_with_the_message() -> None:
    hidden = checks.hidden_checks({"answer": (NS,)})
    check_generator_loss = _check_from_autograder("checks.check_loss(fn, reference, checks.make_logit_cases(seed=1))")

    check_generator_loss(mine)
    with pytest.raises(AssertionError, match="write this yourself: gan_utils.losses.nonsaturating_generator_loss is the kit's reference"):
        check_generator_loss(lambda x: L.nonsaturating_generator_loss(x))
    with pytest.raises(AssertionError, match="write this yourself"):
        check_generator_loss(nonsaturating_generator_loss)
    with pytest.raises(KeyError, match="no off-limits entry"):
        hidden("other cell")
    assert core.changed_names() == []
    assert torch.allclose(nonsaturating_generator_loss(X), mine(X))


def test_a_call_laundered_through_a_check_helper_is_still_caught() -> None:
    def sneaky(x):
        return core.call_student(L.nonsaturating_generator_loss, x, what="laundered")

    with own_work([NS]), pytest.raises(core.CheckFailure, match="write this yourself"):
        sneaky(X)
    check = _check_from_autograder("checks.check_loss(fn, reference, [X.clone()])")
    check(mine)
    with pytest.raises(AssertionError, match="write this yourself"):
        check(sneaky)

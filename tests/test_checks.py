"""Unit tests of the check library (autograder.checks): correct code passes in every
correct form; the usual slips (flipped sign, sum for mean, missing detach, wrong
constant, unstable log-sigmoid) fail with a message that says what was expected;
tampering with torch does not make a check pass. Budget: a few seconds.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import autograder.checks as checks
from autograder.checks import core
from autograder.grading.integrity import CHECK_NAMES


def reference_g_loss(logits: torch.Tensor) -> torch.Tensor:
    """-mean(log sigmoid(t)) written independently of the code under test."""
    x = logits.double()
    safe = x.clamp(-25.0, 25.0)
    value = torch.where(x > 25, torch.exp(-x.clamp(min=25.0)), torch.where(x < -25, -x, torch.log1p(torch.exp(-safe))))
    return value.mean().to(logits.dtype)


def lsgan_g_loss(logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((logits - 1.0) ** 2).mean()


CASES = checks.make_logit_cases(seed=7, sizes=(1, 9, 32))


@pytest.mark.parametrize("fn", [
    lambda t: F.softplus(-t).mean(),
    lambda t: F.binary_cross_entropy_with_logits(t, torch.ones_like(t)),
    lambda t: -F.logsigmoid(t).mean(),
])
def test_every_correct_form_passes(fn):
    checks.check_loss(fn, reference_g_loss, CASES)


@pytest.mark.parametrize("fn, words", [
    (lambda t: F.softplus(t).mean(), ["expected", "got"]),  # flipped sign
    (lambda t: F.softplus(-t).sum(), ["expected", "got"]),  # sum for mean
    (lambda t: 2.0 * F.softplus(-t).mean(), ["expected", "got"]),  # wrong constant
    (lambda t: -torch.log(torch.sigmoid(t)).mean(), ["numerically stable", "inf"]),  # unstable form
    (lambda t: F.softplus(-t).mean().detach(), [".detach()"]),  # no gradient
    (lambda t: F.softplus(-t).mean().item(), ["without .item()"]),  # Python float
    (lambda t: F.softplus(-t), ["shape", "scalar"]),  # no reduction
])
def test_slips_fail_with_a_helpful_message(fn, words):
    with pytest.raises(AssertionError) as info:
        checks.check_loss(fn, reference_g_loss, CASES, what="generator_loss")
    message = str(info.value)
    assert message.startswith("generator_loss")
    for word in words:
        assert word in message, message


def test_wrong_lsgan_target_fails_and_gradients_are_compared():
    checks.check_loss(lambda t: 0.5 * F.mse_loss(t, torch.ones_like(t)), lsgan_g_loss, CASES)
    with pytest.raises(AssertionError, match="expected"):
        checks.check_loss(lambda t: 0.5 * ((t - 0.9) ** 2).mean(), lsgan_g_loss, CASES)

    class SameValueWrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return lsgan_g_loss(x)

        @staticmethod
        def backward(ctx, grad):
            return torch.zeros(1).expand(3)

    with pytest.raises(AssertionError, match="gradient of .* w.r.t. argument 0"):
        checks.check_loss(lambda t: SameValueWrongGrad.apply(t), lsgan_g_loss, [torch.randn(3)])


def test_float64_cases_and_gradcheck_of_the_reference():
    cases = checks.make_logit_cases(seed=1, sizes=(5,), extremes=False, dtype=torch.float64)
    assert torch.autograd.gradcheck(reference_g_loss, (cases[0][0].clone().requires_grad_(),))
    checks.check_loss(lambda t: F.softplus(-t).mean(), reference_g_loss, cases, rtol=1e-12, atol=1e-12)


def test_in_place_modification_is_reported():
    def in_place(t):
        with torch.no_grad():
            t.mul_(2.0)
        return F.softplus(-t).mean()

    with pytest.raises(AssertionError, match="in place"):
        checks.check_loss(in_place, reference_g_loss, [torch.randn(4)], check_grad=False)


def test_reduction_mean_catches_sum():
    checks.check_reduction_mean(lambda t: F.softplus(-t).mean(), (torch.randn(6),))
    with pytest.raises(AssertionError, match="mean"):
        checks.check_reduction_mean(lambda t: F.softplus(-t).sum(), (torch.randn(6),))


def test_check_close_messages():
    checks.check_close([torch.tensor(1.0), 2.0], [1.0, 2.0 + 1e-7])
    checks.check_close(torch.tensor(0.5), 0.5)
    with pytest.raises(AssertionError, match=r"x: expected 3 at index \(1,\), got 2"):
        checks.check_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]), what="x")
    with pytest.raises(AssertionError, match=r"expected shape \(\), got \(4,\)"):
        checks.check_close(torch.zeros(4), 0.0)
    with pytest.raises(AssertionError, match="nan or inf"):
        checks.check_close(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_check_shapes_says_expected_and_got():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 784))
    out = checks.check_shapes(model, torch.zeros(64, 1, 28, 28), (64, 784))
    assert out.shape == (64, 784)
    with pytest.raises(AssertionError, match=r"expected output shape \(64, 1, 28, 28\), got \(64, 784\)"):
        checks.check_shapes(model, torch.zeros(64, 1, 28, 28), (64, 1, 28, 28))
    checks.check_shapes(lambda x: (x, x.sum(1)), torch.zeros(3, 2), [(None, 2), (3,)])


def test_monotone_and_invariant():
    logits = [torch.full((3,), v) for v in (-2.0, 0.0, 2.0)]
    checks.check_monotone(lambda t: F.softplus(-t).mean(), logits, direction="decreasing")
    with pytest.raises(AssertionError, match="should fall.*0.126928 -> 0.693147"):
        checks.check_monotone(lambda t: F.softplus(t).mean(), logits, direction="decreasing",
                              labels=["-2", "0", "2"], what="loss should fall")
    x = torch.randn(8)
    checks.check_invariant(lambda t: F.softplus(-t).mean(), (x,), lambda t: (t.flip(0),), "reversing the batch")
    with pytest.raises(AssertionError, match="after reversing the batch"):
        checks.check_invariant(lambda t: F.softplus(-t[:4]).mean(), (x,), lambda t: (t.flip(0),), "reversing the batch")


class TinyG(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 6)

    def forward(self, z):
        return torch.tanh(self.net(z))


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(6, 1)

    def forward(self, x):
        return self.net(x).squeeze(1)


def _gan(detach: bool = True, step_d_in_g: bool = False):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    z, real = torch.randn(8, 4), torch.randn(8, 6)

    def d_step():
        fake = G(z).detach() if detach else G(z)
        loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        return loss

    def g_step():
        loss = F.softplus(-D(G(z))).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        if step_d_in_g:
            opt_d.step()
        return loss

    return G, D, d_step, g_step


def test_smoke_training():
    torch.manual_seed(0)
    w = torch.zeros(3, requires_grad=True)
    x = torch.randn(16, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    opt = torch.optim.SGD([w], lr=0.1)

    def step(lr_ok=True):
        loss = ((x @ w - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if lr_ok:
            opt.step()
        return loss

    checks.check_smoke_training(step, steps=20, min_drop=0.2)
    with pytest.raises(AssertionError, match="should fall when overfitting one batch"):
        checks.check_smoke_training(lambda: step(lr_ok=False), steps=10)
    with pytest.raises(AssertionError, match="became nan at step 0"):
        checks.check_smoke_training(lambda: torch.tensor(float("nan")), steps=5)


def test_output_range():
    G = TinyG()
    checks.check_output_range(G, torch.randn(10, 4), -1.0, 1.0)
    with pytest.raises(AssertionError, match=r"expected outputs in \[0, 1\]"):
        checks.check_output_range(G, torch.randn(10, 4) * 10, 0.0, 1.0)


def test_monkeypatched_torch_does_not_fool_the_checks(monkeypatch):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "isclose", lambda a, b, **k: torch.ones_like(a, dtype=torch.bool))
    assert core.isclose is not torch.isclose  # checks compare with the original
    with pytest.raises(AssertionError, match="Integrity check failed.*torch.allclose"):
        checks.check_close(torch.tensor(1.0), 2.0)
    monkeypatch.undo()
    checks.check_close(torch.tensor(1.0), 1.0)


def test_replaced_helpers_and_references_are_detected(monkeypatch):
    monkeypatch.setattr(checks, "check_loss", lambda *a, **k: None)
    with pytest.raises(AssertionError, match="autograder.checks.check_loss"):
        checks.check_close(1.0, 1.0)
    monkeypatch.undo()
    import gan_utils.losses as losses

    monkeypatch.setattr(losses, "nonsaturating_generator_loss", lambda t: F.softplus(t).mean())
    with pytest.raises(AssertionError, match="gan_utils.losses.nonsaturating_generator_loss"):
        checks.check_close(1.0, 1.0)


def test_torch_lazy_wrappers_are_not_tampering():
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled())  # wraps torch.manual_seed
    assert core.changed_names() == []


def test_checks_write_nothing_to_stderr_and_restore_global_state(capfd):
    def noisy(t):
        warnings.warn("a student warning", UserWarning, stacklevel=2)
        return F.softplus(-t).mean()

    tf32 = torch.backends.cuda.matmul.allow_tf32
    deterministic = torch.are_deterministic_algorithms_enabled()
    checks.check_loss(noisy, reference_g_loss, CASES[:1])
    assert capfd.readouterr().err == ""
    assert torch.backends.cuda.matmul.allow_tf32 == tf32
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_failures_hide_internal_frames():
    with pytest.raises(AssertionError) as info:
        checks.check_close(torch.tensor(1.0), 2.0)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(AssertionError) as info:
        checks.check_loss(lambda t: t.no_such_method(), reference_g_loss, CASES[:1], what="g")
    assert "g raised AttributeError" in str(info.value)
    assert isinstance(info.value.__cause__, AttributeError)  # the student's own frames stay visible


def test_check_names_match_the_public_api():
    assert set(CHECK_NAMES) == set(checks.__all__)


def test_make_logit_cases_is_seeded_and_has_extremes():
    a, b = checks.make_logit_cases(seed=3), checks.make_logit_cases(seed=3)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    assert a[-1][0].abs().max() == 1000.0
    pairs = checks.make_logit_cases(seed=3, n_args=2)
    assert all(len(c) == 2 for c in pairs)
    assert math.isfinite(float(reference_g_loss(a[-1][0])))


# --- merged from the assignments: named slips, steps, student models, numbers ----------------


def test_check_loss_names_the_slip_that_matches():
    slips = {"the sign is flipped": lambda t: -reference_g_loss(t), "you sum over the batch": lambda t: reference_g_loss(t) * t.numel()}
    with pytest.raises(AssertionError, match="it matches what you get when you sum over the batch"):
        checks.check_loss(lambda t: F.softplus(-t).sum(), reference_g_loss, CASES[1:2], slips=slips)
    with pytest.raises(AssertionError, match="sign is flipped"):
        checks.check_loss(lambda t: -F.softplus(-t).mean(), reference_g_loss, CASES[1:2], slips=slips)
    checks.check_loss(lambda t: F.softplus(-t).mean().reshape(1), reference_g_loss, CASES, slips=slips)  # (1,) counts as scalar


def test_compare_naming_slips_names_only_a_slip_that_differs_from_the_answer():
    expected, doubled = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])
    slips = {"the answer is doubled": doubled, "nothing changes": expected.clone()}
    compare = checks.checked(checks.compare_naming_slips)
    compare(expected + 1e-12, expected, "kl", slips)  # within tolerance: no failure
    with pytest.raises(AssertionError, match="kl: it matches what you get when the answer is doubled"):
        compare(doubled, expected, "kl", slips)
    with pytest.raises(AssertionError, match="expected finite values, got nan or inf. subtract the max"):
        compare(torch.tensor([float("nan"), 2.0]), expected, "kl", slips, hint=" subtract the max")
    with pytest.raises(AssertionError, match=r"kl: expected 1 at index \(0,\), got 3") as raised:
        compare(torch.tensor([3.0, 2.0]), expected, "kl", slips)
    assert "matches" not in str(raised.value)
    assert checks.same_values(1.0, 1.0 + 1e-12) and not checks.same_values(1.0, 1.1)
    assert checks.same_values(2.0, 2.05, rtol=0.1) and not checks.same_values(torch.ones(2), torch.ones(3))


def test_not_implemented_and_numbers():
    def todo(t):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="generator_loss is not implemented yet"):
        checks.check_loss(todo, reference_g_loss, CASES[:1], what="generator_loss")
    assert checks.as_number(torch.tensor([2.5]), "x") == 2.5 and checks.as_number(3, "x") == 3.0
    for bad, word in ((torch.ones(2), "single number"), ("1.0", "str"), (True, "bool")):
        with pytest.raises(AssertionError, match=word):
            checks.checked(checks.as_number)(bad, "the loss")


class HalfUsed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        self.unused = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def test_build_model_and_every_parameter_learns():
    with pytest.raises(AssertionError, match=r"HalfUsed\(width=3\) failed: .*Keep the constructor's arguments"):
        checks.checked(checks.build_model)(TinyD, "HalfUsed", width=3)
    with pytest.raises(AssertionError, match="unused.weight"):
        checks.check_every_parameter_learns(HalfUsed(), torch.randn(5, 4))
    checks.check_every_parameter_learns(nn.Sequential(nn.Linear(4, 3), nn.Tanh()), torch.randn(5, 4))


def _state():
    torch.manual_seed(0)
    G, D = checks.TinyGenerator(z_dim=3, image_shape=(1, 2, 2)), checks.TinyDiscriminator(image_shape=(1, 2, 2))
    return {"G": G, "D": D, "opt": torch.optim.SGD(D.parameters(), lr=0.1), "z": torch.randn(6, 3), "x": torch.rand(6, 1, 2, 2)}


def _d_step(s, detach=True, zero=True, loss=None):
    fake = s["G"](s["z"])
    fake = fake.detach() if detach else fake
    value = (loss or (lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean()))(s["D"](s["x"]), s["D"](fake))
    if zero:
        s["opt"].zero_grad()
    value.backward()
    s["opt"].step()
    return value.item()


def test_check_step_accepts_other_forms_and_names_slips():
    def no_grad_step(s):
        with torch.no_grad():
            fake = s["G"](s["z"])
        loss = F.binary_cross_entropy_with_logits(s["D"](torch.cat([s["x"], fake])),
                                                  torch.cat([torch.ones(6), torch.zeros(6)]), reduction="none")
        loss = loss[:6].mean() + loss[6:].mean()
        s["D"].zero_grad(set_to_none=True)
        loss.backward()
        s["opt"].step()
        return loss.detach()

    variants = {"an update without zero_grad()": lambda s: _d_step(s, zero=False)}
    state = checks.check_step("d_step", no_grad_step, _d_step, _state, updated=("D",), frozen=("G",), variants=variants)
    assert math.isclose(float(state["result"]), state["expected"], rel_tol=1e-5)
    with pytest.raises(AssertionError, match="back-propagated into G.*Detach the fakes"):
        checks.check_step("d_step", lambda s: _d_step(s, detach=False), _d_step, _state, updated=("D",), frozen=("G",))
    with pytest.raises(AssertionError, match="they match an update without zero_grad"):
        checks.check_step("d_step", lambda s: _d_step(s, zero=False), _d_step, _state, updated=("D",), frozen=("G",),
                          variants=variants)
    with pytest.raises(AssertionError, match=r"should return .* \(the loss before the update\), got 0"):
        checks.check_step("d_step", lambda s: _d_step(s) * 0, _d_step, _state, updated=("D",), frozen=("G",))


def test_swapped_in_binds_and_restores_names_in_the_notebook_namespace():
    namespace: dict = {"loss": "student's"}
    exec("def step():\n    return loss", namespace)
    with checks.swapped_in(namespace["step"], loss="reference", extra=1):
        assert namespace["step"]() == "reference" and namespace["extra"] == 1
    assert namespace["step"]() == "student's" and "extra" not in namespace


def test_a_test_cells_stderr_becomes_ordinary_output():
    import nbformat

    from autograder.grading.executor import stderr_is_not_an_error

    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: harmless\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    assert stderr_is_not_an_error(cell) == 1
    assert [o.name for o in cell.outputs] == ["stdout", "stdout"] and "harmless" in cell.outputs[0].text


def test_check_loss_stable_judges_numerics_only_when_the_formula_is_wrong():
    moderate = CASES[1:2]
    checks.check_loss_stable(lambda t: F.softplus(-t).mean(), reference_g_loss, moderate)
    with pytest.raises(AssertionError, match="numerically stable"):  # right formula, unstable form
        checks.check_loss_stable(lambda t: -torch.log(torch.sigmoid(t)).mean(), reference_g_loss, moderate)
    # a wrong but finite formula (the sign) costs its own test, not this one
    checks.check_loss_stable(lambda t: -F.softplus(-t).mean(), reference_g_loss, moderate)
    with pytest.raises(AssertionError, match="nan/inf"):  # wrong and unstable
        checks.check_loss_stable(lambda t: torch.log(torch.sigmoid(t)).mean(), reference_g_loss, moderate)


def test_check_step_unchanged_allows_gradients_but_not_updates():
    def g_step(s, both=False):
        loss = F.softplus(-s["D"](s["G"](s["z"]))).mean()
        opt = torch.optim.SGD([*s["G"].parameters(), *(s["D"].parameters() if both else ())], lr=0.1)
        opt.zero_grad()
        loss.backward()  # leaves gradients in D: allowed
        opt.step()
        return loss.item()

    checks.check_step("g_step", g_step, g_step, _state, updated=("G",), unchanged=("D",))
    with pytest.raises(AssertionError, match="changed the parameters of D"):
        checks.check_step("g_step", lambda s: g_step(s, both=True), g_step, _state, updated=("G",), unchanged=("D",))

"""Checks for loss functions: ``check_loss``, ``check_loss_stable``, ``check_reduction_mean``
and ``make_logit_cases`` (seeded inputs including extreme logits).

``check_loss`` calls the student's function and the reference on separate copies
of the same inputs (same device and dtype), then compares values and, by default,
gradients with respect to every floating-point input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from autograder.checks import core
from autograder.checks.core import CheckFailure, call_student, checked, describe, fail
from autograder.checks.tensors import compare_close

STABLE_HINT = (
    "use a numerically stable form from logits (F.softplus, F.logsigmoid or "
    "F.binary_cross_entropy_with_logits) instead of log(sigmoid(...))"
)


def _args(case: Any) -> tuple[Any, ...]:
    return tuple(case) if isinstance(case, (tuple, list)) else (case,)


def _fresh(args: tuple[Any, ...], requires_grad: bool) -> tuple[Any, ...]:
    """Independent leaf copies of the tensor arguments (others passed through)."""
    out = []
    for a in args:
        if core.is_tensor(a):
            t = core.tensor_clone(core.tensor_detach(a))
            if requires_grad and t.is_floating_point():
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return tuple(out)


def _float_leaves(args: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(args) if core.is_tensor(a) and a.is_floating_point() and a.requires_grad]


def _case_text(args: tuple[Any, ...]) -> str:
    return ", ".join(describe(a) for a in args)


@checked
def check_loss(
    student_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Iterable[Any],
    rtol: float = 1e-4,
    atol: float = 1e-5,
    check_grad: bool = True,
    what: str | None = None,
    slips: Mapping[str, Callable[..., Any]] | None = None,
    hint: str = "",
) -> None:
    """Compare a student's loss with a reference on every case.

    Args:
        student_fn, reference_fn: called as ``fn(*case)``.
        cases: input tuples (a single tensor is one argument). Each function gets
            its own detached copy; floating tensors become leaves with gradients.
        rtol, atol: tolerances for values and gradients
            (``|got - expected| <= atol + rtol * |expected|``).
        check_grad: also compare gradients w.r.t. every floating input, and require
            that gradients flow (no ``.detach()``, ``.item()`` or ``no_grad``).
        what: name for messages (default: the student function's name).
        slips: maps a description ("the sign is flipped") to a function computing
            what that slip returns; on a wrong value, the first one that matches the
            student's value is named in the message.
        hint: appended to a wrong-value message.

    Also fails when the student function modifies its inputs in place, returns a
    Python number, or returns nan/inf where the reference is finite. A one-element
    result counts as the scalar the reference returns.
    """
    name = what or getattr(student_fn, "__name__", "the loss")
    for k, case in enumerate(cases):
        args = _args(case)
        label = f"{name} on case {k} ({_case_text(args)})"
        s_args = _fresh(args, check_grad)
        r_args = _fresh(args, check_grad)
        before = _fresh(args, False)
        got = call_student(student_fn, *s_args, what=name)
        expected = reference_fn(*r_args)
        for i, (a, b) in enumerate(zip(s_args, before, strict=False)):
            if core.is_tensor(a) and not core.equal(core.tensor_detach(a), b):
                fail(f"{name} changed its input {i} in place; compute a new tensor instead (avoid in-place ops such as x.mul_() or x[...] = ...)")
        if not core.is_tensor(got):
            fail(f"{label}: expected a tensor, got {type(got).__name__}" +
                 (" (return the tensor itself, without .item())" if isinstance(got, (int, float)) else ""))
        if expected.dim() == 0 and got.numel() == 1 and got.dim() <= 1:
            got = got.reshape(())
        got_v, exp_v = core.tensor_detach(got), core.tensor_detach(expected)
        if bool((~core.isfinite(got_v) & core.isfinite(exp_v)).any()) if got_v.shape == exp_v.shape else False:
            fail(f"{label}: expected {_fmt_value(exp_v)}, got {_fmt_value(got_v)}; {STABLE_HINT}")
        if slips and got_v.shape == exp_v.shape and not _close(got_v, exp_v, rtol, atol):
            for description, slip in slips.items():
                with core.no_grad():
                    alt = slip(*_fresh(args, False))
                if core.is_tensor(alt) and alt.numel() == got_v.numel() and _close(got_v, alt.reshape(got_v.shape), rtol, atol) \
                        and not _close(alt.reshape(exp_v.shape), exp_v, rtol, atol):
                    fail(f"{label}: it matches what you get when {description}" + (f". {hint}" if hint else "")
                         + f" (expected {_fmt_value(exp_v)}, got {_fmt_value(got_v)})")
        if hint and got_v.shape == exp_v.shape and not _close(got_v, exp_v, rtol, atol):
            fail(f"{label}: expected {_fmt_value(exp_v)}, got {_fmt_value(got_v)}. {hint}")
        compare_close(got_v, exp_v, rtol, atol, label)
        if not check_grad or not expected.requires_grad:
            continue
        if not got.requires_grad:
            fail(f"{label}: the result does not depend differentiably on the inputs "
                 "(no gradient would reach the model): did you use .detach(), .item(), numpy or torch.no_grad()?")
        leaves = _float_leaves(s_args)
        s_grads = core.autograd_grad(got.sum(), [s_args[i] for i in leaves], allow_unused=True)
        r_grads = core.autograd_grad(expected.sum(), [r_args[i] for i in leaves], allow_unused=True)
        for i, gs, gr in zip(leaves, s_grads, r_grads, strict=False):
            glabel = f"gradient of {name} w.r.t. argument {i} on case {k} ({_case_text(args)})"
            if gr is None:
                continue
            if gs is None:
                fail(f"{glabel}: no gradient reaches this input; expected one (is it detached?)")
            if bool((~core.isfinite(gs) & core.isfinite(gr)).any()):
                fail(f"{glabel}: got nan/inf gradients where the reference is finite; {STABLE_HINT}")
            compare_close(gs, gr, rtol, atol, glabel + " (the value is right: did a .detach() or a constant replace part of the computation?)")
        core.guard()


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    a, b = core.tensor_detach(a).double().cpu(), core.tensor_detach(b).double().cpu()
    return a.shape == b.shape and bool(core.isfinite(a).all()) and bool(core.allclose(a, b, rtol=rtol, atol=atol))


def _fmt_value(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return f"{t.item():.6g}"
    return f"a tensor of shape {tuple(t.shape)} with values in [{float(t.min()):.4g}, {float(t.max()):.4g}]"


@checked
def check_reduction_mean(
    fn: Callable[..., Any],
    inputs: tuple[Any, ...],
    rtol: float = 1e-5,
    atol: float = 1e-6,
    what: str | None = None,
) -> None:
    """Assert ``fn`` averages over the batch: repeating every batch twice keeps the value.

    A loss that sums over the batch doubles; this check says so.
    """
    name = what or getattr(fn, "__name__", "the loss")
    args = _fresh(_args(inputs), False)
    doubled = tuple(core.cat([a, a]) if core.is_tensor(a) and a.dim() > 0 else a for a in args)
    with core.no_grad():
        once = call_student(fn, *args, what=name)
        twice = call_student(fn, *doubled, what=name)
    if not core.is_tensor(once) or not core.is_tensor(twice) or once.numel() != 1:
        fail(f"{name}: expected a scalar tensor, got {type(once).__name__}")
    a, b = float(once), float(twice)
    if abs(b - a) > atol + rtol * abs(a):
        ratio = f" ({b / a:.3g} times as large)" if a not in (0.0,) and a == a else ""
        fail(f"{name}: the value went from {a:.6g} to {b:.6g}{ratio} when the batch was repeated twice; "
             "a loss should average over the batch (mean), not sum")


def make_logit_cases(
    seed: int = 0,
    sizes: Sequence[int] = (1, 7, 64),
    scale: float = 3.0,
    extremes: bool = True,
    n_args: int = 1,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> list[tuple[torch.Tensor, ...]]:
    """Seeded logit inputs for loss checks.

    One case per batch size in ``sizes`` with ``N(0, scale^2)`` logits, plus (when
    ``extremes``) a case with logits of magnitude 30-1000 where naive
    ``log(sigmoid(x))`` overflows. Each case is a tuple of ``n_args`` tensors of
    shape ``(N,)`` (e.g. ``n_args=2`` for ``(real_logits, fake_logits)``), created
    on ``device`` (default: :func:`grading_device`).
    """
    device = torch.device(device) if device is not None else core.grading_device()
    gen = torch.Generator().manual_seed(seed)
    cases: list[tuple[torch.Tensor, ...]] = []
    for n in sizes:
        cases.append(tuple((torch.randn(n, generator=gen, dtype=torch.float64) * scale).to(device, dtype) for _ in range(n_args)))
    if extremes:
        big = torch.tensor([-1000.0, -200.0, -50.0, -30.0, 0.25, 30.0, 50.0, 200.0, 1000.0], dtype=torch.float64)
        cases.append(tuple(big.roll(j).to(device, dtype) for j in range(n_args)))
    return cases


@checked
def check_loss_stable(
    fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    moderate: Sequence[Any],
    extreme: Sequence[Any] | None = None,
    what: str | None = None,
    hint: str = STABLE_HINT,
    device: torch.device | str | None = None,
) -> None:
    """A loss from logits stays usable when the discriminator is confident.

    When ``fn`` matches the reference on the ``moderate`` cases, it must also match it
    (values and gradients) on the ``extreme`` cases; when it does not (its formula is
    wrong, which the loss's own test already costs), it must at least give finite
    values and gradients there, so one slip costs one test. ``extreme`` defaults to
    logits of magnitude 5-120 on both sides (real judged fake and the reverse) plus
    the 30-1000 case of :func:`make_logit_cases`.
    """
    name = what or getattr(fn, "__name__", "the loss")
    n_args = len(_args(moderate[0]))
    if extreme is None:
        dev = torch.device(device) if device is not None else core.grading_device()
        big = torch.tensor((120.0, 60.0, 30.0, -5.0), device=dev)
        extreme = [(-big, big)[:n_args], (big, -big)[:n_args]] + make_logit_cases(sizes=(), n_args=n_args, device=dev)
    try:
        check_loss.__wrapped__(fn, reference_fn, moderate, what=name)
        right = True
    except CheckFailure:
        right = False
    if right:
        check_loss.__wrapped__(fn, reference_fn, extreme, what=f"{name} at extreme logits", hint=hint)
        return
    for case in extreme:
        leaves = _fresh(_args(case), True)
        out = call_student(fn, *leaves, what=name)
        if not core.is_tensor(out):
            fail(f"{name} should return a tensor, got {type(out).__name__}")
        grads = core.autograd_grad(out.sum(), list(leaves), allow_unused=True) if out.requires_grad else ()
        if not all(bool(core.isfinite(t).all()) for t in (core.tensor_detach(out), *(g for g in grads if g is not None))):
            fail(f"{name} gives nan/inf values or gradients at logits of magnitude up to "
                 f"{max(float(a.abs().max()) for a in leaves):g}; {hint}")

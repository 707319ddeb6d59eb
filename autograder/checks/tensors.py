"""Checks on values and shapes: ``check_close``, ``check_shapes``, ``check_finite``,
``check_monotone`` and ``check_invariant``; ``as_number`` for returned losses.

Values are compared in float64 after checking shape and device, with the stated
tolerances: ``|actual - expected| <= atol + rtol * |expected|`` element-wise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from autograder.checks import core
from autograder.checks.core import call_student, checked, describe, fail

Shape = Sequence[int | None]


def _as_tensor(value: Any, what: str, like: torch.Tensor | None = None) -> torch.Tensor:
    if core.is_tensor(value):
        return core.tensor_detach(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{what}: expected a tensor or a number, got {type(value).__name__}")
    device = like.device if like is not None else None
    return core.as_tensor(float(value), dtype=torch.float64, device=device)


def as_number(value: Any, what: str) -> float:
    """``value`` as a Python float; accepts numbers and one-element tensors (else a check failure)."""
    __tracebackhide__ = True
    if core.is_tensor(value):
        if value.numel() != 1:
            fail(f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}")
        return float(core.tensor_detach(value).cpu().reshape(()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    fail(f"{what} should be a number (e.g. loss.item()), got {type(value).__name__}")
    raise AssertionError  # unreachable


def _fmt_shape(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def compare_close(actual: Any, expected: Any, rtol: float, atol: float, what: str, check_device: bool = True) -> None:
    """Body of :func:`check_close` without the wrapper (for use inside other checks)."""
    __tracebackhide__ = True
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
            got = f"{type(actual).__name__} of length {len(actual)}" if isinstance(actual, (list, tuple)) else type(actual).__name__
            fail(f"{what}: expected a sequence of {len(expected)} values, got {got}")
        for i, (a, e) in enumerate(zip(actual, expected, strict=False)):
            compare_close(a, e, rtol, atol, f"{what}[{i}]", check_device)
        return
    exp = _as_tensor(expected, f"{what} (expected)")
    act = _as_tensor(actual, what, like=exp)
    if tuple(act.shape) != tuple(exp.shape):
        hint = ""
        if exp.dim() == 0 and act.numel() > 1:
            hint = " (a scalar was expected: reduce over the batch, e.g. with .mean())"
        elif exp.dim() == 0:
            hint = " (a scalar was expected)"
        fail(f"{what}: expected shape {_fmt_shape(exp.shape)}, got {_fmt_shape(act.shape)}{hint}")
    if check_device and core.is_tensor(actual) and core.is_tensor(expected) and act.device != exp.device:
        fail(f"{what}: expected a tensor on {exp.device}, got one on {act.device}")
    if act.is_complex() or exp.is_complex():
        fail(f"{what}: complex values are not expected here")
    a = act.to(device="cpu", dtype=torch.float64)
    e = exp.to(device="cpu", dtype=torch.float64)
    bad_nonfinite = ~core.isfinite(a) & core.isfinite(e)
    if bool(bad_nonfinite.any()):
        idx = tuple(int(i) for i in bad_nonfinite.nonzero()[0])
        where = f" at index {idx}" if a.dim() else ""
        fail(
            f"{what}: expected finite values, got {a[idx].item()}{where} "
            f"({int(bad_nonfinite.sum())} of {a.numel()} elements are nan or inf; expected {_fmt(e[idx].item())})"
        )
    ok = core.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if bool(ok.all()):
        return
    excess = ((a - e).abs() - (atol + rtol * e.abs())).masked_fill(ok, float("-inf"))
    if a.dim() == 0:
        fail(f"{what}: expected {_fmt(e.item())}, got {_fmt(a.item())} (rtol={rtol:g}, atol={atol:g})")
    flat = int(excess.flatten().argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape))
    fail(
        f"{what}: expected {_fmt(e[idx].item())} at index {idx}, got {_fmt(a[idx].item())}; "
        f"{int((~ok).sum())} of {a.numel()} elements differ (rtol={rtol:g}, atol={atol:g})"
    )


def same_values(a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Whether :func:`compare_close` accepts ``a`` against ``b`` (devices not compared)."""
    try:
        compare_close(a, b, rtol, atol, "", check_device=False)
    except core.CheckFailure:
        return False
    return True


def compare_naming_slips(got: Any, expected: Any, what: str, slips: Mapping[str, Any], hint: str = "",
                         rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """``got`` against ``expected``; on a mismatch, name the first known slip whose value ``got`` matches
    (``slips`` maps "what the slip does" to its value), else say that the values are not finite (with
    ``hint``, when given) or how they differ."""
    __tracebackhide__ = True
    if same_values(got, expected, rtol, atol):
        return
    for description, value in slips.items():
        if same_values(got, value, rtol, atol) and not same_values(value, expected, rtol, atol):
            fail(f"{what}: it matches what you get when {description}")
    values = got if isinstance(got, (tuple, list)) else (got,)
    if hint and any(not bool(core.isfinite(core.tensor_detach(v)).all()) if core.is_tensor(v) else
                    isinstance(v, float) and not math.isfinite(v) for v in values):
        fail(f"{what}: expected finite values, got nan or inf.{hint}")
    compare_close(got, expected, rtol, atol, what)


@checked
def check_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, what: str = "value") -> None:
    """Assert ``actual`` matches ``expected`` (tensors, numbers, or sequences of them).

    Shapes must be equal, devices equal, and every element satisfy
    ``|actual - expected| <= atol + rtol * |expected|`` (compared in float64; nan
    only matches nan). The message names ``what``, the worst element and both values.
    """
    compare_close(actual, expected, rtol, atol, what)


def _shape_matches(shape: Sequence[int], expected: Shape) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected, strict=False))


@checked
def check_shapes(model_or_fn: Callable[..., Any], inputs: Any, expected: Shape | Sequence[Shape], what: str | None = None) -> Any:
    """Call ``model_or_fn(*inputs)`` without gradients and assert the output shape(s).

    Args:
        model_or_fn: an ``nn.Module`` or a function.
        inputs: a tensor or a tuple of positional arguments.
        expected: one shape such as ``(64, 1, 28, 28)`` (``None`` = any size), or a
            sequence of shapes when the output is a tuple of tensors.
        what: name used in the message (default: the function or class name).

    Returns the output, so later checks can reuse it.
    """
    name = what or getattr(model_or_fn, "__name__", type(model_or_fn).__name__)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    with core.no_grad():
        out = call_student(model_or_fn, *args, what=name)
    multi = len(expected) > 0 and isinstance(expected[0], (tuple, list))
    outputs = out if multi else (out,)
    shapes = expected if multi else (expected,)
    if multi and (not isinstance(out, (tuple, list)) or len(out) != len(shapes)):
        fail(f"{name}: expected {len(shapes)} outputs, got {type(out).__name__}")
    for i, (o, shape) in enumerate(zip(outputs, shapes, strict=False)):
        label = f"{name} output {i}" if multi else name
        if not core.is_tensor(o):
            fail(f"{label}: expected a tensor of shape {_fmt_shape(shape)}, got {type(o).__name__}")
        if not _shape_matches(tuple(o.shape), shape):
            fail(f"{label}: expected output shape {_fmt_shape(shape)}, got {_fmt_shape(tuple(o.shape))}")
    return out


@checked
def check_finite(value: Any, what: str = "value") -> None:
    """Assert every element of a tensor (or tuple of tensors) is finite."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for i, v in enumerate(values):
        t = _as_tensor(v, what)
        bad = ~core.isfinite(t)
        if bool(bad.any()):
            label = what if len(values) == 1 else f"{what}[{i}]"
            fail(f"{label}: expected finite values, got {int(bad.sum())} nan/inf of {t.numel()} elements")


def _scalar(value: Any, what: str) -> float:
    t = _as_tensor(value, what)
    if t.numel() != 1:
        fail(f"{what}: expected a single number, got shape {_fmt_shape(tuple(t.shape))}")
    return float(t.reshape(()).item())


@checked
def check_monotone(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    direction: str = "increasing",
    strict: bool = True,
    labels: Sequence[str] | None = None,
    what: str = "value",
) -> list[float]:
    """Assert ``fn(x)`` is monotone along the ordered ``inputs``.

    Args:
        fn: returns a single number (or one-element tensor) per input.
        inputs: ordered inputs; each is passed as ``fn(x)`` (a tuple is unpacked).
        direction: ``"increasing"`` or ``"decreasing"``.
        strict: require a strict change between neighbours.
        labels: how to name each input in messages (default: ``describe(x)``).
        what: the property, e.g. ``"generator_loss should fall as D(G(z)) rises"``.

    Returns the values, in order.
    """
    if direction not in ("increasing", "decreasing"):
        raise ValueError(f"direction must be 'increasing' or 'decreasing', got {direction!r}")
    values = []
    for x in inputs:
        args = x if isinstance(x, tuple) else (x,)
        values.append(_scalar(call_student(fn, *args, what=getattr(fn, "__name__", "fn")), what))
    names = list(labels) if labels is not None else [describe(x) for x in inputs]
    for i in range(len(values) - 1):
        a, b = values[i], values[i + 1]
        ok = (b > a if strict else b >= a) if direction == "increasing" else (b < a if strict else b <= a)
        if not ok or a != a or b != b:
            fail(f"{what}: from {names[i]} to {names[i + 1]} the value went {_fmt(a)} -> {_fmt(b)}; "
                 f"expected it to be {'strictly ' if strict else ''}{direction}")
    return values


@checked
def check_invariant(
    fn: Callable[..., Any],
    inputs: tuple[Any, ...],
    transform: Callable[..., tuple[Any, ...]],
    description: str,
    output_transform: Callable[[Any], Any] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    what: str = "value",
) -> None:
    """Assert ``fn(*transform(*inputs))`` equals ``fn(*inputs)`` (or ``output_transform`` of it).

    ``description`` says what the transform does, e.g. ``"shuffling the batch"``.
    """
    name = getattr(fn, "__name__", "fn")
    before = call_student(fn, *inputs, what=name)
    after = call_student(fn, *transform(*inputs), what=name)
    expected = output_transform(before) if output_transform is not None else before
    compare_close(after, expected, rtol, atol, f"{what} after {description}")

"""Checks for models and gradient flow: ``build_model`` and ``call_model`` (student
classes built and called with readable failures), ``check_gradients``,
``check_every_parameter_learns``, ``check_output_range``, ``check_parameter_count``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from autograder.checks import core
from autograder.checks.core import CheckFailure, call_student, checked, describe, fail
from autograder.checks.tensors import compare_close


def build_model(cls: Callable[..., nn.Module], what: str, device: torch.device | str | None = None, **kwargs: Any) -> nn.Module:
    """``cls(**kwargs)`` on ``device``; a failing constructor becomes a readable check failure."""
    __tracebackhide__ = True
    try:
        model = call_student(cls, what=f"{what}.__init__", **kwargs)
    except CheckFailure as exc:
        if isinstance(exc.cause, TypeError):
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            fail(f"{what}({args}) failed: {exc.cause}. Keep the constructor's arguments as given.")
        raise
    if not isinstance(model, nn.Module):
        fail(f"{what}(...) should build an nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        fail(f"{what} has no trainable parameters")
    return model.to(device) if device is not None else model


def call_model(model: Callable[..., Any], what: str, *args: Any) -> torch.Tensor:
    """``model(*args)``, which must return a tensor."""
    __tracebackhide__ = True
    out = call_student(model, *args, what=what)
    if not core.is_tensor(out):
        fail(f"{what} should return a tensor, got {type(out).__name__}")
    return out


@checked
def check_every_parameter_learns(model: nn.Module, inputs: Any, seed: int = 0, what: str | None = None) -> None:
    """A random linear loss on the output sends a finite, non-zero gradient to every trainable parameter.

    ``inputs`` is a tensor or a tuple of positional arguments. Catches layers that are
    defined but unused (a label embedding never joined in) and detached paths.
    """
    name = what or type(model).__name__
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    model.zero_grad(set_to_none=True)
    out = call_model(model, name, *args)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype).to(out.device)
    (out * weights).sum().backward()
    dead = [n for n, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not bool(core.isfinite(p.grad).all()) or float(p.grad.abs().sum()) == 0.0)]
    model.zero_grad(set_to_none=True)
    if dead:
        fail(f"{name}: no (or a non-finite) gradient reaches these parameters: {', '.join(dead[:6])}"
             f"{' ...' if len(dead) > 6 else ''}. Every layer you define should be used in forward, and nothing detached.")


def _leaves(inputs: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[list[torch.Tensor]]]:
    """Fresh leaf copies of float tensors; modules keep their own parameters."""
    args: list[Any] = []
    groups: list[list[torch.Tensor]] = []
    for a in inputs:
        if core.is_tensor(a) and a.is_floating_point():
            t = core.tensor_clone(core.tensor_detach(a)).requires_grad_(True)
            args.append(t)
            groups.append([t])
        elif isinstance(a, nn.Module):
            args.append(a)
            groups.append([p for p in a.parameters() if p.requires_grad])
        else:
            args.append(a)
            groups.append([])
    return tuple(args), groups


def _grads(out: Any, groups: list[list[torch.Tensor]], what: str) -> list[list[torch.Tensor | None]]:
    if not core.is_tensor(out):
        fail(f"{what}: expected a tensor, got {type(out).__name__}")
    if not out.requires_grad:
        fail(f"{what}: the result does not depend differentiably on any input "
             "(did you use .detach(), .item() or torch.no_grad()?)")
    flat = [t for g in groups for t in g]
    grads = list(core.autograd_grad(out.sum(), flat, allow_unused=True)) if flat else []
    result, k = [], 0
    for g in groups:
        result.append(grads[k:k + len(g)])
        k += len(g)
    return result


def _norm(grads: list[torch.Tensor | None]) -> float:
    total = 0.0
    for g in grads:
        if g is not None:
            total += float(core.tensor_detach(g).double().pow(2).sum())
    return total ** 0.5


@checked
def check_gradients(
    fn: Callable[..., Any],
    inputs: tuple[Any, ...],
    reference_fn: Callable[..., Any] | None = None,
    nonzero: Sequence[int] = (),
    zero: Sequence[int] = (),
    rtol: float = 1e-4,
    atol: float = 1e-6,
    hint: str = "",
    what: str | None = None,
) -> None:
    """Check the gradients of ``fn(*inputs)`` (summed to a scalar).

    Gradients are taken w.r.t. every floating tensor argument (a fresh leaf copy)
    and every ``nn.Module`` argument's parameters. Checks that:

    - all gradients are finite;
    - arguments listed in ``nonzero`` receive a non-zero gradient;
    - arguments listed in ``zero`` receive none (or an all-zero one), e.g. a
      generator whose output should have been detached; ``hint`` is appended to
      that message;
    - with ``reference_fn``, each gradient matches the reference's on the same
      inputs (modules are shared, tensors copied).
    """
    name = what or getattr(fn, "__name__", "fn")
    args, groups = _leaves(tuple(inputs))
    out = call_student(fn, *args, what=name)
    grads = _grads(out, groups, name)
    for i, gs in enumerate(grads):
        for g in gs:
            if g is not None and not bool(core.isfinite(g).all()):
                fail(f"gradient of {name} w.r.t. argument {i} ({describe(inputs[i])}) contains nan or inf")
    for i in nonzero:
        if _norm(grads[i]) == 0.0:
            fail(f"gradient of {name} w.r.t. argument {i} ({describe(inputs[i])}) is zero or missing; "
                 "expected the result to depend on it")
    for i in zero:
        norm = _norm(grads[i])
        if norm != 0.0:
            fail(f"gradient of {name} w.r.t. argument {i} ({describe(inputs[i])}) has norm {norm:.4g}; "
                 f"expected no gradient to reach it{'; ' + hint if hint else ''}")
    if reference_fn is None:
        return
    r_args, r_groups = _leaves(tuple(inputs))
    r_grads = _grads(reference_fn(*r_args), r_groups, "reference")
    for i, (gs, gr) in enumerate(zip(grads, r_grads, strict=False)):
        for j, (a, b) in enumerate(zip(gs, gr, strict=False)):
            label = f"gradient of {name} w.r.t. argument {i}" + (f" (parameter {j})" if len(gs) > 1 else "")
            if b is None:
                continue
            if a is None:
                fail(f"{label}: missing, expected one of norm {_norm([b]):.4g}")
            compare_close(a, b, rtol, atol, label)


@checked
def check_output_range(
    model_or_fn: Callable[..., Any], inputs: Any, low: float, high: float, what: str | None = None
) -> None:
    """Assert every output value lies in ``[low, high]`` (e.g. ``[-1, 1]`` for tanh generators)."""
    name = what or getattr(model_or_fn, "__name__", type(model_or_fn).__name__)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    with core.no_grad():
        out = call_student(model_or_fn, *args, what=name)
    if not core.is_tensor(out):
        fail(f"{name}: expected a tensor output, got {type(out).__name__}")
    lo, hi = float(out.min()), float(out.max())
    if not (low <= lo and hi <= high):
        fail(f"{name}: expected outputs in [{low:g}, {high:g}], got values in [{lo:.4g}, {hi:.4g}]")


@checked
def check_parameter_count(module: nn.Module, expected: int, what: str | None = None) -> None:
    """Assert the number of trainable parameters (architecture tables give it)."""
    name = what or type(module).__name__
    count = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if count != expected:
        fail(f"{name}: expected {expected:,} trainable parameters, got {count:,}")

"""Checks for models and gradient flow: ``build_model`` and ``call_model`` (student
classes built and called with readable failures), ``check_gradients``,
``check_every_parameter_learns`` and ``check_output_range``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from autograder.checks import core
from autograder.checks.core import CheckFailure, call_student, checked, fail


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

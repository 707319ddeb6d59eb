"""Checks for training code: ``check_smoke_training``, ``check_step_updates_only``, and ``check_step`` (a student's step against the same step
written by the course, on copies of the same models), with ``swapped_in`` to grade a
step with the reference losses bound in the notebook.

Training is graded by short runs on one fixed batch: losses stay finite, the loss
falls when the model overfits that batch, a discriminator step changes only the
discriminator and a generator step only the generator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from autograder.checks import core
from autograder.checks.core import call_student, checked, fail
from autograder.checks.tensors import as_number

Modules = nn.Module | Sequence[nn.Module]


def _loss_value(out: Any, key: str | None, what: str, step: int) -> dict[str, float]:
    if isinstance(out, dict):
        values = {str(k): v for k, v in out.items()}
    else:
        values = {key or "loss": out}
    result = {}
    for k, v in values.items():
        if core.is_tensor(v):
            if v.numel() != 1:
                fail(f"{what}: step {step} returned {k} of shape {tuple(v.shape)}; expected a single number")
            result[k] = float(v.detach())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            result[k] = float(v)
        else:
            fail(f"{what}: step {step} returned {type(v).__name__} for {k}; expected a number or a scalar tensor")
    return result


@checked
def check_smoke_training(
    step_fn: Callable[[], Any],
    steps: int = 30,
    min_drop: float = 0.2,
    window: int = 3,
    key: str | None = None,
    what: str = "training loss",
) -> list[float]:
    """Run ``step_fn()`` ``steps`` times on one batch; losses must stay finite and fall.

    ``step_fn`` performs one optimisation step and returns the loss (a number, a
    scalar tensor, or a dict of them; ``key`` selects the one that must fall,
    default the first one). With ``first``/``last`` the means of the first/last
    ``window`` losses, the check requires ``last <= first - min_drop * |first|``.

    Returns the monitored losses.
    """
    history: list[float] = []
    for step in range(steps):
        values = _loss_value(call_student(step_fn, what="the training step"), key, what, step)
        for k, v in values.items():
            if v != v or v in (float("inf"), float("-inf")):
                fail(f"{what}: {k} became {v} at step {step}; expected finite losses "
                     "(check the learning rate and use losses computed from logits)")
        history.append(values[key] if key is not None and key in values else next(iter(values.values())))
    w = max(1, min(window, steps // 2))
    first = sum(history[:w]) / w
    last = sum(history[-w:]) / w
    target = first - min_drop * abs(first)
    if not last <= target:
        fail(f"{what} should fall when overfitting one batch: mean of the first {w} steps {first:.4g}, "
             f"of the last {w} steps {last:.4g} after {steps} steps (expected at most {target:.4g}); "
             "check that the optimizer steps the right parameters and gradients are zeroed each step")
    return history


def _params(modules: Modules) -> list[torch.Tensor]:
    mods = [modules] if isinstance(modules, nn.Module) else list(modules)
    return [p for m in mods for p in m.parameters()]


def _label(modules: Modules) -> str:
    mods = [modules] if isinstance(modules, nn.Module) else list(modules)
    return " and ".join(type(m).__name__ for m in mods)


@checked
def check_step_updates_only(
    step_fn: Callable[[], Any],
    changes: Modules,
    frozen: Modules,
    check_frozen_grads: bool = True,
    hint: str = "",
    what: str = "the step",
) -> None:
    """Run ``step_fn()`` once: parameters of ``changes`` must change, those of ``frozen`` must not.

    With ``check_frozen_grads`` the frozen modules must also end the step without
    gradients (their ``.grad`` is cleared first), which catches a missing
    ``.detach()`` on generated images in a discriminator step. ``hint`` is appended
    to that message.
    """
    frozen_params = _params(frozen)
    if check_frozen_grads:
        for p in frozen_params:
            p.grad = None
    before_c = [core.tensor_clone(core.tensor_detach(p)) for p in _params(changes)]
    before_f = [core.tensor_clone(core.tensor_detach(p)) for p in frozen_params]
    call_student(step_fn, what=what)
    moved = max((float((core.tensor_detach(p) - b).abs().max()) for p, b in zip(_params(changes), before_c, strict=False) if p.numel()), default=0.0)
    if moved == 0.0:
        fail(f"{what}: the parameters of {_label(changes)} did not change; expected one optimizer step on them "
             "(loss.backward() then optimizer.step())")
    drift = max((float((core.tensor_detach(p) - b).abs().max()) for p, b in zip(frozen_params, before_f, strict=False) if p.numel()), default=0.0)
    if drift != 0.0:
        fail(f"{what}: the parameters of {_label(frozen)} changed (max change {drift:.3g}); "
             f"this step must only update {_label(changes)}")
    if check_frozen_grads:
        norm = sum(float(p.grad.detach().double().pow(2).sum()) for p in frozen_params if p.grad is not None) ** 0.5
        if norm != 0.0:
            fail(f"{what}: {_label(frozen)} received gradients (norm {norm:.4g}); "
                 f"expected none{'; ' + hint if hint else ''}")


# --- one optimisation step against the same step written by the course ------------------------


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    """Detached copies of a module's parameters."""
    return [core.tensor_clone(core.tensor_detach(p)) for p in module.parameters()]


def max_param_diff(a: Sequence[torch.Tensor] | nn.Module, b: Sequence[torch.Tensor] | nn.Module) -> float:
    """Largest absolute difference between two parameter lists (or modules); inf if they do not match."""
    pa = list(a.parameters()) if isinstance(a, nn.Module) else list(a)
    pb = list(b.parameters()) if isinstance(b, nn.Module) else list(b)
    if len(pa) != len(pb) or any(x.shape != y.shape for x, y in zip(pa, pb, strict=True)):
        return float("inf")
    return max((float((core.tensor_detach(x) - core.tensor_detach(y)).abs().max()) for x, y in zip(pa, pb, strict=True)
                if x.numel()), default=0.0)


def fill_grads(module: nn.Module, value: float = 0.5) -> None:
    """Put stale gradients in ``module`` (a missing ``zero_grad()`` then shows in the result)."""
    for p in module.parameters():
        p.grad = torch.full_like(p, value)


def grads_leaked(module: nn.Module) -> bool:
    """True when any parameter of ``module`` holds a non-zero gradient."""
    return any(p.grad is not None and bool((p.grad != 0).any()) for p in module.parameters())


@contextlib.contextmanager
def swapped_in(fn: Callable[..., Any], **names: Any) -> Iterator[None]:
    """Bind ``names`` in the namespace ``fn`` was defined in (the notebook) for the duration.

    A step function looks its loss up by name when it runs; binding the reference loss
    there grades the step on its own, so a slip in the student's loss costs only that
    loss's points. The previous bindings are restored afterwards.
    """
    namespace = getattr(fn, "__globals__", None)
    if not isinstance(namespace, dict):
        yield
        return
    missing = object()
    saved = {name: namespace.get(name, missing) for name in names}
    namespace.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


State = dict[str, Any]


@checked
def check_step(
    what: str,
    run_student: Callable[[State], Any],
    run_reference: Callable[[State], Any],
    make_state: Callable[[], State],
    updated: Sequence[str],
    frozen: Sequence[str] = (),
    variants: Mapping[str, Callable[[State], Any]] | None = None,
    atol: float = 1e-5,
    result_tol: float | None = 1e-5,
    unchanged: Sequence[str] = (),
) -> State:
    """Run a student's step and the reference step on identical copies; compare the modules after.

    ``make_state()`` returns a dict of modules, optimisers and inputs (built from a fixed
    seed). Stale gradients are put into every module of ``updated`` first, so a missing
    ``zero_grad()`` changes the result. Checks, in order: modules in ``frozen`` keep their
    parameters and get no gradient (a missing ``.detach()`` shows here); modules in
    ``updated`` moved, and moved as the reference did (``atol``); modules in ``unchanged``
    keep their parameters but may hold gradients (D after a generator step); ``variants`` (wrong
    steps) name the slip on a mismatch. With ``result_tol``, the returned value (a
    number, or a dict of numbers) must match the reference's return value.

    Returns the student's state after the step (with ``"result"`` and
    ``"expected"`` added).
    """
    state, ref_state = make_state(), make_state()
    for key in updated:
        fill_grads(state[key])
        fill_grads(ref_state[key])
    for key in frozen:
        state[key].zero_grad(set_to_none=True)
    before = {key: snapshot(state[key]) for key in (*updated, *frozen, *unchanged)}
    result = call_student(run_student, state, what=what)
    expected = run_reference(ref_state)
    for key in frozen:
        if max_param_diff(state[key], before[key]) > 0:
            fail(f"{what} changed the parameters of {key}: only {', '.join(updated)} may change in this step")
        if grads_leaked(state[key]):
            fail(f"{what} back-propagated into {key} ({key}'s parameters received gradients). "
                 + ("Detach the fakes in the discriminator step (fake.detach(), or generate them under torch.no_grad())."
                    if key.startswith("G") else "Only the loss of the network being trained should be back-propagated here."))
    for key in unchanged:
        if max_param_diff(state[key], before[key]) > 0:
            fail(f"{what} changed the parameters of {key}: only {', '.join(updated)} may change in this step "
                 "(step the optimizer that holds their parameters)")
    for key in updated:
        if max_param_diff(state[key], before[key]) == 0:
            fail(f"{what} did not change {key}'s parameters: call the optimizer's step() after backward()")
    worst = max(max_param_diff(state[key], ref_state[key]) for key in updated)
    if worst > atol:
        for description, variant in (variants or {}).items():
            alt = make_state()
            for key in updated:
                fill_grads(alt[key])
            variant(alt)
            if max(max_param_diff(state[key], alt[key]) for key in updated) <= atol:
                fail(f"{what}: the parameters after the step are not the expected ones; they match {description}.")
        fail(f"{what}: the parameters after the step differ from the expected update "
             f"(largest difference {worst:.3g}). Check the loss, that zero_grad() comes before backward(), "
             "and that the inputs given to the function are the ones used.")
    if result_tol is not None:
        _compare_results(what, result, expected, result_tol)
    state["result"], state["expected"] = result, expected
    return state


def _compare_results(what: str, result: Any, expected: Any, tol: float) -> None:
    if isinstance(expected, Mapping):
        if not isinstance(result, Mapping):
            fail(f"{what} should return a dict with keys {', '.join(expected)}, got {type(result).__name__}")
        missing = [k for k in expected if k not in result]
        if missing:
            fail(f"{what}'s dict lacks {', '.join(missing)}; expected keys {', '.join(expected)}")
        for key, want in expected.items():
            _compare_results(f"{what}[{key!r}]", result[key], want, tol)
        return
    got, want = as_number(result, f"{what}'s return value"), as_number(expected, "the reference")
    if abs(got - want) > tol * (1 + abs(want)):
        fail(f"{what} should return {want:.6g} (the loss before the update), got {got:.6g}")

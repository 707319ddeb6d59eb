"""Smoke checks for training code: ``check_smoke_training``, ``check_step_updates_only``
and ``check_gan_steps``.

Training is graded by short runs on one fixed batch: losses stay finite, the loss
falls when the model overfits that batch, a discriminator step changes only the
discriminator and a generator step only the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from autograder.checks import _env
from autograder.checks._env import call_student, checked, fail

Modules = nn.Module | Sequence[nn.Module]


def _loss_value(out: Any, key: str | None, what: str, step: int) -> dict[str, float]:
    if isinstance(out, dict):
        values = {str(k): v for k, v in out.items()}
    else:
        values = {key or "loss": out}
    result = {}
    for k, v in values.items():
        if _env.is_tensor(v):
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
    before_c = [_env.tensor_clone(_env.tensor_detach(p)) for p in _params(changes)]
    before_f = [_env.tensor_clone(_env.tensor_detach(p)) for p in frozen_params]
    call_student(step_fn, what=what)
    moved = max((float((_env.tensor_detach(p) - b).abs().max()) for p, b in zip(_params(changes), before_c, strict=False) if p.numel()), default=0.0)
    if moved == 0.0:
        fail(f"{what}: the parameters of {_label(changes)} did not change; expected one optimizer step on them "
             "(loss.backward() then optimizer.step())")
    drift = max((float((_env.tensor_detach(p) - b).abs().max()) for p, b in zip(frozen_params, before_f, strict=False) if p.numel()), default=0.0)
    if drift != 0.0:
        fail(f"{what}: the parameters of {_label(frozen)} changed (max change {drift:.3g}); "
             f"this step must only update {_label(changes)}")
    if check_frozen_grads:
        norm = sum(float(p.grad.detach().double().pow(2).sum()) for p in frozen_params if p.grad is not None) ** 0.5
        if norm != 0.0:
            fail(f"{what}: {_label(frozen)} received gradients (norm {norm:.4g}); "
                 f"expected none{'; ' + hint if hint else ''}")


@checked
def check_gan_steps(
    d_step: Callable[[], Any], g_step: Callable[[], Any], generator: nn.Module, discriminator: nn.Module
) -> None:
    """A discriminator step changes only D (and leaves G without gradients); a generator step only G."""
    check_step_updates_only.__wrapped__(
        d_step, discriminator, generator, True,
        "detach the generated images in the discriminator step (fake = G(z).detach())",
        "the discriminator step",
    )
    check_step_updates_only.__wrapped__(g_step, generator, discriminator, False, "", "the generator step")

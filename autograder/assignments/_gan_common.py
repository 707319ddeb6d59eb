"""Machinery shared by the ``cgan_mnist`` and ``loss_saturation`` checks.

* :func:`quiet` runs student code with warnings silenced (nbgrader scores a test
  cell 0 when anything reaches stderr).
* :func:`check_loss_fn` compares a student's loss with a reference on the same
  inputs: value, shape, gradient w.r.t. the logits, and names the usual slip
  (flipped sign, ``sum`` for ``mean``, swapped roles, ...) when it matches one.
* :func:`check_step` compares one optimisation step of a student's function
  with the same step written by the course, on copies of the same tiny models,
  optimisers and inputs; it names what went wrong (no ``zero_grad``, gradient
  leaking into the other network, wrong loss) instead of only saying "differs".
* Tiny multilayer perceptrons (:class:`TinyGenerator`, :class:`TinyDiscriminator`,
  conditional when built with ``num_classes``) without batch norm or dropout, so
  a step is deterministic and cheap.

Every failing check raises ``AssertionError`` with a message that says what was
expected and what came.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autograder.checks.core import checked

F_ = TypeVar("F_", bound=Callable[..., Any])

__all__ = [
    "TinyDiscriminator",
    "TinyGenerator",
    "as_number",
    "bound_in_notebook",
    "build_model",
    "call_model",
    "check_loss_fn",
    "check_step",
    "graded",
    "max_param_diff",
    "quiet",
    "snapshot",
]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings raised inside (student code must not write to stderr in a test cell)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def graded(check: F_) -> F_:
    """Decorator for a public check: the kit's grading context, and the notebook's RNG left alone.

    ``autograder.checks``' ``checked`` adds the tamper guard, deterministic
    algorithms and silenced warnings/stderr. Checks seed their own inputs; forking
    the RNG keeps a student's later cells (training, sampling) reproducible whether
    or not a check ran before them.
    """
    inner = checked(check)

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            return inner(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def as_number(value: Any, what: str) -> float:
    """``value`` as a Python float; accepts numbers and one-element tensors."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise AssertionError(f"{what} should be a single number, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().cpu().reshape(()))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise AssertionError(f"{what} should be a number (e.g. loss.item()), got {type(value).__name__}")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _close(a: Tensor, b: Tensor, rtol: float, atol: float) -> bool:
    if a.shape != b.shape:
        return False
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if not bool(torch.isfinite(a).all()):
        return False
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol))


@contextmanager
def bound_in_notebook(fn: Callable[..., Any], **names: Any) -> Iterator[None]:
    """Bind ``names`` in the namespace ``fn`` was defined in (the notebook) for the duration.

    A step function looks its loss up by name when it runs; binding the reference
    loss there grades the step on its own, so a slip in the student's loss costs
    only that loss's points. The previous bindings are restored afterwards.
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


# --- losses -------------------------------------------------------------------------------------


def check_loss_fn(
    name: str,
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    reference: Callable[..., Tensor],
    slips: Mapping[str, Callable[..., Tensor]] = (),  # type: ignore[assignment]
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_grad: bool = True,
    hint: str = "",
) -> None:
    """Check ``fn(*inputs)`` against ``reference(*inputs)``: a scalar tensor, same value, same gradient.

    ``slips`` maps a description ("the sign is flipped") to a function computing
    what that slip would return; the first one that matches the student's value
    is named in the failure message.
    """
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    with quiet():
        try:
            out = fn(*leaves)
        except NotImplementedError:
            raise AssertionError(f"{name} is not implemented yet") from None
    if not isinstance(out, Tensor):
        raise AssertionError(
            f"{name} should return a torch.Tensor (a scalar you can call .backward() on), "
            f"got {type(out).__name__}"
        )
    if out.numel() != 1 or out.dim() > 1:
        raise AssertionError(
            f"{name} should return a scalar (the mean over the batch), got shape {tuple(out.shape)}"
        )
    out = out.reshape(())
    with torch.no_grad():
        expected = reference(*[x.detach() for x in leaves])
    shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
    if not bool(torch.isfinite(out.detach()).all()):
        raise AssertionError(
            f"{name} returned {_fmt(float(out.detach()))} for inputs of shape {shapes} "
            f"(expected {_fmt(float(expected))}): compute it from the logits in a numerically stable "
            "way (F.binary_cross_entropy_with_logits or F.softplus) instead of log(sigmoid(.))"
        )
    extra_hint = hint
    if not _close(out, expected, rtol, atol):
        got = float(out.detach())
        hint = ""
        for description, slip in dict(slips).items():
            with torch.no_grad():
                alt = slip(*[x.detach() for x in leaves]).reshape(())
            if _close(out, alt, rtol, atol) and not _close(alt, expected, rtol, atol):
                hint = f" It matches what you get when {description}."
                break
        raise AssertionError(
            f"{name} on logits of shape {shapes}: expected {_fmt(float(expected))}, got {_fmt(got)}.{hint}"
            + (f" {extra_hint}" if extra_hint else "")
        )
    if not check_grad:
        return
    if out.grad_fn is None:
        raise AssertionError(
            f"{name} returned a tensor that is not connected to its inputs (no grad_fn): "
            "keep every operation in torch (no .item(), .detach(), numpy or float())"
        )
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    ref_leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    ref_grads = torch.autograd.grad(reference(*ref_leaves), ref_leaves, allow_unused=True)
    for i, (g, r) in enumerate(zip(grads, ref_grads, strict=True)):
        r = torch.zeros_like(ref_leaves[i]) if r is None else r
        g = torch.zeros_like(leaves[i]) if g is None else g
        if not _close(g, r, max(rtol, 1e-4), max(atol, 1e-6)):
            raise AssertionError(
                f"{name}: the value is right but its gradient with respect to input {i + 1} is not "
                f"(largest difference {float((g.double() - r.double()).abs().max()):.3g}); "
                "did a .detach() or a constant replace part of the computation?"
            )


# --- parameters ---------------------------------------------------------------------------------


def snapshot(module: nn.Module) -> list[Tensor]:
    """Detached copies of a module's parameters."""
    return [p.detach().clone() for p in module.parameters()]


def max_param_diff(a: Sequence[Tensor] | nn.Module, b: Sequence[Tensor] | nn.Module) -> float:
    """Largest absolute difference between two parameter lists (or modules)."""
    pa = list(a.parameters()) if isinstance(a, nn.Module) else list(a)
    pb = list(b.parameters()) if isinstance(b, nn.Module) else list(b)
    if len(pa) != len(pb):
        return math.inf
    return max((float((x.detach() - y.detach()).abs().max()) for x, y in zip(pa, pb, strict=True)), default=0.0)


def fill_grads(module: nn.Module, value: float = 0.5) -> None:
    """Put stale gradients in ``module`` (a missing ``zero_grad()`` then shows in the result)."""
    for p in module.parameters():
        p.grad = torch.full_like(p, value)


def grads_leaked(module: nn.Module) -> bool:
    """True when any parameter of ``module`` holds a non-zero gradient."""
    return any(p.grad is not None and bool((p.grad != 0).any()) for p in module.parameters())


# --- student models ----------------------------------------------------------------------------


def build_model(cls: Callable[..., nn.Module], what: str, device: torch.device, **kwargs: Any) -> nn.Module:
    """``cls(**kwargs)`` on ``device``; a missing or failing constructor becomes a readable failure."""
    with quiet():
        try:
            model = cls(**kwargs)
        except NotImplementedError:
            raise AssertionError(f"{what}.__init__ is not implemented yet") from None
        except TypeError as err:
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise AssertionError(f"{what}({args}) failed: {err}. Keep the constructor's arguments as given.") from None
    if not isinstance(model, nn.Module):
        raise AssertionError(f"{what}(...) should build an nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise AssertionError(f"{what} has no trainable parameters")
    return model.to(device)


def call_model(model: nn.Module, what: str, *args: Tensor) -> Tensor:
    """``model(*args)``, which must return a tensor; warnings silenced."""
    with quiet():
        try:
            out = model(*args)
        except NotImplementedError:
            raise AssertionError(f"{what}.forward is not implemented yet") from None
    if not isinstance(out, Tensor):
        raise AssertionError(f"{what} should return a tensor, got {type(out).__name__}")
    return out


# --- tiny models -------------------------------------------------------------------------------


class TinyGenerator(nn.Module):
    """``z (N, z_dim)`` [and ``labels (N,)``] -> images ``(N, *image_shape)`` in [-1, 1]; a 2-layer MLP."""

    def __init__(self, z_dim: int = 8, image_shape: tuple[int, ...] = (1, 28, 28), num_classes: int | None = None, hidden: int = 32) -> None:
        super().__init__()
        self.z_dim, self.image_shape, self.num_classes = z_dim, tuple(image_shape), num_classes
        extra = num_classes or 0
        self.net = nn.Sequential(
            nn.Linear(z_dim + extra, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, math.prod(image_shape)), nn.Tanh()
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes is not None:
            if labels is None:
                raise TypeError("this conditional generator needs labels: call G(z, labels)")
            z = torch.cat([z, F.one_hot(labels.long(), self.num_classes).to(z.dtype)], dim=1)
        return self.net(z).view(z.shape[0], *self.image_shape)


class TinyDiscriminator(nn.Module):
    """Images [and labels] -> logits ``(N,)``; a 2-layer MLP, no sigmoid."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 28, 28), num_classes: int | None = None, hidden: int = 32) -> None:
        super().__init__()
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        extra = num_classes or 0
        self.net = nn.Sequential(nn.Linear(math.prod(image_shape) + extra, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = x.reshape(x.shape[0], -1)
        if self.num_classes is not None:
            if labels is None:
                raise TypeError("this conditional discriminator needs labels: call D(x, labels)")
            h = torch.cat([h, F.one_hot(labels.long(), self.num_classes).to(h.dtype)], dim=1)
        return self.net(h).squeeze(1)


# --- one optimisation step -----------------------------------------------------------------------


def check_step(
    name: str,
    run_student: Callable[[dict[str, Any]], Any],
    run_reference: Callable[[dict[str, Any]], Any],
    make_state: Callable[[], dict[str, Any]],
    updated: Sequence[str],
    frozen: Sequence[str],
    variants: Mapping[str, Callable[[dict[str, Any]], Any]] = (),  # type: ignore[assignment]
    atol: float = 1e-5,
) -> tuple[Any, Any, dict[str, Any]]:
    """Run a student's step and the reference step on identical copies; compare the modules after.

    ``make_state()`` returns a dict of modules, optimisers and inputs (built from
    a fixed seed). Stale gradients are put into every module of ``updated`` first,
    so a missing ``zero_grad()`` changes the result. Checks, in order: modules in
    ``frozen`` keep their parameters and get no gradient (a missing ``.detach()``
    shows here), modules in ``updated`` moved, and moved as the reference did.
    ``variants`` are alternative (wrong) steps used to name the slip on a
    mismatch. Returns ``(student_result, reference_result, student_state)``.
    """
    state, ref_state = make_state(), make_state()
    for key in updated:
        fill_grads(state[key])
        fill_grads(ref_state[key])
    before = {key: snapshot(state[key]) for key in (*updated, *frozen)}
    with quiet():
        try:
            result = run_student(state)
        except NotImplementedError:
            raise AssertionError(f"{name} is not implemented yet") from None
    ref_result = run_reference(ref_state)
    for key in frozen:
        if max_param_diff(state[key], before[key]) > 0:
            raise AssertionError(f"{name} changed the parameters of {key}: only {', '.join(updated)} may change in this step")
        if grads_leaked(state[key]):
            raise AssertionError(
                f"{name} back-propagated into {key} ({key}'s parameters received gradients). "
                + ("Detach the fakes in the discriminator step (fake.detach(), or generate them under torch.no_grad())."
                   if key.startswith("G") else "Only the generator's loss should be back-propagated here.")
            )
    for key in updated:
        if max_param_diff(state[key], before[key]) == 0:
            raise AssertionError(f"{name} did not change {key}'s parameters: call the optimiser's step() after backward()")
    worst = max(max_param_diff(state[key], ref_state[key]) for key in updated)
    if worst > atol:
        for description, variant in dict(variants).items():
            alt_state = make_state()
            for key in updated:
                fill_grads(alt_state[key])
            with quiet():
                variant(alt_state)
            if max(max_param_diff(state[key], alt_state[key]) for key in updated) <= atol:
                raise AssertionError(f"{name}: the parameters after the step are not the expected ones; they match {description}.")
        raise AssertionError(
            f"{name}: the parameters after the step differ from the expected update "
            f"(largest difference {worst:.3g}). Check the loss, that zero_grad() comes before backward(), "
            "and that the inputs given to the function are the ones used."
        )
    return result, ref_result, state


"""Checks for the ``loss_saturation`` assignment (minimax vs non-saturating vs least squares).

The graded cells of ``solutions/loss_saturation/loss_saturation.ipynb`` call
these. References are computed at grade time with ``gan_utils.losses`` and, for
derivatives, with autograd in float64; a training iteration is compared with the
same iteration written by the course on copies of the same tiny models. Every
failure is an ``AssertionError`` that says what was expected and what came.

Student interface (names fixed by the notebook), all losses from raw
discriminator outputs and averaged over the batch:

* ``minimax_generator_loss(l)`` = mean log(1 - sigmoid(l)),
  ``nonsaturating_generator_loss(l)`` = mean -log sigmoid(l),
  ``lsgan_generator_loss(l)`` = mean (l - 1)^2;
* ``bce_discriminator_loss(l_real, l_fake)``, ``lsgan_discriminator_loss(l_real, l_fake)``;
* ``dloss_dlogit(kind, l)``: the derivative of the per-sample generator loss,
  elementwise, same shape as ``l``;
* ``train_iteration(kind, G, D, opt_g, opt_d, real_batches, latents)`` -> dict with
  ``loss_d``, ``loss_g``, ``d_fake``, ``grad_norm``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from autograder.assignments._gan_common import (
    TinyDiscriminator,
    TinyGenerator,
    as_number,
    bound_in_notebook,
    check_loss_fn,
    check_step,
    graded,
    quiet,
)
from gan_utils.losses import (
    bce_discriminator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)

__all__ = [
    "KINDS",
    "check_bce_discriminator_loss",
    "check_dloss_dlogit",
    "check_lsgan_discriminator_loss",
    "check_lsgan_generator_loss",
    "check_minimax_generator_loss",
    "check_nonsaturating_generator_loss",
    "check_stable",
    "check_train_iteration",
    "reference_train_iteration",
]

KINDS = ("minimax", "nonsaturating", "lsgan")
STABLE_HINT = ("Work from the logits with F.softplus or F.binary_cross_entropy_with_logits: log(sigmoid(l)) "
               "underflows and nn.BCELoss on probabilities clips the log at -100.")
_G_REF = {"minimax": minimax_generator_loss, "nonsaturating": nonsaturating_generator_loss, "lsgan": lsgan_generator_loss}
_D_REF = {"minimax": bce_discriminator_loss, "nonsaturating": bce_discriminator_loss, "lsgan": lsgan_discriminator_loss}


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def _logits(n: int, scale: float, seed: int, device: torch.device, shift: float = 0.0) -> Tensor:
    return (torch.randn(n, generator=torch.Generator().manual_seed(seed)) * scale + shift).to(device)


_CASES = ((8, 1.0, 0.0), (64, 3.0, -2.0), (5, 6.0, 1.0))


# --- generator losses ---------------------------------------------------------------------------


@graded
def check_minimax_generator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(l)`` = mean log(1 - sigmoid(l)) (to minimise), value and gradient."""
    dev = _device(device)
    slips = {
        "you wrote the non-saturating loss -log D(G(z)) (this one is log(1 - D(G(z))))": nonsaturating_generator_loss,
        "the sign is flipped (minimise log(1 - D), do not maximise it)": lambda f: -minimax_generator_loss(f),
        "you sum over the batch instead of averaging": lambda f: minimax_generator_loss(f, reduction="sum"),
        "a sigmoid is applied to values that are already logits": lambda f: minimax_generator_loss(torch.sigmoid(f)),
    }
    for i, (n, scale, shift) in enumerate(_CASES):
        check_loss_fn("minimax_generator_loss", fn, (_logits(n, scale, 40 + i, dev, shift),), minimax_generator_loss, slips)


@graded
def check_nonsaturating_generator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(l)`` = mean -log sigmoid(l), value and gradient."""
    dev = _device(device)
    slips = {
        "you wrote the saturating (minimax) loss log(1 - D(G(z)))": minimax_generator_loss,
        "the sign is flipped": lambda f: -nonsaturating_generator_loss(f),
        "you sum over the batch instead of averaging": lambda f: nonsaturating_generator_loss(f, reduction="sum"),
        "the fakes are labelled 0 (that is the discriminator's target, not the generator's)": lambda f: F.softplus(f).mean(),
        "a sigmoid is applied to values that are already logits": lambda f: nonsaturating_generator_loss(torch.sigmoid(f)),
    }
    for i, (n, scale, shift) in enumerate(_CASES):
        check_loss_fn("nonsaturating_generator_loss", fn, (_logits(n, scale, 50 + i, dev, shift),), nonsaturating_generator_loss, slips)


@graded
def check_lsgan_generator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(l)`` = mean (l - 1)^2 on the raw output, value and gradient."""
    dev = _device(device)
    slips = {
        "the target is 0 (the generator wants D's output at 1, the 'real' target)": lambda f: (f**2).mean(),
        "it is computed on sigmoid(l); the least-squares loss works on the raw output": lambda f: ((torch.sigmoid(f) - 1) ** 2).mean(),
        "there is a factor 1/2 (this course writes the loss without it)": lambda f: 0.5 * lsgan_generator_loss(f),
        "you sum over the batch instead of averaging": lambda f: lsgan_generator_loss(f, reduction="sum"),
        "the square is missing": lambda f: (f - 1).abs().mean(),
    }
    for i, (n, scale, shift) in enumerate(_CASES):
        check_loss_fn("lsgan_generator_loss", fn, (_logits(n, scale, 60 + i, dev, shift),), lsgan_generator_loss, slips)


# --- discriminator losses -----------------------------------------------------------------------


@graded
def check_bce_discriminator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(l_real, l_fake)`` = mean -log sigmoid(l_real) + mean -log(1 - sigmoid(l_fake))."""
    dev = _device(device)
    slips = {
        "the sign is flipped": lambda r, f: -bce_discriminator_loss(r, f),
        "you sum over the batch instead of averaging": lambda r, f: bce_discriminator_loss(r, f, reduction="sum"),
        "the two terms are averaged instead of added": lambda r, f: 0.5 * bce_discriminator_loss(r, f),
        "real and fake swap roles (real images are labelled 1, fakes 0)": lambda r, f: bce_discriminator_loss(f, r),
        "a sigmoid is applied to values that are already logits": lambda r, f: bce_discriminator_loss(torch.sigmoid(r), torch.sigmoid(f)),
    }
    for i, (n, scale, shift) in enumerate(_CASES):
        real, fake = _logits(n, scale, 70 + i, dev, shift + 1), _logits(n, scale, 80 + i, dev, shift - 1)
        check_loss_fn("bce_discriminator_loss", fn, (real, fake), bce_discriminator_loss, slips)


@graded
def check_lsgan_discriminator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(l_real, l_fake)`` = mean (l_real - 1)^2 + mean l_fake^2 on the raw outputs."""
    dev = _device(device)
    slips = {
        "the targets are swapped (real -> 1, fake -> 0)": lambda r, f: lsgan_discriminator_loss(f, r),
        "it is computed on sigmoid outputs; the least-squares loss works on the raw output":
            lambda r, f: lsgan_discriminator_loss(torch.sigmoid(r), torch.sigmoid(f)),
        "there is a factor 1/2 (this course writes the loss without it)": lambda r, f: 0.5 * lsgan_discriminator_loss(r, f),
        "you sum over the batch instead of averaging": lambda r, f: lsgan_discriminator_loss(r, f, reduction="sum"),
        "the fake target is -1 instead of 0": lambda r, f: lsgan_discriminator_loss(r, f, fake_target=-1.0),
    }
    for i, (n, scale, shift) in enumerate(_CASES):
        real, fake = _logits(n, scale, 90 + i, dev, shift + 1), _logits(n, scale, 100 + i, dev, shift - 1)
        check_loss_fn("lsgan_discriminator_loss", fn, (real, fake), lsgan_discriminator_loss, slips)


@graded
def check_stable(minimax: Callable[..., Tensor], nonsaturating: Callable[..., Tensor], bce: Callable[..., Tensor],
                 device: str | torch.device | None = None) -> None:
    """The three cross-entropy losses stay finite and exact for |logit| up to 120."""
    dev = _device(device)
    big = torch.tensor([120.0, 60.0, 30.0, -5.0], device=dev)
    for sign in (1.0, -1.0):
        check_loss_fn("minimax_generator_loss", minimax, (sign * big,), minimax_generator_loss, rtol=1e-4, hint=STABLE_HINT)
        check_loss_fn("nonsaturating_generator_loss", nonsaturating, (sign * big,), nonsaturating_generator_loss,
                      rtol=1e-4, hint=STABLE_HINT)
        check_loss_fn("bce_discriminator_loss", bce, (sign * big, -sign * big), bce_discriminator_loss, rtol=1e-4, hint=STABLE_HINT)


# --- derivatives --------------------------------------------------------------------------------


def _reference_derivative(kind: str, logits: Tensor) -> Tensor:
    leaf = logits.detach().clone().requires_grad_(True)
    per_sample = _G_REF[kind](leaf, reduction="none")
    (grad,) = torch.autograd.grad(per_sample.sum(), leaf)
    return grad


@graded
def check_dloss_dlogit(fn: Callable[[str, Tensor], Tensor], device: str | torch.device | None = None) -> None:
    """``fn(kind, l)`` is d loss_i / d l_i for each kind, checked against autograd in float64,
    including the saturated region l = -20 where the minimax derivative is about -2e-9."""
    dev = _device(device)
    logits = torch.cat([torch.linspace(-20, 20, 41, dtype=torch.float64), torch.tensor([-7.3, 0.37, 2.5], dtype=torch.float64)]).to(dev)
    n = logits.numel()
    for kind in KINDS:
        with quiet():
            try:
                out = fn(kind, logits.clone())
            except NotImplementedError:
                raise AssertionError("dloss_dlogit is not implemented yet") from None
        if not isinstance(out, Tensor):
            raise AssertionError(f"dloss_dlogit({kind!r}, l) should return a tensor, got {type(out).__name__}")
        if tuple(out.shape) != tuple(logits.shape):
            raise AssertionError(
                f"dloss_dlogit({kind!r}, l): expected one derivative per logit, shape {tuple(logits.shape)}, got {tuple(out.shape)}"
            )
        out = out.detach().double().cpu()
        expected = _reference_derivative(kind, logits).cpu()
        if torch.allclose(out, expected, rtol=1e-5, atol=1e-12):
            continue
        hint = ""
        for other in KINDS:
            if other != kind and torch.allclose(out, _reference_derivative(other, logits).cpu(), rtol=1e-5, atol=1e-12):
                hint = f" It is the derivative of the {other} loss."
        p = torch.sigmoid(logits).cpu()
        wrt_p = {"minimax": -1.0 / (1.0 - p), "nonsaturating": -1.0 / p}.get(kind)
        if not hint and wrt_p is not None and torch.allclose(out, wrt_p, rtol=1e-5, atol=1e-12):
            hint = (" It is the derivative with respect to p = D(G(z)); the logit's derivative also has the "
                    "factor dp/dl = p (1 - p).")
        if not hint and torch.allclose(out, expected / n, rtol=1e-5, atol=1e-14):
            hint = " It is the derivative of the batch mean; return the per-sample derivative (no 1/N)."
        elif not hint and torch.allclose(out, -expected, rtol=1e-5, atol=1e-12):
            hint = " The sign is flipped."
        bad = int(((out - expected).abs() / (expected.abs() + 1e-12)).argmax())
        raise AssertionError(
            f"dloss_dlogit({kind!r}, l): at l = {float(logits[bad]):g} expected {float(expected[bad]):.6g}, "
            f"got {float(out[bad]):.6g}.{hint}"
        )


# --- one training iteration ---------------------------------------------------------------------


def reference_train_iteration(kind: str, G, D, opt_g, opt_d, real_batches: Sequence[Tensor], latents: Sequence[Tensor],
                              *, generator_loss: Callable[..., Tensor] | None = None, zero_grad: bool = True,
                              detach: bool = True, norm_after_step: bool = False) -> dict[str, float]:
    """``len(real_batches)`` D steps then one G step, as the notebook asks; the keyword
    arguments produce the usual slips (used to name them)."""
    d_loss = _D_REF[kind]
    g_loss = generator_loss or _G_REF[kind]
    for real, z in zip(real_batches, latents[:-1], strict=False):
        fake = G(z)
        loss_d = d_loss(D(real), D(fake.detach() if detach else fake))
        if zero_grad:
            opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
    logits = D(G(latents[-1]))
    loss_g = g_loss(logits)
    if zero_grad:
        opt_g.zero_grad()
    loss_g.backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    opt_g.step()
    if norm_after_step:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    d_fake = torch.sigmoid(logits).mean() if kind != "lsgan" else logits.mean()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_fake": d_fake.item(), "grad_norm": norm.item()}


def _iteration_state(device: torch.device, n_critic: int = 3) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        G = TinyGenerator(z_dim=6, image_shape=(1, 8, 8)).to(device)
        D = TinyDiscriminator(image_shape=(1, 8, 8)).to(device)
    g = torch.Generator().manual_seed(12)
    real = [(torch.rand(10, 1, 8, 8, generator=g) * 2 - 1).to(device) for _ in range(n_critic)]
    latents = [torch.randn(10, 6, generator=g).to(device) for _ in range(n_critic + 1)]
    return {"G": G, "D": D, "opt_g": torch.optim.SGD(G.parameters(), lr=0.2), "opt_d": torch.optim.SGD(D.parameters(), lr=0.2),
            "real": real, "latents": latents}


def _count_backward(module: torch.nn.Module) -> list[int]:
    """A counter incremented each time a gradient reaches the first parameter of ``module``."""
    counter = [0]
    first = next(module.parameters())

    def hook(grad: Tensor) -> None:
        counter[0] += 1

    first.register_hook(hook)
    return counter


@graded
def check_train_iteration(fn: Callable[..., Mapping[str, Any]], device: str | torch.device | None = None) -> None:
    """For each kind: n_critic D updates then one G update, matching the reference; the returned
    ``loss_d``, ``loss_g``, ``d_fake`` and ``grad_norm``; no gradient reaches G in the D steps.

    While it runs, the notebook's ``GENERATOR_LOSSES`` / ``DISCRIMINATOR_LOSSES`` hold the
    reference losses, so the iteration is graded on its own (each loss has its own test).
    """
    dev = _device(device)
    with bound_in_notebook(fn, GENERATOR_LOSSES=dict(_G_REF), DISCRIMINATOR_LOSSES=dict(_D_REF)):
        _check_train_iteration(fn, dev)


def _check_train_iteration(fn: Callable[..., Mapping[str, Any]], dev: torch.device) -> None:
    for kind in KINDS:
        other = "nonsaturating" if kind == "minimax" else "minimax"

        def student(s: dict[str, Any], kind: str = kind) -> Any:
            s["g_backward"] = _count_backward(s["G"])
            return fn(kind, s["G"], s["D"], s["opt_g"], s["opt_d"], s["real"], s["latents"])

        def ref(s: dict[str, Any], kind: str = kind, **kw: Any) -> dict[str, float]:
            return reference_train_iteration(kind, s["G"], s["D"], s["opt_g"], s["opt_d"], s["real"], s["latents"], **kw)

        variants = {
            "an iteration without zero_grad() (old gradients were added in)": lambda s, ref=ref: ref(s, zero_grad=False),
            "an iteration whose D steps do not detach the fakes and whose G step keeps their gradients":
                lambda s, ref=ref: ref(s, detach=False, zero_grad=False),
        }
        if kind != "lsgan":
            variants[f"the {other} generator loss (is `kind` used?)"] = lambda s, ref=ref, other=other: ref(s, generator_loss=_G_REF[other])
        result, expected, state = check_step(
            f"train_iteration({kind!r})", student, ref, lambda: _iteration_state(dev),
            updated=("G", "D"), frozen=(), variants=variants, atol=1e-5,
        )
        if state["g_backward"][0] != 1:
            raise AssertionError(
                f"train_iteration({kind!r}): gradients reached G {state['g_backward'][0]} times; expected once (the G step). "
                "Detach the fakes in the discriminator steps (fake.detach(), or torch.no_grad())."
            )
        if not isinstance(result, Mapping):
            raise AssertionError(f"train_iteration should return a dict, got {type(result).__name__}")
        missing = [k for k in expected if k not in result]
        if missing:
            raise AssertionError(f"train_iteration's dict lacks {', '.join(missing)}; expected keys {', '.join(expected)}")
        for key, want in expected.items():
            got = as_number(result[key], f"train_iteration(...)[{key!r}]")
            if abs(got - want) > 1e-4 * (1 + abs(want)):
                hint = ""
                if key == "d_fake" and kind != "lsgan":
                    hint = " d_fake is the mean probability sigmoid(D(G(z))) on the G step's fakes."
                if key == "d_fake" and kind == "lsgan":
                    hint = " For lsgan, d_fake is the mean raw output D(G(z)) on the G step's fakes."
                if key == "grad_norm":
                    hint = " grad_norm is the L2 norm of all of G's gradients together, after backward() and before step()."
                if key == "loss_d":
                    hint = " loss_d is the loss of the last discriminator step."
                raise AssertionError(f"train_iteration({kind!r})[{key!r}]: expected {want:.6g}, got {got:.6g}.{hint}")

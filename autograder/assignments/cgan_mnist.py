"""Checks for the ``cgan_mnist`` assignment (conditional GAN on MNIST).

The graded cells of ``solutions/cgan_mnist/cgan_mnist.ipynb`` call these. Each
check builds its inputs from a fixed seed, computes the reference answer at grade
time with ``gan_utils.losses`` (or the same step written by the course on copies
of the same models), and raises ``AssertionError`` with a message that says what
was expected and what came.

Student interface (names fixed by the notebook):

* ``Generator(z_dim=64, num_classes=10)``: ``G(z (N, z_dim), labels (N,) long)`` ->
  images ``(N, 1, 28, 28)`` in [-1, 1].
* ``Discriminator(num_classes=10)``: ``D(x (N, 1, 28, 28), labels (N,))`` -> logits ``(N,)``.
* ``discriminator_loss(real_logits, fake_logits)``, ``generator_loss(fake_logits)``
  (non-saturating), both from logits, mean over the batch.
* ``d_step(G, D, opt_d, real, labels, z) -> float`` and
  ``g_step(G, D, opt_g, labels, z) -> float``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autograder.assignments._gan_common import (
    TinyDiscriminator,
    TinyGenerator,
    as_number,
    bound_in_notebook,
    build_model,
    call_model,
    check_loss_fn,
    check_step,
    graded,
    quiet,
    snapshot,
)
from gan_utils.losses import (
    bce_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)

__all__ = [
    "check_d_step",
    "check_discriminator",
    "check_discriminator_learns",
    "check_discriminator_loss",
    "check_discriminator_uses_label",
    "check_g_step",
    "check_generator",
    "check_generator_loss",
    "check_generator_uses_label",
    "check_losses_stable",
    "check_training_smoke",
    "toy_digits",
]

NUM_CLASSES = 10
STABLE_HINT = ("Work from the logits with F.softplus or F.binary_cross_entropy_with_logits: log(sigmoid(l)) "
               "underflows and nn.BCELoss on probabilities clips the log at -100.")
IMAGE_SHAPE = (1, 28, 28)


def _device(device: str | torch.device | None) -> torch.device:
    return torch.device("cpu") if device is None else torch.device(device)


def toy_digits(n: int, seed: int = 0, device: str | torch.device | None = None) -> tuple[Tensor, Tensor]:
    """``n`` class-dependent 28x28 images in [-1, 1] (label k: a bright bar at row 2k + 4) and labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    images = torch.full((n, *IMAGE_SHAPE), -1.0)
    for i, k in enumerate(labels.tolist()):
        images[i, 0, 2 * k + 4 : 2 * k + 7, 5:23] = 1.0
    images = (images + 0.1 * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    dev = _device(device)
    return images.to(dev), labels.to(dev)


# --- generator ---------------------------------------------------------------------------------


@graded
def check_generator(Generator: Callable[..., nn.Module], device: str | torch.device | None = None) -> None:
    """Shapes for several ``z_dim`` and batch sizes, range [-1, 1], finite, gradients reach every parameter."""
    dev = _device(device)
    torch.manual_seed(0)
    for z_dim, n in ((64, 10), (16, 3), (100, 17)):
        G = build_model(Generator, "Generator", dev, z_dim=z_dim, num_classes=NUM_CLASSES)
        z = torch.randn(n, z_dim, device=dev)
        labels = torch.randint(0, NUM_CLASSES, (n,), device=dev)
        x = call_model(G, "Generator", z, labels)
        if tuple(x.shape) != (n, *IMAGE_SHAPE):
            raise AssertionError(f"Generator(z_dim={z_dim}): expected images of shape {(n, *IMAGE_SHAPE)}, got {tuple(x.shape)}")
        if x.dtype != torch.float32:
            raise AssertionError(f"Generator: expected float32 images, got {x.dtype}")
        values = x.detach()
        if not bool(torch.isfinite(values).all()):
            raise AssertionError("Generator: the images contain NaN or inf")
        lo, hi = float(values.min()), float(values.max())
        if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
            raise AssertionError(f"Generator: images should lie in [-1, 1] (end with tanh), got values in [{lo:.3g}, {hi:.3g}]")
    G.zero_grad(set_to_none=True)
    x.square().mean().backward()
    missing = [name for name, p in G.named_parameters() if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    if missing:
        raise AssertionError(
            f"Generator: these parameters get no gradient from the output: {', '.join(missing[:5])}. "
            "Every layer you define should be used in forward (is the label embedding used?)"
        )


@graded
def check_generator_uses_label(Generator: Callable[..., nn.Module], device: str | torch.device | None = None) -> None:
    """Same ``z`` with digits 0..9 gives ten different images; different ``z`` with one digit differ too."""
    dev = _device(device)
    torch.manual_seed(1)
    G = build_model(Generator, "Generator", dev, z_dim=64, num_classes=NUM_CLASSES)
    G.eval()
    with torch.no_grad():
        z = torch.randn(1, 64, device=dev).repeat(NUM_CLASSES, 1)
        x = call_model(G, "Generator", z, torch.arange(NUM_CLASSES, device=dev)).reshape(NUM_CLASSES, -1)
        gaps = torch.cdist(x.double(), x.double()) / x.shape[1] ** 0.5
        gaps.fill_diagonal_(float("inf"))
        if float(gaps.min()) < 1e-6:
            i, j = divmod(int(gaps.argmin()), NUM_CLASSES)
            raise AssertionError(
                f"Generator: the same z with labels {i} and {j} gives the same image; "
                "the label must change the output (embed it and join it to z)"
            )
        z = torch.randn(4, 64, device=dev)
        y = torch.full((4,), 3, device=dev, dtype=torch.long)
        x = call_model(G, "Generator", z, y).reshape(4, -1)
        if float((x - x[:1]).abs().max()) < 1e-6:
            raise AssertionError("Generator: different z with the same label give the same image; z must reach the output too")


# --- discriminator -----------------------------------------------------------------------------


@graded
def check_discriminator(Discriminator: Callable[..., nn.Module], device: str | torch.device | None = None) -> None:
    """Logits of shape ``(N,)`` for several batch sizes, finite, float32, gradients reach every parameter."""
    dev = _device(device)
    torch.manual_seed(0)
    D = build_model(Discriminator, "Discriminator", dev, num_classes=NUM_CLASSES)
    for n in (10, 3, 17):
        x = torch.rand(n, *IMAGE_SHAPE, device=dev) * 2 - 1
        labels = torch.randint(0, NUM_CLASSES, (n,), device=dev)
        out = call_model(D, "Discriminator", x, labels)
        if tuple(out.shape) != (n,):
            raise AssertionError(
                f"Discriminator: expected logits of shape ({n},), got {tuple(out.shape)}"
                + (" (use .squeeze(1) or .view(-1))" if out.dim() == 2 and out.shape[1] == 1 else "")
            )
        if out.dtype != torch.float32 or not bool(torch.isfinite(out.detach()).all()):
            raise AssertionError(f"Discriminator: expected finite float32 logits, got dtype {out.dtype}, values {out.detach().cpu()[:4].tolist()}")
    D.zero_grad(set_to_none=True)
    out.square().mean().backward()
    missing = [name for name, p in D.named_parameters() if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    if missing:
        raise AssertionError(
            f"Discriminator: these parameters get no gradient from the logits: {', '.join(missing[:5])}. "
            "Every layer you define should be used in forward (is the label embedding used?)"
        )


@graded
def check_discriminator_uses_label(Discriminator: Callable[..., nn.Module], device: str | torch.device | None = None) -> None:
    """The same image with digits 0..9 gets different logits."""
    dev = _device(device)
    torch.manual_seed(2)
    D = build_model(Discriminator, "Discriminator", dev, num_classes=NUM_CLASSES)
    D.eval()
    images, _ = toy_digits(1, device=dev)
    with torch.no_grad():
        out = call_model(D, "Discriminator", images.repeat(NUM_CLASSES, 1, 1, 1), torch.arange(NUM_CLASSES, device=dev)).reshape(-1)
    if float(out.max() - out.min()) < 1e-6:
        raise AssertionError(
            "Discriminator: the same image gets the same logit whatever the label; "
            "the label must enter the discriminator (e.g. an embedding joined to the image features)"
        )


@graded
def check_discriminator_learns(Discriminator: Callable[..., nn.Module], device: str | torch.device | None = None, steps: int = 30) -> None:
    """Overfit one batch (toy digits vs. noise) with the BCE loss on the logits.

    A discriminator that ends in a sigmoid cannot get its BCE-with-logits loss
    below ~1.0, so this also checks that ``forward`` returns raw logits.
    """
    dev = _device(device)
    torch.manual_seed(3)
    D = build_model(Discriminator, "Discriminator", dev, num_classes=NUM_CLASSES)
    real, labels = toy_digits(16, device=dev)
    fake = torch.rand(real.shape, generator=torch.Generator().manual_seed(4)).to(dev) * 2 - 1
    opt = torch.optim.Adam(D.parameters(), lr=2e-3)
    losses = []
    with quiet():
        for _ in range(steps):
            loss = bce_discriminator_loss(D(real, labels).reshape(-1), D(fake, labels).reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    if not all(map(lambda v: v == v and abs(v) != float("inf"), losses)):
        raise AssertionError("Discriminator: the loss became NaN/inf while overfitting one batch")
    if losses[-1] > 0.5:
        raise AssertionError(
            f"Discriminator: after {steps} Adam steps on one batch (real digits vs. noise) the BCE loss is "
            f"{losses[-1]:.3f} (from {losses[0]:.3f}); expected < 0.5. Return raw logits (no sigmoid at the end) "
            "and make sure the network can separate the two."
        )


# --- losses -----------------------------------------------------------------------------------


def _logits(n: int, scale: float, seed: int, device: torch.device) -> Tensor:
    return (torch.randn(n, generator=torch.Generator().manual_seed(seed)) * scale).to(device)


@graded
def check_discriminator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(real_logits, fake_logits)`` equals ``mean softplus(-real) + mean softplus(fake)``, value and gradient."""
    dev = _device(device)
    slips = {
        "the sign is flipped": lambda r, f: -bce_discriminator_loss(r, f),
        "you sum over the batch instead of averaging": lambda r, f: bce_discriminator_loss(r, f, reduction="sum"),
        "the two terms are averaged instead of added": lambda r, f: 0.5 * bce_discriminator_loss(r, f),
        "real and fake swap roles (real images should be labelled 1, fakes 0)": lambda r, f: bce_discriminator_loss(f, r),
        "a sigmoid is applied to values that are already logits": lambda r, f: bce_discriminator_loss(torch.sigmoid(r), torch.sigmoid(f)),
    }
    for i, (n, scale) in enumerate(((8, 1.0), (64, 3.0), (5, 8.0))):
        real, fake = _logits(n, scale, 10 + i, dev) + 1.0, _logits(n, scale, 20 + i, dev) - 1.0
        check_loss_fn("discriminator_loss", fn, (real, fake), bce_discriminator_loss, slips)


@graded
def check_generator_loss(fn: Callable[..., Tensor], device: str | torch.device | None = None) -> None:
    """``fn(fake_logits)`` equals the non-saturating loss ``mean softplus(-fake)``, value and gradient."""
    dev = _device(device)
    slips = {
        "you use the saturating (minimax) loss log(1 - D(G(z))) instead of -log D(G(z))": minimax_generator_loss,
        "the sign is flipped": lambda f: -nonsaturating_generator_loss(f),
        "you sum over the batch instead of averaging": lambda f: nonsaturating_generator_loss(f, reduction="sum"),
        "the fakes are labelled 0 (that is the discriminator's target)": lambda f: F.softplus(f).mean(),
        "a sigmoid is applied to values that are already logits": lambda f: nonsaturating_generator_loss(torch.sigmoid(f)),
    }
    for i, (n, scale) in enumerate(((8, 1.0), (64, 3.0), (5, 8.0))):
        check_loss_fn("generator_loss", fn, (_logits(n, scale, 30 + i, dev) - 1.0,), nonsaturating_generator_loss, slips)


@graded
def check_losses_stable(discriminator_loss: Callable[..., Tensor], generator_loss: Callable[..., Tensor],
                        device: str | torch.device | None = None) -> None:
    """Both losses stay finite and exact for confident discriminators (|logit| up to 120)."""
    dev = _device(device)
    big = torch.tensor([120.0, 60.0, 30.0, -5.0], device=dev)
    # D losing badly (real judged fake, fake judged real) and winning.
    check_loss_fn("discriminator_loss", discriminator_loss, (-big, big), bce_discriminator_loss, rtol=1e-4, hint=STABLE_HINT)
    check_loss_fn("discriminator_loss", discriminator_loss, (big, -big), bce_discriminator_loss, rtol=1e-4, hint=STABLE_HINT)
    # D rejecting the fakes with confidence: the situation the non-saturating loss is for.
    check_loss_fn("generator_loss", generator_loss, (-big,), nonsaturating_generator_loss, rtol=1e-4, hint=STABLE_HINT)
    check_loss_fn("generator_loss", generator_loss, (big,), nonsaturating_generator_loss, rtol=1e-4, hint=STABLE_HINT)


# --- training steps ---------------------------------------------------------------------------


def _step_state(device: torch.device, lr: float = 0.1) -> dict[str, Any]:
    torch.manual_seed(5)
    G = TinyGenerator(z_dim=8, num_classes=NUM_CLASSES).to(device)
    D = TinyDiscriminator(num_classes=NUM_CLASSES).to(device)
    real, labels = toy_digits(12, seed=6, device=device)
    g = torch.Generator().manual_seed(7)
    z = torch.randn(12, 8, generator=g).to(device)
    labels = labels[torch.randperm(12, generator=g).to(device)]
    return {
        "G": G, "D": D, "real": real, "labels": labels, "z": z,
        "opt_g": torch.optim.SGD(G.parameters(), lr=lr), "opt_d": torch.optim.SGD(D.parameters(), lr=lr),
    }


def _ref_d_step(s: dict[str, Any], loss_fn: Callable[..., Tensor] = bce_discriminator_loss, zero_grad: bool = True,
                scale: float = 1.0) -> float:
    fake = s["G"](s["z"], s["labels"]).detach()
    loss = scale * loss_fn(s["D"](s["real"], s["labels"]), s["D"](fake, s["labels"]))
    if zero_grad:
        s["opt_d"].zero_grad()
    loss.backward()
    s["opt_d"].step()
    return loss.item()


def _ref_g_step(s: dict[str, Any], loss_fn: Callable[..., Tensor] = nonsaturating_generator_loss, zero_grad: bool = True) -> float:
    loss = loss_fn(s["D"](s["G"](s["z"], s["labels"]), s["labels"]))
    if zero_grad:
        s["opt_g"].zero_grad()
    loss.backward()
    s["opt_g"].step()
    return loss.item()


@graded
def check_d_step(d_step: Callable[..., Any], device: str | torch.device | None = None) -> None:
    """One discriminator update: only D changes, no gradient reaches G, same update and loss as the reference.

    While it runs, ``discriminator_loss`` in the notebook is the reference loss, so the
    step is graded on its own (the loss has its own test).
    """
    dev = _device(device)
    with bound_in_notebook(d_step, discriminator_loss=bce_discriminator_loss):
        _check_d_step(d_step, dev)


def _check_d_step(d_step: Callable[..., Any], dev: torch.device) -> None:
    result, expected, _ = check_step(
        "d_step",
        lambda s: d_step(s["G"], s["D"], s["opt_d"], s["real"], s["labels"], s["z"]),
        _ref_d_step,
        lambda: _step_state(dev),
        updated=("D",),
        frozen=("G",),
        variants={
            "an update without opt_d.zero_grad() (old gradients were added in)": lambda s: _ref_d_step(s, zero_grad=False),
            "the loss with its sign flipped": lambda s: _ref_d_step(s, scale=-1.0),
            "half the loss (the mean of the two terms instead of their sum)": lambda s: _ref_d_step(s, scale=0.5),
            "real and fake swapped in the loss": lambda s: _ref_d_step(s, loss_fn=lambda r, f: bce_discriminator_loss(f, r)),
        },
    )
    got = as_number(result, "d_step's return value")
    if abs(got - expected) > 1e-5 * (1 + abs(expected)):
        raise AssertionError(f"d_step should return the discriminator loss before the update ({expected:.6g}), got {got:.6g}")


@graded
def check_g_step(g_step: Callable[..., Any], device: str | torch.device | None = None) -> None:
    """One generator update: only G changes, with the non-saturating loss on D(G(z, y), y).

    While it runs, ``generator_loss`` in the notebook is the reference loss.
    """
    dev = _device(device)
    with bound_in_notebook(g_step, generator_loss=nonsaturating_generator_loss):
        _check_g_step(g_step, dev)


def _check_g_step(g_step: Callable[..., Any], dev: torch.device) -> None:
    result, expected, _ = check_step(
        "g_step",
        lambda s: g_step(s["G"], s["D"], s["opt_g"], s["labels"], s["z"]),
        _ref_g_step,
        lambda: _step_state(dev),
        updated=("G",),
        frozen=(),
        variants={
            "an update without opt_g.zero_grad() (old gradients were added in)": lambda s: _ref_g_step(s, zero_grad=False),
            "the saturating (minimax) generator loss": lambda s: _ref_g_step(s, loss_fn=minimax_generator_loss),
        },
    )
    # D may hold gradients after a G step (they are cleared by the next D step) but must not move.
    state = _step_state(dev)
    before = snapshot(state["D"])
    with quiet():
        g_step(state["G"], state["D"], state["opt_g"], state["labels"], state["z"])
    if any(bool((a != b).any()) for a, b in zip(before, state["D"].parameters(), strict=True)):
        raise AssertionError("g_step changed the discriminator: only opt_g may step here")
    got = as_number(result, "g_step's return value")
    if abs(got - expected) > 1e-5 * (1 + abs(expected)):
        raise AssertionError(
            f"g_step should return the generator loss before the update ({expected:.6g}), got {got:.6g}; "
            "use the labels given to the function for both G and D"
        )


@graded
def check_training_smoke(Generator: Callable[..., nn.Module], Discriminator: Callable[..., nn.Module],
                         d_step: Callable[..., Any], g_step: Callable[..., Any],
                         device: str | torch.device | None = None, steps: int = 15) -> None:
    """Your models with your steps: D's loss falls when it trains alone on one batch, then G's loss falls
    against that fixed D, and alternating steps keep every loss finite."""
    dev = _device(device)
    torch.manual_seed(8)
    G = build_model(Generator, "Generator", dev, z_dim=64, num_classes=NUM_CLASSES)
    D = build_model(Discriminator, "Discriminator", dev, num_classes=NUM_CLASSES)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real, labels = toy_digits(32, seed=9, device=dev)
    z = torch.randn(32, 64, generator=torch.Generator().manual_seed(10)).to(dev)
    with quiet():
        d_losses = [as_number(d_step(G, D, opt_d, real, labels, z), "d_step's return value") for _ in range(steps)]
        g_losses = [as_number(g_step(G, D, opt_g, labels, z), "g_step's return value") for _ in range(steps)]
        mixed = []
        for _ in range(5):
            mixed.append(as_number(d_step(G, D, opt_d, real, labels, torch.randn_like(z)), "d_step's return value"))
            mixed.append(as_number(g_step(G, D, opt_g, labels, torch.randn_like(z)), "g_step's return value"))
    for what, values in (("D loss", d_losses), ("G loss", g_losses), ("loss in alternating steps", mixed)):
        if not all(v == v and abs(v) != float("inf") for v in values):
            raise AssertionError(f"training smoke run: the {what} became NaN or inf: {values}")
    if not d_losses[-1] < d_losses[0] - 0.05:
        raise AssertionError(
            f"training smoke run: {steps} D steps on one fixed batch should lower D's loss, "
            f"got {d_losses[0]:.3f} -> {d_losses[-1]:.3f}"
        )
    if not g_losses[-1] < g_losses[0] - 0.05:
        raise AssertionError(
            f"training smoke run: {steps} G steps against a fixed D should lower G's loss, "
            f"got {g_losses[0]:.3f} -> {g_losses[-1]:.3f}"
        )

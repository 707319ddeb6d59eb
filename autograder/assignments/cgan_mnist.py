"""Hidden checks of ``cgan_mnist`` (a conditional GAN on MNIST); its tables are in :mod:`.cgan_mnist_tables`.

Student interface: ``Generator(z_dim=64, num_classes=10)``, ``G(z, labels)`` -> ``(N, 1, 28, 28)`` in
[-1, 1]; ``Discriminator(num_classes=10)``, ``D(x, labels)`` -> logits ``(N,)``; ``discriminator_loss(
real_logits, fake_logits)``, ``generator_loss(fake_logits)`` (non-saturating), batch means; ``d_step(G, D,
opt_d, real, labels, z)`` and ``g_step(G, D, opt_g, labels, z)`` return the loss before the update. Steps
and training run with the reference losses bound to the notebook's names: a loss slip costs only its tests.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import autograder.checks as checks
from autograder.assignments.cgan_mnist_tables import (  # noqa: F401 - the tables the harness reads
    D_LOSS_SLIPS,
    G_LOSS_SLIPS,
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core
from gan_utils.losses import (
    bce_discriminator_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
)

K, SHAPE = 10, (1, 28, 28)  # classes, image shape
_LOSSES = tuple(f"gan_utils.losses.{m}{n}" for m in ("", "gan.") for n in (
    "bce_discriminator_loss", "nonsaturating_generator_loss", "minimax_generator_loss", "discriminator_loss", "generator_loss"))
OFF_LIMITS = {
    "cgan_generator": ("gan_utils.models.cgan.ConditionalGenerator",),
    "cgan_discriminator": ("gan_utils.models.cgan.ConditionalDiscriminator",),
    "cgan_discriminator_loss": _LOSSES, "cgan_generator_loss": _LOSSES,
    "cgan_d_step": ("gan_utils.train.gan_trainer.GANTrainer",), "cgan_g_step": ("gan_utils.train.gan_trainer.GANTrainer",),
}
hidden = checks.hidden_checks(OFF_LIMITS)
Model, Fn, Device = Callable[..., nn.Module], Callable[..., Any], str | torch.device | None


def _dev(device: Device) -> torch.device:
    return checks.grading_device() if device is None else torch.device(device)


# --- the networks ----------------------------------------------------------------------------------
@hidden("cgan_generator")
def check_generator(Generator: Model, device: Device = None) -> None:
    """Shapes for several ``z_dim`` and batch sizes, in [-1, 1]; every parameter gets a gradient."""
    dev = _dev(device)
    torch.manual_seed(0)
    for z_dim, n in ((64, 10), (16, 3), (100, 17)):
        G = checks.build_model(Generator, "Generator", dev, z_dim=z_dim, num_classes=K)
        z, y = torch.randn(n, z_dim, device=dev), torch.randint(0, K, (n,), device=dev)
        checks.check_shapes(G, (z, y), (n, *SHAPE), what=f"Generator(z_dim={z_dim})(z, labels)")
        checks.check_output_range(G, (z, y), -1.0, 1.0, what="Generator (end with tanh)")
    checks.check_every_parameter_learns(G, (z, y), what="Generator (is the label embedding used?)")


@hidden("cgan_generator")
def check_generator_uses_label(Generator: Model, device: Device = None) -> None:
    """In eval mode one ``z`` with the ten digits gives ten different images; other ``z`` differ too."""
    dev = _dev(device)
    torch.manual_seed(1)
    G = checks.build_model(Generator, "Generator", dev, z_dim=64, num_classes=K).eval()
    with torch.no_grad():
        x = checks.call_model(G, "Generator", torch.randn(1, 64, device=dev).repeat(K, 1), torch.arange(K, device=dev))
        x = x.reshape(K, -1).double()
        gaps = torch.cdist(x, x) / x.shape[1] ** 0.5 + torch.eye(K, dtype=x.dtype, device=dev)
        if float(gaps.min()) < 1e-6:
            i, j = divmod(int(gaps.argmin()), K)
            checks.fail(f"Generator: the same z with labels {i} and {j} gives the same image; "
                        "the label must change the output (embed it and join it to z)")
        x = checks.call_model(G, "Generator", torch.randn(4, 64, device=dev), torch.full((4,), 3, device=dev))
        if float((x - x[:1]).abs().max()) < 1e-6:
            checks.fail("Generator: different z with the same label give the same image; z must reach the output too")


@hidden("cgan_discriminator")
def check_discriminator(Discriminator: Model, device: Device = None) -> None:
    """Finite float32 logits of shape ``(N,)`` for several batch sizes; every parameter gets a gradient."""
    dev = _dev(device)
    torch.manual_seed(0)
    D = checks.build_model(Discriminator, "Discriminator", dev, num_classes=K)
    for n in (10, 3, 17):
        x, y = torch.rand(n, *SHAPE, device=dev) * 2 - 1, torch.randint(0, K, (n,), device=dev)
        out = checks.check_shapes(D, (x, y), (n,), what="Discriminator(x, labels) (one logit per image: .squeeze(1))")
        checks.check_finite(out, what="Discriminator's logits")
        if out.dtype != torch.float32:
            checks.fail(f"Discriminator: expected float32 logits, got {out.dtype}")
    checks.check_every_parameter_learns(D, (x, y), what="Discriminator (is the label embedding used?)")


@hidden("cgan_discriminator")
def check_discriminator_uses_label(Discriminator: Model, device: Device = None) -> None:
    """In eval mode the same image with the ten digits gets different logits."""
    dev = _dev(device)
    torch.manual_seed(2)
    D = checks.build_model(Discriminator, "Discriminator", dev, num_classes=K).eval()
    with torch.no_grad():
        out = checks.call_model(D, "Discriminator", checks.toy_class_images(1, 0, dev)[0].repeat(K, 1, 1, 1), torch.arange(K, device=dev))
    if float(out.max() - out.min()) < 1e-6:
        checks.fail("Discriminator: the same image gets the same logit whatever the label; the label must enter "
                    "the discriminator (e.g. an embedding joined to the image features)")


@hidden("cgan_discriminator")
def check_discriminator_learns(Discriminator: Model, device: Device = None, steps: int = 30) -> None:
    """Adam steps on one batch (toy digits vs noise) bring the BCE-with-logits loss below 0.5, which a
    network ending in a sigmoid cannot reach (its loss stays above ~1.0)."""
    dev = _dev(device)
    torch.manual_seed(3)
    D = checks.build_model(Discriminator, "Discriminator", dev, num_classes=K)
    real, labels = checks.toy_class_images(16, 0, dev)
    fake = torch.rand(real.shape, generator=torch.Generator().manual_seed(4)).to(dev) * 2 - 1
    opt = torch.optim.Adam(D.parameters(), lr=2e-3)
    for _ in range(steps):
        loss = bce_discriminator_loss(*(checks.call_model(D, "Discriminator", x, labels).reshape(-1) for x in (real, fake)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    if not float(loss) < 0.5:
        checks.fail(f"Discriminator: after {steps} Adam steps on one batch (real digits vs noise) the BCE loss is "
                    f"{float(loss):.3f}; expected < 0.5. Return raw logits (no sigmoid at the end).")


# --- the losses: the formula on moderate logits, the numerics at extreme ones ------------------------
_STABLE = checks.STABLE_HINT + "; nn.BCELoss on probabilities clips the log at -100"


def _moderate(n_args: int, seed: int, dev: torch.device) -> list[tuple[Tensor, ...]]:
    return checks.make_logit_cases(seed=seed, sizes=(1, 7, 64), scale=2.0, extremes=False, n_args=n_args, device=dev)


@hidden("cgan_discriminator_loss")
def check_discriminator_loss(discriminator_loss: Fn, device: Device = None) -> None:
    """Value and gradient equal ``mean softplus(-real) + mean softplus(fake)`` on moderate logits."""
    checks.check_loss(discriminator_loss, bce_discriminator_loss, _moderate(2, 10, _dev(device)),
                      what="discriminator_loss", slips=D_LOSS_SLIPS)


@hidden("cgan_generator_loss")
def check_generator_loss(generator_loss: Fn, device: Device = None) -> None:
    """Value and gradient equal the non-saturating ``mean softplus(-fake)`` on moderate logits."""
    checks.check_loss(generator_loss, nonsaturating_generator_loss, _moderate(1, 30, _dev(device)),
                      what="generator_loss", slips=G_LOSS_SLIPS)


def _stable(fn: Fn, reference: Fn, n_args: int, what: str, dev: torch.device) -> None:
    checks.check_loss_stable(fn, reference, _moderate(n_args, 40, dev), what=what, hint=_STABLE, device=dev)


@hidden("cgan_discriminator_loss", "cgan_generator_loss")
def check_losses_stable(discriminator_loss: Fn, generator_loss: Fn, device: Device = None) -> None:
    """Both losses stay finite and exact (values and gradients) for confident discriminators (|logit| 30-1000)."""
    _stable(discriminator_loss, bce_discriminator_loss, 2, "discriminator_loss", _dev(device))
    _stable(generator_loss, nonsaturating_generator_loss, 1, "generator_loss", _dev(device))


# --- the steps, with the reference losses bound in the notebook ----------------------------------
def _step_state(device: torch.device) -> dict[str, Any]:
    torch.manual_seed(5)
    G, D = checks.TinyGenerator(z_dim=8, num_classes=K).to(device), checks.TinyDiscriminator(num_classes=K).to(device)
    real, labels = checks.toy_class_images(12, 6, device)
    g = torch.Generator().manual_seed(7)
    z, order = torch.randn(12, 8, generator=g).to(device), torch.randperm(12, generator=g).to(device)
    return {"G": G, "D": D, "real": real, "labels": labels[order], "z": z,
            "opt_g": torch.optim.SGD(G.parameters(), lr=0.1), "opt_d": torch.optim.SGD(D.parameters(), lr=0.1)}


def _ref_d_step(s: dict[str, Any], loss_fn: Fn = bce_discriminator_loss, zero_grad: bool = True, scale: float = 1.0) -> float:
    fake = s["G"](s["z"], s["labels"]).detach()
    loss = scale * loss_fn(s["D"](s["real"], s["labels"]), s["D"](fake, s["labels"]))
    if zero_grad:
        s["opt_d"].zero_grad()
    loss.backward()
    s["opt_d"].step()
    return loss.item()


def _ref_g_step(s: dict[str, Any], loss_fn: Fn = nonsaturating_generator_loss, zero_grad: bool = True) -> float:
    loss = loss_fn(s["D"](s["G"](s["z"], s["labels"]), s["labels"]))
    if zero_grad:
        s["opt_g"].zero_grad()
    loss.backward()
    s["opt_g"].step()
    return loss.item()


@hidden("cgan_d_step")
def check_d_step(d_step: Fn, device: Device = None) -> None:
    """Only D changes, no gradient reaches G, D moves as one reference step; returns the loss before the update."""
    dev = _dev(device)
    with checks.swapped_in(d_step, discriminator_loss=bce_discriminator_loss):
        checks.check_step("d_step", lambda s: d_step(s["G"], s["D"], s["opt_d"], s["real"], s["labels"], s["z"]),
                          _ref_d_step, lambda: _step_state(dev), updated=("D",), frozen=("G",), variants={
            "an update without opt_d.zero_grad() (old gradients were added in)": lambda s: _ref_d_step(s, zero_grad=False),
            "the loss with its sign flipped": lambda s: _ref_d_step(s, scale=-1.0),
            "half the loss (the mean of the two terms instead of their sum)": lambda s: _ref_d_step(s, scale=0.5),
            "real and fake swapped in the loss": lambda s: _ref_d_step(s, loss_fn=lambda r, f: bce_discriminator_loss(f, r)),
        })


@hidden("cgan_g_step")
def check_g_step(g_step: Fn, device: Device = None) -> None:
    """Only G moves, as one reference step with the non-saturating loss on ``D(G(z, y), y)``."""
    dev = _dev(device)
    with checks.swapped_in(g_step, generator_loss=nonsaturating_generator_loss):
        checks.check_step("g_step", lambda s: g_step(s["G"], s["D"], s["opt_g"], s["labels"], s["z"]),
                          _ref_g_step, lambda: _step_state(dev), updated=("G",), unchanged=("D",), variants={
            "an update without opt_g.zero_grad() (old gradients were added in)": lambda s: _ref_g_step(s, zero_grad=False),
            "the saturating (minimax) generator loss": lambda s: _ref_g_step(s, loss_fn=minimax_generator_loss),
        })


@hidden("cgan_generator", "cgan_discriminator", "cgan_d_step", "cgan_g_step")
def check_training_smoke(Generator: Model, Discriminator: Model, d_step: Fn, g_step: Fn, device: Device = None,
                         steps: int = 15) -> None:
    """Your models and steps (with the reference losses): D's loss falls when D trains alone on one batch,
    G's loss falls against that fixed D, and alternating steps keep every loss finite."""
    dev = _dev(device)
    torch.manual_seed(8)
    G = checks.build_model(Generator, "Generator", dev, z_dim=64, num_classes=K)
    D = checks.build_model(Discriminator, "Discriminator", dev, num_classes=K)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for m in (G, D))
    real, labels = checks.toy_class_images(32, 9, dev)
    z = torch.randn(32, 64, generator=torch.Generator().manual_seed(10)).to(dev)
    with checks.swapped_in(d_step, discriminator_loss=bce_discriminator_loss), \
            checks.swapped_in(g_step, generator_loss=nonsaturating_generator_loss):
        checks.check_smoke_training(lambda: d_step(G, D, opt_d, real, labels, z), steps=steps, min_drop=0.05,
                                    what=f"D's loss over {steps} d_steps on one fixed batch")
        checks.check_smoke_training(lambda: g_step(G, D, opt_g, labels, z), steps=steps, min_drop=0.05,
                                    what=f"G's loss over {steps} g_steps against a fixed D")
        for _ in range(5):
            for name, loss in (("d_step", checks.call_student(d_step, G, D, opt_d, real, labels, torch.randn_like(z))),
                               ("g_step", checks.call_student(g_step, G, D, opt_g, labels, torch.randn_like(z)))):
                if not math.isfinite(checks.as_number(loss, f"{name}'s return value")):
                    checks.fail(f"training smoke run: {name} returned {loss} in alternating steps; expected finite losses")


core.watch_functions(sys.modules[__name__])

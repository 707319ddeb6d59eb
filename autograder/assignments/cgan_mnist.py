"""Hidden checks of the ``cgan_mnist`` assignment (a conditional GAN on MNIST), and its tables.

Student interface: ``Generator(z_dim=64, num_classes=10)``, ``G(z (N, z_dim), labels (N,))`` ->
images ``(N, 1, 28, 28)`` in [-1, 1]; ``Discriminator(num_classes=10)``, ``D(x, labels)`` -> logits
``(N,)``; ``discriminator_loss(real_logits, fake_logits)``, ``generator_loss(fake_logits)``
(non-saturating), means over the batch; ``d_step(G, D, opt_d, real, labels, z)`` and
``g_step(G, D, opt_g, labels, z)`` return the loss before the update. Step and training checks
run with the reference losses bound to the notebook's names, so a slip in a loss costs only
the loss's tests.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autograder.checks as checks
from autograder.checks import core, edit, library_copy, rewrite, slip, variant
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


def _toy_digits(n: int, seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``n`` class-dependent images in [-1, 1] (label k: a bright bar at row 2k + 4) and their labels."""
    labels, images = torch.arange(n) % K, torch.full((n, *SHAPE), -1.0)
    for i, k in enumerate(labels.tolist()):
        images[i, 0, 2 * k + 4: 2 * k + 7, 5:23] = 1.0
    images = images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return images.clamp(-1, 1).to(device), labels.to(device)


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
        out = checks.call_model(D, "Discriminator", _toy_digits(1, 0, dev)[0].repeat(K, 1, 1, 1), torch.arange(K, device=dev))
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
    real, labels = _toy_digits(16, 0, dev)
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
_D_SLIPS = {
    "the sign is flipped": lambda r, f: -bce_discriminator_loss(r, f),
    "you sum over the batch instead of averaging": lambda r, f: bce_discriminator_loss(r, f, reduction="sum"),
    "the two terms are averaged instead of added (one BCE over the 2N logits)": lambda r, f: bce_discriminator_loss(r, f) / 2,
    "real and fake swap roles (real images are labelled 1, fakes 0)": lambda r, f: bce_discriminator_loss(f, r),
    "a sigmoid is applied to values that are already logits": lambda r, f: bce_discriminator_loss(r.sigmoid(), f.sigmoid()),
}
_G_SLIPS = {
    "you use the saturating (minimax) loss log(1 - D(G(z))) instead of -log D(G(z))": minimax_generator_loss,
    "the sign is flipped": lambda f: -nonsaturating_generator_loss(f),
    "you sum over the batch instead of averaging": lambda f: nonsaturating_generator_loss(f, reduction="sum"),
    "the fakes are labelled 0 (that is the discriminator's target)": lambda f: F.softplus(f).mean(),
    "a sigmoid is applied to values that are already logits": lambda f: nonsaturating_generator_loss(f.sigmoid()),
}
_STABLE = checks.STABLE_HINT + "; nn.BCELoss on probabilities clips the log at -100"


def _moderate(n_args: int, seed: int, dev: torch.device) -> list[tuple[Tensor, ...]]:
    return checks.make_logit_cases(seed=seed, sizes=(1, 7, 64), scale=2.0, extremes=False, n_args=n_args, device=dev)


@hidden("cgan_discriminator_loss")
def check_discriminator_loss(discriminator_loss: Fn, device: Device = None) -> None:
    """Value and gradient equal ``mean softplus(-real) + mean softplus(fake)`` on moderate logits."""
    checks.check_loss(discriminator_loss, bce_discriminator_loss, _moderate(2, 10, _dev(device)),
                      what="discriminator_loss", slips=_D_SLIPS)


@hidden("cgan_generator_loss")
def check_generator_loss(generator_loss: Fn, device: Device = None) -> None:
    """Value and gradient equal the non-saturating ``mean softplus(-fake)`` on moderate logits."""
    checks.check_loss(generator_loss, nonsaturating_generator_loss, _moderate(1, 30, _dev(device)),
                      what="generator_loss", slips=_G_SLIPS)


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
    real, labels = _toy_digits(12, 6, device)
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
    real, labels = _toy_digits(32, 9, dev)
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


# --- the tables: slips the tests must catch, correct variants, library copies ----------------------
G, D, DL, GL, DS, GS = "cgan_generator", "cgan_discriminator", "cgan_discriminator_loss", "cgan_generator_loss", \
    "cgan_d_step", "cgan_g_step"
T_GS, T_GL, T_DS, T_DLL = "test_generator_shapes", "test_generator_uses_label", "test_discriminator_shapes", \
    "test_discriminator_label_and_logits"
T_DLOSS, T_GLOSS, T_STABLE = "test_discriminator_loss", "test_generator_loss", "test_losses_stable"
T_DSTEP, T_GSTEP, T_SMOKE = "test_d_step", "test_g_step", "test_training_smoke"
SOLUTION_FIGURES = 4  # real digits, loss curves, snapshots, the 10x10 grid
_SIGNATURES = {"discriminator_loss": "real_logits, fake_logits", "generator_loss": "fake_logits",
               "d_step": "G, D, opt_d, real, labels, z", "g_step": "G, D, opt_g, labels, z"}


def _def(name: str, body: str, head: str = "") -> str:
    """Source of an answer cell: ``head``, then ``def name(<its arguments>):`` with ``body`` indented."""
    return f"{head}def {name}({_SIGNATURES[name]}):\n    " + body.replace("\n", "\n    ") + "\n"


_R, _F = ("F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))",
          "F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))")
# Ordered by answer cell; the harness packs them into five graded submissions.
SLIPS = [
    slip("G without the final tanh", edit(G, "nn.Linear(2 * hidden, 28 * 28), nn.Tanh(),", "nn.Linear(2 * hidden, 28 * 28),"),
         fails={T_GS}, message="tanh"),
    slip("G ignores the label", edit(G, "self.label_embedding(labels)]", "self.label_embedding(labels * 0)]"),
         fails={T_GL}, message="same image"),
    slip("D ends in a sigmoid", edit(D, "return self.net(h).squeeze(1)", "return torch.sigmoid(self.net(h)).squeeze(1)"),
         fails={T_DLL}, message="no sigmoid"),
    slip("D ignores the label", edit(D, "self.label_embedding(labels)]", "self.label_embedding(labels * 0)]"),
         fails={T_DLL}, message="whatever the label"),
    slip("D loss sums over the batch", edit(DL, _R, _R[:-1] + ", reduction='sum')"), edit(DL, _F, _F[:-1] + ", reduction='sum')"),
         fails={T_DLOSS}, message="sum over the batch"),
    slip("D loss with nn.BCELoss on probabilities", rewrite(DL, _def("discriminator_loss", "bce = nn.BCELoss()\nreturn "
         "bce(real_logits.sigmoid(), torch.ones_like(real_logits)) + bce(fake_logits.sigmoid(), torch.zeros_like(fake_logits))")),
         fails={T_STABLE}, message="numerically stable"),
    slip("D loss is one BCE over the 2N logits (a mean of the two terms)", rewrite(DL, _def("discriminator_loss", (
        "targets = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])\n"
        "return F.binary_cross_entropy_with_logits(torch.cat([real_logits, fake_logits]), targets)"))),
        fails={T_DLOSS}, message="averaged"),
    slip("G loss is the saturating minimax loss", edit(GL, "fake_logits, torch.ones_like(fake_logits))",
         "fake_logits, torch.zeros_like(fake_logits)).neg()"), fails={T_GLOSS}, message="saturating"),
    slip("G loss as naive log(sigmoid)", rewrite(GL, _def("generator_loss", "return -torch.log(torch.sigmoid(fake_logits)).mean()")),
         fails={T_STABLE}, message="numerically stable"),
    slip("d_step steps before backward", edit(DS, "    loss.backward()\n    opt_d.step()", "    opt_d.step()\n    loss.backward()"),
         fails={T_DSTEP, T_SMOKE}),
    slip("d_step swaps real and fake", edit(DS, "discriminator_loss(D(real, labels), D(fake, labels))",
         "discriminator_loss(D(fake, labels), D(real, labels))"), fails={T_DSTEP}, message="swapped"),
    slip("d_step does not detach the fakes", edit(DS, "    with torch.no_grad():\n        fake = G(z, labels)",
         "    fake = G(z, labels)"), fails={T_DSTEP}, message="detach"),
    slip("d_step without zero_grad", edit(DS, "    opt_d.zero_grad()\n", ""), fails={T_DSTEP}, message="zero_grad"),
    slip("g_step without zero_grad", edit(GS, "    opt_g.zero_grad()\n", ""), fails={T_GSTEP}, message="zero_grad"),
    slip("g_step returns the loss after the update", edit(GS, "    return loss.item()",
         "    return generator_loss(D(G(z, labels), labels)).item()"), fails={T_GSTEP}, message="before the update"),
]

_TUTORIAL = """class Generator(nn.Module):  # eriklindernoren/PyTorch-GAN, implementations/cgan/cgan.py
    def __init__(self, z_dim=64, num_classes=10):
        super().__init__()
        self.label_emb = nn.Embedding(num_classes, num_classes)

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(*block(z_dim + num_classes, 128, normalize=False), *block(128, 256),
                                   *block(256, 512), *block(512, 1024), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, noise, labels):
        img = self.model(torch.cat((self.label_emb(labels), noise), -1))
        return img.view(img.size(0), 1, 28, 28)
""", """class Discriminator(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, num_classes)
        self.model = nn.Sequential(nn.Linear(num_classes + 784, 512), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
                                   nn.Linear(512, 1))

    def forward(self, img, labels):
        return self.model(torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), -1)).squeeze(1)
"""
_CONV = """def weights_init(m):  # the DCGAN initialisation
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, z_dim=64, num_classes=10):
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Sequential(nn.Linear(z_dim + num_classes, 64 * 7 * 7), nn.BatchNorm1d(64 * 7 * 7), nn.ReLU(True))
        self.up = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(True),
                                nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh())
        self.apply(weights_init)

    def forward(self, z, labels):
        h = self.fc(torch.cat([z, F.one_hot(labels, self.num_classes).float()], 1))
        return self.up(h.view(-1, 64, 7, 7))
""", """class Discriminator(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.label_map = nn.Embedding(num_classes, 28 * 28)  # the label as a second image channel
        self.net = nn.Sequential(nn.Conv2d(2, 32, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(32, 64, 4, 2, 1),
                                 nn.LeakyReLU(0.2, True), nn.Flatten(), nn.Linear(64 * 7 * 7, 1))
        self.apply(weights_init)

    def forward(self, x, labels):
        return self.net(torch.cat([x, self.label_map(labels).view(-1, 1, 28, 28)], 1)).view(-1)
"""
_STEP_TAIL = "loss.backward()\nopt_{}.step()\nreturn loss.item()"
VARIANTS = [
    variant("PyTorch-GAN cgan.py MLPs (Embedding concatenated, BatchNorm1d(n, 0.8), Dropout)",
            rewrite(G, _TUTORIAL[0]), rewrite(D, _TUTORIAL[1])),
    variant("softplus losses", rewrite(DL, _def("discriminator_loss", "return F.softplus(-real_logits).mean() + "
            "F.softplus(fake_logits).mean()")), rewrite(GL, _def("generator_loss", "return F.softplus(-fake_logits).mean()"))),
    variant("d_step with .detach(), zero_grad(set_to_none=True) first, float(loss)", rewrite(DS, _def("d_step", (
        "opt_d.zero_grad(set_to_none=True)\nfake = G(z, labels).detach()\n"
        "loss = discriminator_loss(D(real, labels), D(fake, labels))\nloss.backward()\nopt_d.step()\nreturn float(loss)")))),
    variant("g_step freezing D (requires_grad_(False)) and G.zero_grad()", rewrite(GS, _def("g_step", (
        "D.requires_grad_(False)\nG.zero_grad()\nloss = generator_loss(D(G(z, labels), labels))\n"
        "D.requires_grad_(True)\n" + _STEP_TAIL.format("g"))))),
    variant("DCGAN-style conv G with F.one_hot labels and N(0, 0.02) init; conv D with a label channel",
            rewrite(G, _CONV[0]), rewrite(D, _CONV[1])),
    variant("logsigmoid and nn.BCEWithLogitsLoss forms", rewrite(DL, _def("discriminator_loss", (
        "return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())"))), rewrite(GL, _def(
        "generator_loss", "criterion = nn.BCEWithLogitsLoss()\nreturn criterion(fake_logits, torch.ones_like(fake_logits))"))),
    variant("d_step with one D forward on real + fake and D.zero_grad()", rewrite(DS, _def("d_step", (
        "fake = G(z, labels).detach()\nlogits = D(torch.cat([real, fake]), torch.cat([labels, labels]))\n"
        "loss = discriminator_loss(logits[: len(real)], logits[len(real):])\nD.zero_grad()\n" + _STEP_TAIL.format("d"))))),
    variant("g_step that warns (torch.tensor on a tensor) and zero_grad(set_to_none=True)", rewrite(GS, _def("g_step", (
        "labels = torch.tensor(labels, device=z.device)  # UserWarning: copy construct from a tensor\n"
        "opt_g.zero_grad(set_to_none=True)\nloss = generator_loss(D(G(z, labels), labels))\n" + _STEP_TAIL.format("g"))))),
]
LIBRARY_COPIES = [
    library_copy("discriminator_loss imports bce_discriminator_loss under another name", rewrite(DL, _def(
        "discriminator_loss", "return d(real_logits, fake_logits)", "from gan_utils.losses import bce_discriminator_loss as d\n\n\n")),
        fails={T_DLOSS, T_STABLE}),
    library_copy("Discriminator is an alias of the kit's ConditionalDiscriminator", rewrite(D, (
        "import gan_utils.models.cgan as cgan\n\nDiscriminator = cgan.ConditionalDiscriminator\n")), fails={T_DS, T_DLL, T_SMOKE}),
    library_copy("generator_loss calls the kit through a module alias", rewrite(GL, _def(
        "generator_loss", "return L.nonsaturating_generator_loss(fake_logits)", "import gan_utils.losses as L\n\n\n")),
        fails={T_GLOSS, T_STABLE}),
    library_copy("Generator subclasses the kit's ConditionalGenerator", rewrite(G, (
        "from gan_utils.models.cgan import ConditionalGenerator\n\n\nclass Generator(ConditionalGenerator):\n"
        "    def __init__(self, z_dim=64, num_classes=10):\n"
        "        super().__init__(z_dim=z_dim, num_classes=num_classes, base_channels=16)\n")), fails={T_GS, T_GL, T_SMOKE}),
]

core.watch_functions(sys.modules[__name__])

"""Hidden checks of ``super_resolution`` (16x16 -> 64x64 with a U-Net, MSE + GAN loss; the Penn seed, part 3).

Student interface: ``SRGenerator(in_channels=3, base=32)``, ``G(x)`` maps the degraded ``(N, C, 64, 64)`` image
in [-1, 1] to ``(N, C, 64, 64)`` in [-1, 1] (encoder of five 4x4 stride-2 convs, decoder of five 4x4 stride-2
transposed convs, each followed by the concatenation of the encoder map of that resolution, the input image
after the last one, then a 3x3 conv and tanh); ``generator_sr_loss(fake_logits, fake, real, adv_weight=1.0)``
= MSE + ``adv_weight`` x non-saturating GAN loss; ``g_step(G, D, opt_g, low, high, adv_weight=1.0)`` returns the
loss before the update. The step runs with the reference loss bound to the notebook's name, so a loss slip
costs only the loss's test. References are in :mod:`.super_resolution_reference`, tables in
:mod:`.super_resolution_tables`.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import autograder.assignments.super_resolution_reference as ref
import autograder.checks as checks
from autograder.assignments.super_resolution_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import core

_SR = ("gan_utils.models.sr.SRUNetGenerator", "gan_utils.models.SRUNetGenerator")
_LOSSES = tuple(f"gan_utils.losses.{m}{n}" for m, names in (
    ("", ("sr_generator_loss", "reconstruction_loss", "nonsaturating_generator_loss", "generator_loss")),
    ("reconstruction.", ("sr_generator_loss", "reconstruction_loss")),
    ("gan.", ("nonsaturating_generator_loss", "generator_loss"))) for n in names)
_TRAINERS = ("gan_utils.train.sr_trainer.SRTrainer", "gan_utils.train.gan_trainer.GANTrainer")
OFF_LIMITS: dict[str, tuple[str, ...]] = {
    "sr_generator": _SR, "generator_sr_loss": _LOSSES, "sr_g_step": _TRAINERS + ("gan_utils.losses.sr_generator_loss",),
}
hidden = checks.hidden_checks(OFF_LIMITS)
Model, Fn, Device = Callable[..., nn.Module], Callable[..., Any], str | torch.device | None


def _dev(device: Device) -> torch.device:
    return checks.grading_device() if device is None else torch.device(device)


# --- the U-Net ----------------------------------------------------------------------------------------
@hidden("sr_generator")
def check_generator_shapes(SRGenerator: Model, device: Device = None) -> None:
    """(N, 3, 64, 64) -> (N, 3, 64, 64) at two widths and batch sizes, in train and eval mode; outputs in
    [-1, 1] even for inputs scaled by 100 (a tanh at the end); every parameter gets a gradient."""
    dev = _dev(device)
    torch.manual_seed(0)
    for base, n in ((4, 2), (8, 5)):
        G = checks.build_model(SRGenerator, "SRGenerator", dev, in_channels=3, base=base)
        x = torch.rand(n, 3, 64, 64, device=dev) * 2 - 1
        checks.check_shapes(G, x, (n, 3, 64, 64), what=f"SRGenerator(base={base})(x)")
        checks.check_output_range(G, 100 * x, -1.0, 1.0, what=f"SRGenerator(base={base}) on inputs x 100 (end with tanh)")
        checks.check_shapes(G.eval(), x, (n, 3, 64, 64), what=f"SRGenerator(base={base}) in eval mode")
        G.train()
    checks.check_every_parameter_learns(G, x, what="SRGenerator (is every layer used in forward?)")


@hidden("sr_generator")
def check_generator_table(SRGenerator: Model, device: Device = None) -> None:
    """The convolutions of SRGenerator(base=32) are the seed's table: their (in, out, kernel, stride) say that
    the encoder map of every resolution is joined to the decoder and the input image to the last layer."""
    G = checks.build_model(SRGenerator, "SRGenerator", "cpu", in_channels=3, base=32)
    got, expected = ref.conv_layers(G), ref.seed_table(3, 32)
    if Counter(got) == Counter(expected):
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in G.modules())
        if n_bn != 10:
            checks.fail(f"SRGenerator(base=32): expected 10 BatchNorm2d layers (after each of the 5 encoder convs and "
                        f"5 decoder transposed convs), got {n_bn}")
        return
    last = [layer for layer in got if layer[0] == "same"]
    hint = ""
    if last and last[-1][1] == 16:
        hint = (" The last 3x3 conv takes 16 channels: the input image is not concatenated with the decoder's "
                "output before the last layer (expected 16 + 3 = 19).")
    elif any(layer not in expected for layer in got if layer[0] == "up"):
        hint = (" A transposed conv has unexpected input channels: after each upsampling, concatenate the encoder "
                "output of the same resolution (torch.cat(..., dim=1)) before the next layer.")
    missing = sorted((Counter(expected) - Counter(got)).elements())
    extra = sorted((Counter(got) - Counter(expected)).elements())
    checks.fail(f"SRGenerator(base=32): the convolutions differ from the seed's table.{hint} Expected, in order: "
                f"{ref.describe_layers(expected)}. Missing: {ref.describe_layers(missing) or 'none'}; "
                f"not expected: {ref.describe_layers(extra) or 'none'}.")


# --- the generator loss -------------------------------------------------------------------------------
@hidden("generator_sr_loss")
def check_generator_loss(generator_sr_loss: Fn, device: Device = None) -> None:
    """Value and gradients (w.r.t. the logits and the fakes) equal MSE + adv_weight * mean softplus(-logits),
    for adv_weight 1, 0.25, 0 and 2, and stay finite for logits of +-200."""
    slips = {text: functools.partial(ref.ref_generator_loss, slip=name) for text, name in ref.LOSS_SLIPS.items()}
    checks.check_loss(generator_sr_loss, ref.ref_generator_loss, ref.loss_cases(_dev(device)),
                      what="generator_sr_loss", slips=slips, rtol=1e-4, atol=1e-6)


# --- the generator step -------------------------------------------------------------------------------
@hidden("sr_g_step")
def check_g_step(g_step: Fn, device: Device = None) -> None:
    """Only G moves, as one reference SGD step on recon(G(low), high) + w * adv(D(G(low))) (the reference loss is
    bound to the name generator_sr_loss); D's parameters stay; returns the loss before the update."""
    dev = _dev(device)
    variants = {text: functools.partial(ref.ref_g_step, **kw) for text, kw in ref.G_STEP_SLIPS.items()}
    with checks.swapped_in(g_step, generator_sr_loss=ref.ref_generator_loss):
        checks.check_step("g_step", lambda s: g_step(s["G"], s["D"], s["opt_g"], s["low"], s["high"], s["adv_weight"]),
                          ref.ref_g_step, lambda: ref.step_state(dev), updated=("G",), unchanged=("D",),
                          variants=variants)


core.watch_functions(sys.modules[__name__])
core.watch_functions(ref)

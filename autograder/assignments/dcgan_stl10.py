"""Hidden checks of the ``dcgan_stl10`` assignment (Table-2 DCGAN, upsampling, WGAN / LSGAN, WGAN-GP).

This module holds parts 1-3 (the networks, DCGAN init, one step of each network, upsampling blocks
and overlap counts) and re-exports parts 4-5 from :mod:`.dcgan_stl10_wgan`; the references, cases and
off-limits names are in :mod:`.dcgan_stl10_reference`, the slips, variants and library copies graded
by ``tests/test_assignments.py`` in :mod:`.dcgan_stl10_tables`. Steps run with the reference losses
bound in the notebook (``checks.swapped_in``), so a slip in a loss costs only that loss's test.
Hidden tests only::

    import autograder.assignments.dcgan_stl10 as hidden
    hidden.check_generator_forward(Generator, seed=11)
"""

# ruff: noqa: F405 - the shared references, cases and `hidden` come from dcgan_stl10_reference
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

import autograder.checks as checks
from autograder.assignments.dcgan_stl10_reference import *  # noqa: F403 - OFF_LIMITS, hidden, references, cases
from autograder.assignments.dcgan_stl10_tables import (  # noqa: F401
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.assignments.dcgan_stl10_wgan import *  # noqa: F403 - parts 4 and 5
from autograder.checks import compare_close, core, fail


def _check_table(model: nn.Module, kind: type, want: tuple, stride_pad: list, bn_sizes: list, what: str) -> None:
    convs = layers_of(model, kind)
    shapes = [(a, b, 4, 4) if kind is nn.ConvTranspose2d else (b, a, 4, 4) for a, b in want]
    if [tuple(c.weight.shape) for c in convs] != shapes:
        fail(f"{what}: expected five 4x4 {kind.__name__} with weights {shapes}; found {[tuple(c.weight.shape) for c in convs]}")
    for i, (c, (s, p)) in enumerate(zip(convs, stride_pad, strict=True)):
        if tuple(c.stride) != (s, s) or tuple(c.padding) != (p, p):
            fail(f"{what}: layer {i + 1} should have stride {s} and padding {p}, got {tuple(c.stride)} and {tuple(c.padding)}")
    found = [b.num_features for b in layers_of(model, nn.BatchNorm2d)]
    if found != bn_sizes:
        fail(f"{what}: expected BatchNorm2d with {bn_sizes} channels (none elsewhere); found {found}")
    base = sum(a * b * 16 for a, b in want) + 2 * sum(bn_sizes)
    extra = sum(p.numel() for p in model.parameters()) - base
    if extra not in {sum(b for k, (_, b) in enumerate(want) if mask >> k & 1) for mask in range(32)}:
        fail(f"{what}: expected {base:,} conv and BatchNorm parameters (+ optional conv biases); found {base + extra:,}")


def _check_output(model: nn.Module, x: torch.Tensor, shape: tuple, what: str, images: bool = False) -> None:
    with torch.no_grad():
        out = checks.call_model(model, what, x)
    if tuple(out.shape) != shape:
        fail(f"{what} on inputs of shape {tuple(x.shape)}: expected output shape {shape}, got {tuple(out.shape)}")
    if images and (out.min() < -1 - 1e-6 or out.max() > 1 + 1e-6):
        fail(f"{what}: images must lie in [-1, 1] (end with tanh); got values in [{out.min():.3g}, {out.max():.3g}]")


# --- Part 1: the generator, the discriminator, DCGAN init ------------------------------------------
@hidden("generator")
def check_generator_shapes(Generator) -> None:
    for z_dim, width, out_ch, n in ((100, 4, 3, 2), (16, 2, 1, 3), (32, 2, 1, 5)):
        what = f"Generator(z_dim={z_dim}, width={width}, out_channels={out_ch})"
        G = build(Generator, "Generator", n, z_dim=z_dim, width=width, out_channels=out_ch)
        _check_output(G, torch.randn(n, z_dim, device=dev()), (n, out_ch, 64, 64), what, images=True)


@hidden("generator")
def check_generator_table2(Generator) -> None:
    G = build(Generator, "Generator", 0, device="cpu", z_dim=Z_DIM, width=128, out_channels=3)
    _check_table(G, nn.ConvTranspose2d, TABLE2, [(1, 0)] + [(2, 1)] * 4, [1024, 512, 256, 128], "Table 2")


@hidden("generator")
def check_generator_forward(Generator, width: int = 4, batch: int = 4, seed: int = 0) -> None:
    G = build(Generator, "Generator", seed, randomise=True, z_dim=Z_DIM, width=width, out_channels=3)
    z = torch.randn(batch, Z_DIM, device=dev())
    with torch.no_grad():
        got, expected = checks.call_model(G, "Generator", z), reference_generator(G, z)
    compare_close(got, expected, 1e-4, 1e-5, "generator forward pass (train mode) vs Table 2 "
                  "(ConvT -> BatchNorm -> ReLU for layers 1-4, ConvT -> tanh for layer 5)")


@hidden("generator")
def check_generator_gradients(Generator, seed: int = 0) -> None:
    G = build(Generator, "Generator", seed, z_dim=16, width=2, out_channels=3)
    checks.check_every_parameter_learns(G, torch.randn(3, 16, device=dev()), seed=seed)


@hidden("discriminator")
def check_discriminator_shapes(Discriminator) -> None:
    for width, in_ch, n in ((4, 3, 2), (2, 1, 5)):
        D = build(Discriminator, "Discriminator", n, width=width, in_channels=in_ch)
        x = torch.rand(n, in_ch, 64, 64, device=dev()) * 2 - 1
        _check_output(D, x, (n,), f"Discriminator(width={width}, in_channels={in_ch}) (one logit per image)")


@hidden("discriminator")
def check_discriminator_table2(Discriminator) -> None:
    D = build(Discriminator, "Discriminator", 0, device="cpu", width=128, in_channels=3)
    _check_table(D, nn.Conv2d, MIRROR, [(2, 1)] * 4 + [(1, 0)], [256, 512, 1024], "the mirrored Table 2")


@hidden("discriminator")
def check_discriminator_forward(Discriminator, width: int = 4, batch: int = 4, seed: int = 0) -> None:
    D = build(Discriminator, "Discriminator", seed, randomise=True, width=width, in_channels=3)
    x = torch.rand(batch, 3, 64, 64, device=dev()) * 2 - 1
    with torch.no_grad():
        got, expected = checks.call_model(D, "Discriminator", x), reference_discriminator(D, x)
        if got.shape == expected.shape and core.allclose(got, torch.sigmoid(expected), atol=1e-5):
            fail("the discriminator must return raw logits: leave the sigmoid to the loss (BCE with logits)")
        for slope in (0.01, 0.1, 0.0):
            if got.shape == expected.shape and core.allclose(got, reference_discriminator(D, x, slope), atol=1e-5):
                fail(f"use LeakyReLU with negative slope {SLOPE} (yours behaves like slope {slope})")
    compare_close(got, expected, 1e-4, 1e-5, "discriminator forward pass (train mode) vs the mirrored Table 2 "
                  "(Conv -> LeakyReLU(0.2); 3 x [Conv -> BatchNorm -> LeakyReLU(0.2)]; Conv 4x4 -> logit)")


@hidden("discriminator")
def check_discriminator_gradients(Discriminator, seed: int = 0) -> None:
    D = build(Discriminator, "Discriminator", seed, width=2, in_channels=1)
    checks.check_every_parameter_learns(D, torch.randn(3, 1, 64, 64, device=dev()), seed=seed)


@hidden("dcgan_init")
def check_dcgan_init(init_fn, seed: int = 0) -> None:
    """``model.apply(init_fn)``: conv weights ~ N(0, 0.02), BN scales ~ N(1, 0.02), BN shifts 0."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.ConvTranspose2d(256, 128, 4), nn.BatchNorm2d(4096), nn.ReLU(),
                          nn.Conv2d(128, 256, 4), nn.BatchNorm2d(4096), nn.LeakyReLU(0.2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    checks.call_student(model.apply, init_fn, what="model.apply(dcgan_weights_init)")
    for layer, mean, low, high in ((model[0], 0, 0.018, 0.022), (model[3], 0, 0.018, 0.022), (model[1], 1, 0.017, 0.023),
                                   (model[4], 1, 0.017, 0.023)):
        w, kind = layer.weight.detach(), "BatchNorm scales (weight)" if mean else f"{type(layer).__name__} weights"
        if abs(w.mean().item() - mean) > 0.003 or not low < w.std().item() < high:
            fail(f"{kind} should be ~ N({mean}, 0.02): got mean {w.mean().item():.4f}, std {w.std().item():.4f}")
    if model[1].bias.detach().abs().max() != 0 or model[4].bias.detach().abs().max() != 0:
        fail("BatchNorm shifts (bias) should be initialised to 0")


# --- Part 2: one step of each network ---------------------------------------------------------------
@hidden("discriminator_step")
def check_discriminator_step(discriminator_step, loss: str = "bce", seed: int = 0) -> None:
    """One clean update of D only (G untouched and without gradients), returning the loss before it."""
    fn = LOSSES[loss]
    checks.check_step("discriminator_step", run_step(discriminator_step, D_KEYS, loss_fn=fn),
                      run_step(reference_discriminator_step, D_KEYS, loss_fn=fn), tiny_state(seed), updated=["D"], frozen=["G"],
                      variants={"an update without zero_grad() (the old gradients were added)":
                                run_step(reference_discriminator_step, D_KEYS, loss_fn=fn, zero_grad=False)})


@hidden("generator_step")
def check_generator_step(generator_step, loss: str = "nonsaturating", seed: int = 0) -> None:
    """One clean update of G only; the gradient flows through D, whose parameters stay as they were."""
    fn, make = LOSSES[loss], tiny_state(seed)
    checks.check_step("generator_step", run_step(generator_step, G_KEYS, loss_fn=fn),
                      run_step(reference_generator_step, G_KEYS, loss_fn=fn), make, updated=["G"], unchanged=["D"],
                      variants={"an update without zero_grad() (the old gradients were added)":
                                run_step(reference_generator_step, G_KEYS, loss_fn=fn, zero_grad=False)})


class _FixedImages(nn.Module):
    """A stand-in generator that returns the same images whatever the latent."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("images", images)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[: z.shape[0]]


@hidden("discriminator", "discriminator_step")
def check_discriminator_learns(Discriminator, discriminator_step, images: torch.Tensor, seed: int = 0) -> None:
    """Smoke run: the student's D and step separate a fixed real batch from fixed noise (BCE loss falls by 20%)."""
    D = build(Discriminator, "Discriminator", seed, width=4, in_channels=images.shape[1])
    real = images.to(dev())
    G, z = _FixedImages(torch.rand_like(real) * 2 - 1), torch.zeros(real.shape[0], 1, device=dev())
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    checks.check_smoke_training(lambda: discriminator_step(G, D, opt, real, z, loss_fn=ref.bce_discriminator_loss),
                                steps=12, min_drop=0.2, window=1, what="the discriminator loss on one batch")


# --- Part 3: upsampling blocks and overlap counts ---------------------------------------------------
@hidden("upsample_block")
def check_upsample_shapes(Upsample2x) -> None:
    for mode in MODES:
        for n, h, w in ((2, 6, 4), (1, 3, 7)):
            block = build(Upsample2x, "Upsample2x", n, in_ch=5, out_ch=7, mode=mode)
            _check_output(block, torch.randn(n, 5, h, w, device=dev()), (n, 7, 2 * h, 2 * w), f"Upsample2x(5, 7, {mode!r})")
    try:
        Upsample2x(4, 4, "bicubic-ish")
    except ValueError:
        return
    except checks.LibraryCopy:
        raise
    except Exception as exc:  # noqa: BLE001 - any other error is the finding
        fail(f"Upsample2x(4, 4, 'bicubic-ish') should raise ValueError, got {type(exc).__name__}: {exc}")
    fail("Upsample2x(4, 4, 'bicubic-ish') should raise ValueError for an unknown mode, but the block was built")


@hidden("upsample_block")
def check_upsample_layers(Upsample2x, seed: int = 0) -> None:
    """Each mode equals the reference operation (F.conv_transpose2d, or F.interpolate then F.conv2d) on the block's weights."""
    for mode in MODES:
        block = build(Upsample2x, "Upsample2x", seed, in_ch=5, out_ch=7, mode=mode)
        x = torch.randn(2, 5, 6, 4, device=dev())
        with torch.no_grad():
            out = checks.call_model(block, f"Upsample2x(5, 7, {mode!r})", x)
        convs = layers_of(block, (nn.Conv2d, nn.ConvTranspose2d))
        kind, k = (nn.ConvTranspose2d, 4) if mode == "convtranspose" else (nn.Conv2d, 3)
        if len(convs) != 1 or not isinstance(convs[0], kind) or convs[0].kernel_size != (k, k):
            fail(f"mode {mode!r}: expected exactly one learnable {kind.__name__}(kernel_size={k}) in the block, "
                 f"found {[type(c).__name__ + str(tuple(c.kernel_size)) for c in convs]}")
        c = convs[0]
        with torch.no_grad():
            if mode == "convtranspose":
                expected = F.conv_transpose2d(x, c.weight, c.bias, stride=2, padding=1)
            else:
                up = F.interpolate(x, scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
                expected = F.conv2d(up, c.weight, c.bias, padding=1)
        compare_close(out, expected, 1e-4, 1e-5, f"Upsample2x, mode {mode!r}"
                      + (" (bilinear upsampling with align_corners=False)" if mode == "bilinear" else ""))


@hidden("overlap_counts")
def check_overlap_counts(count_fn, cases=OVERLAP_CASES) -> None:
    for case in cases:
        expected = reference_overlap_counts(*case)
        got = torch.as_tensor(checks.call_student(count_fn, *case, what="transposed_conv_overlap")).reshape(-1)
        if got.shape != expected.shape or not core.equal(got.round().long().cpu(), expected):
            fail(f"transposed_conv_overlap(in_size={case[0]}, kernel_size={case[1]}, stride={case[2]}, padding={case[3]}): "
                 f"expected counts {expected.tolist()}, got {got.tolist()}")


core.watch_functions(sys.modules[__name__])

"""Hidden checks of the ``dcgan_stl10`` assignment (Table-2 DCGAN, upsampling, WGAN / LSGAN, WGAN-GP).

What is particular to the assignment: functional references (Table 2 and its mirror on the
student's own weights, one reference step of each kind, overlap counts, a gradient penalty
that takes ``eps``), seeded cases, the kit's names each answer cell may not call, and (in
:mod:`.dcgan_stl10_tables`) the slips, variants and library copies graded by
``tests/test_assignments.py``. Steps run with the reference losses bound in the notebook
(``checks.swapped_in``), so a slip in a loss costs only that loss's test. Hidden tests only::

    import autograder.assignments.dcgan_stl10 as hidden
    hidden.check_generator_forward(Generator, seed=11)
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

import autograder.checks as checks
from autograder.assignments.dcgan_stl10_tables import (  # noqa: F401 - the tables the harness reads
    LIBRARY_COPIES,
    SLIPS,
    SOLUTION_FIGURES,
    VARIANTS,
)
from autograder.checks import compare_close, core, fail
from gan_utils import losses as ref


def _kit(module: str, *names: str) -> tuple[str, ...]:
    """Each name under both spellings, ``gan_utils.<package>.<name>`` and ``gan_utils.<module>.<name>`` (one object)."""
    package = module.rpartition(".")[0]
    return tuple(f"gan_utils.{where}.{name}" for name in names for where in (package, module))


DISPATCHERS = _kit("losses.gan", "generator_loss", "discriminator_loss")
WGAN = _kit("losses.gan", "wgan_critic_loss", "wgan_generator_loss", "hinge_generator_loss")
LSGAN = _kit("losses.gan", "lsgan_discriminator_loss", "lsgan_generator_loss")
PENALTY = _kit("losses.penalties", "gradient_penalty", "input_gradients")
CLIP = _kit("losses.penalties", "clip_weights_")
OFF_LIMITS: dict[str, tuple[str, ...]] = {  # answer cell -> the kit's finished versions it may not call
    "generator": _kit("models.dcgan", "DCGANGenerator"),
    "discriminator": _kit("models.dcgan", "DCGANDiscriminator"),
    "dcgan_init": _kit("models.dcgan", "dcgan_init"),
    "upsample_block": _kit("models.upsample", "UpsampleBlock"),
    "discriminator_step": (),
    "generator_step": (),
    "overlap_counts": (),
    "wgan_losses": WGAN + DISPATCHERS,
    "lsgan_losses": LSGAN + DISPATCHERS,
    "wgan_clip": CLIP,
    "wgan_critic_step": WGAN + CLIP + DISPATCHERS,
    "gradient_penalty": PENALTY,
    "wgan_gp_critic_step": WGAN + PENALTY + DISPATCHERS,
}
hidden = checks.hidden_checks(OFF_LIMITS)

Z_DIM, SEED_CLIP, GP_WEIGHT, SLOPE = 100, 0.05, 10.0, 0.2  # Penn seed z; Montreal clip; Gulrajani lambda
TABLE2 = ((100, 1024), (1024, 512), (512, 256), (256, 128), (128, 3))  # (in, out) of the five 4x4 ConvT
MIRROR = ((3, 128), (128, 256), (256, 512), (512, 1024), (1024, 1))
LOSSES = {"bce": ref.bce_discriminator_loss, "lsgan": ref.lsgan_discriminator_loss,
          "nonsaturating": ref.nonsaturating_generator_loss, "lsgan_g": ref.lsgan_generator_loss}
MODES = ("convtranspose", "nearest", "bilinear")
OVERLAP_CASES = ((8, 4, 2, 1), (8, 3, 2, 1), (8, 3, 2, 0), (7, 5, 3, 1), (6, 4, 2, 0), (5, 2, 2, 0), (4, 1, 1, 0))
D_KEYS, G_KEYS = ("G", "D", "opt_d", "real", "z"), ("G", "D", "opt_g", "z")


# --- references ---------------------------------------------------------------------------------
def _layers(model: nn.Module, kind: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _bn(x: torch.Tensor, bn: nn.Module) -> torch.Tensor:
    return F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)


def reference_generator(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Table 2 in train mode on ``G``'s weights: ConvT -> BN -> ReLU (x4), ConvT -> tanh."""
    convs, bns = _layers(G, nn.ConvTranspose2d), _layers(G, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 4:
        fail(f"Table 2 has 5 ConvTranspose2d and 4 BatchNorm2d layers; found {len(convs)} and {len(bns)}")
    x = z.reshape(z.shape[0], -1, 1, 1)
    for i, conv in enumerate(convs):
        x = F.conv_transpose2d(x, conv.weight, conv.bias, stride=1 if i == 0 else 2, padding=0 if i == 0 else 1)
        x = F.relu(_bn(x, bns[i])) if i < 4 else torch.tanh(x)
    return x


def reference_discriminator(D: nn.Module, x: torch.Tensor, slope: float = SLOPE) -> torch.Tensor:
    """The mirror in train mode on ``D``'s weights: Conv -> LReLU; (Conv -> BN -> LReLU) x3; Conv -> logit."""
    convs, bns = _layers(D, nn.Conv2d), _layers(D, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 3:
        fail(f"the mirrored Table 2 has 5 Conv2d and 3 BatchNorm2d layers; found {len(convs)} and {len(bns)}")
    for i, conv in enumerate(convs[:4]):
        x = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
        x = F.leaky_relu(_bn(x, bns[i - 1]) if i else x, slope)
    return F.conv2d(x, convs[4].weight, convs[4].bias).reshape(x.shape[0])


def reference_discriminator_step(G, D, opt_d, real, z, loss_fn=ref.bce_discriminator_loss, zero_grad=True) -> float:
    loss = loss_fn(D(real), D(G(z).detach()))
    if zero_grad:
        opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()


def reference_generator_step(G, D, opt_g, z, loss_fn=ref.nonsaturating_generator_loss, zero_grad=True) -> float:
    loss = loss_fn(D(G(z)))
    if zero_grad:
        opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()


def reference_wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return fake_scores.mean() - real_scores.mean()


def reference_clip_weights(module: nn.Module, clip: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-clip, clip)


def reference_gradient_penalty(critic, real, fake, eps=None) -> torch.Tensor:
    """``mean_i (||grad f(x_hat_i)|| - 1)^2``, ``x_hat = eps real + (1 - eps) fake``; depends on the critic only."""
    if eps is None:
        eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (eps.detach() * real.detach() + (1 - eps.detach()) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def reference_overlap_counts(in_size: int, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Ones pushed through a 1-D transposed conv with an all-ones kernel."""
    ones, kernel = torch.ones(1, 1, in_size, dtype=torch.float64), torch.ones(1, 1, kernel_size, dtype=torch.float64)
    return F.conv_transpose1d(ones, kernel, stride=stride, padding=padding).reshape(-1).round().long()


# --- cases ----------------------------------------------------------------------------------------
def _dev() -> torch.device:
    return checks.grading_device()


def _build(cls, what: str, seed: int, randomise: bool = False, device=None, **kwargs) -> nn.Module:
    """``cls(**kwargs)`` built after ``manual_seed(seed)``; optionally with non-trivial weights, BN scales and biases."""
    torch.manual_seed(seed)
    model = checks.build_model(cls, what, _dev() if device is None else device, **kwargs)
    with torch.no_grad():
        for p in model.parameters() if randomise else ():
            p.normal_(0.0, 0.2) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    return model.train()


def _tiny(seed: int, critic=None, scale: float = 1.0, lr: float = 0.1):
    """``make_state`` for ``checks.check_step``: tiny G and D (no BatchNorm), an SGD optimiser each, real images, latents."""
    def make() -> dict:
        torch.manual_seed(seed)
        G = checks.TinyGenerator(z_dim=8, image_shape=(3, 8, 8)).to(_dev())
        D = (critic() if critic else checks.TinyDiscriminator(image_shape=(3, 8, 8))).to(_dev())
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(scale)
        return {"G": G, "D": D, "opt_d": torch.optim.SGD(D.parameters(), lr=lr), "opt_g": torch.optim.SGD(G.parameters(), lr=lr),
                "real": torch.rand(6, 3, 8, 8, device=_dev()) * 2 - 1, "z": torch.randn(6, 8, device=_dev())}
    return make


def _run(step, keys: tuple[str, ...], swap: dict | None = None, **kwargs):
    """``state -> step(*state[keys], **kwargs)``, with ``swap`` bound in the step's notebook namespace."""
    def run(state: dict):
        with checks.swapped_in(step, **(swap or {})):
            return step(*(state[k] for k in keys), **kwargs)
    return run


def _linear_critic() -> nn.Module:
    """f(x) = w.x + b with ||w|| well above 1: its penalty (||w|| - 1)^2 does not depend on eps."""
    critic = nn.Sequential(nn.Flatten(), nn.Linear(192, 1), nn.Flatten(0))
    with torch.no_grad():
        critic[1].weight.mul_(20.0)
    return critic


def _gp_case(seed: int, n: int = 5):
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0))
    real, fake, eps = (torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1, torch.rand(n, 3, 4, 4, dtype=torch.float64) * 2 - 1,
                       torch.rand(n, 1, 1, 1, dtype=torch.float64))
    return critic.double().to(_dev()), real.to(_dev()), fake.to(_dev()), eps.to(_dev())


def _score_cases(seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Real scores (6,) and fake scores (4,): different batch sizes catch sum-for-mean and broadcasting."""
    g = torch.Generator().manual_seed(seed)
    return [((torch.randn(6, generator=g, dtype=torch.float64) + 0.5).to(_dev()),
             (torch.randn(4, generator=g, dtype=torch.float64) - 0.3).to(_dev())) for _ in range(2)]


def _check_table(model: nn.Module, kind: type, want: tuple, stride_pad: list, bn_sizes: list, what: str) -> None:
    convs = _layers(model, kind)
    shapes = [(a, b, 4, 4) if kind is nn.ConvTranspose2d else (b, a, 4, 4) for a, b in want]
    if [tuple(c.weight.shape) for c in convs] != shapes:
        fail(f"{what}: expected five 4x4 {kind.__name__} with weights {shapes}; found {[tuple(c.weight.shape) for c in convs]}")
    for i, (c, (s, p)) in enumerate(zip(convs, stride_pad, strict=True)):
        if tuple(c.stride) != (s, s) or tuple(c.padding) != (p, p):
            fail(f"{what}: layer {i + 1} should have stride {s} and padding {p}, got {tuple(c.stride)} and {tuple(c.padding)}")
    found = [b.num_features for b in _layers(model, nn.BatchNorm2d)]
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
        G = _build(Generator, "Generator", n, z_dim=z_dim, width=width, out_channels=out_ch)
        _check_output(G, torch.randn(n, z_dim, device=_dev()), (n, out_ch, 64, 64), what, images=True)


@hidden("generator")
def check_generator_table2(Generator) -> None:
    G = _build(Generator, "Generator", 0, device="cpu", z_dim=Z_DIM, width=128, out_channels=3)
    _check_table(G, nn.ConvTranspose2d, TABLE2, [(1, 0)] + [(2, 1)] * 4, [1024, 512, 256, 128], "Table 2")


@hidden("generator")
def check_generator_forward(Generator, width: int = 4, batch: int = 4, seed: int = 0) -> None:
    G = _build(Generator, "Generator", seed, randomise=True, z_dim=Z_DIM, width=width, out_channels=3)
    z = torch.randn(batch, Z_DIM, device=_dev())
    with torch.no_grad():
        got, expected = checks.call_model(G, "Generator", z), reference_generator(G, z)
    compare_close(got, expected, 1e-4, 1e-5, "generator forward pass (train mode) vs Table 2 "
                  "(ConvT -> BatchNorm -> ReLU for layers 1-4, ConvT -> tanh for layer 5)")


@hidden("generator")
def check_generator_gradients(Generator, seed: int = 0) -> None:
    G = _build(Generator, "Generator", seed, z_dim=16, width=2, out_channels=3)
    checks.check_every_parameter_learns(G, torch.randn(3, 16, device=_dev()), seed=seed)


@hidden("discriminator")
def check_discriminator_shapes(Discriminator) -> None:
    for width, in_ch, n in ((4, 3, 2), (2, 1, 5)):
        D = _build(Discriminator, "Discriminator", n, width=width, in_channels=in_ch)
        x = torch.rand(n, in_ch, 64, 64, device=_dev()) * 2 - 1
        _check_output(D, x, (n,), f"Discriminator(width={width}, in_channels={in_ch}) (one logit per image)")


@hidden("discriminator")
def check_discriminator_table2(Discriminator) -> None:
    D = _build(Discriminator, "Discriminator", 0, device="cpu", width=128, in_channels=3)
    _check_table(D, nn.Conv2d, MIRROR, [(2, 1)] * 4 + [(1, 0)], [256, 512, 1024], "the mirrored Table 2")


@hidden("discriminator")
def check_discriminator_forward(Discriminator, width: int = 4, batch: int = 4, seed: int = 0) -> None:
    D = _build(Discriminator, "Discriminator", seed, randomise=True, width=width, in_channels=3)
    x = torch.rand(batch, 3, 64, 64, device=_dev()) * 2 - 1
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
    D = _build(Discriminator, "Discriminator", seed, width=2, in_channels=1)
    checks.check_every_parameter_learns(D, torch.randn(3, 1, 64, 64, device=_dev()), seed=seed)


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
    checks.check_step("discriminator_step", _run(discriminator_step, D_KEYS, loss_fn=fn),
                      _run(reference_discriminator_step, D_KEYS, loss_fn=fn), _tiny(seed), updated=["D"], frozen=["G"],
                      variants={"an update without zero_grad() (the old gradients were added)":
                                _run(reference_discriminator_step, D_KEYS, loss_fn=fn, zero_grad=False)})


@hidden("generator_step")
def check_generator_step(generator_step, loss: str = "nonsaturating", seed: int = 0) -> None:
    """One clean update of G only; the gradient flows through D, whose parameters stay as they were."""
    fn, make = LOSSES[loss], _tiny(seed)
    checks.check_step("generator_step", _run(generator_step, G_KEYS, loss_fn=fn),
                      _run(reference_generator_step, G_KEYS, loss_fn=fn), make, updated=["G"], unchanged=["D"],
                      variants={"an update without zero_grad() (the old gradients were added)":
                                _run(reference_generator_step, G_KEYS, loss_fn=fn, zero_grad=False)})


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
    D = _build(Discriminator, "Discriminator", seed, width=4, in_channels=images.shape[1])
    real = images.to(_dev())
    G, z = _FixedImages(torch.rand_like(real) * 2 - 1), torch.zeros(real.shape[0], 1, device=_dev())
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    checks.check_smoke_training(lambda: discriminator_step(G, D, opt, real, z, loss_fn=ref.bce_discriminator_loss),
                                steps=12, min_drop=0.2, window=1, what="the discriminator loss on one batch")


# --- Part 3: upsampling blocks and overlap counts ---------------------------------------------------
@hidden("upsample_block")
def check_upsample_shapes(Upsample2x) -> None:
    for mode in MODES:
        for n, h, w in ((2, 6, 4), (1, 3, 7)):
            block = _build(Upsample2x, "Upsample2x", n, in_ch=5, out_ch=7, mode=mode)
            _check_output(block, torch.randn(n, 5, h, w, device=_dev()), (n, 7, 2 * h, 2 * w), f"Upsample2x(5, 7, {mode!r})")
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
        block = _build(Upsample2x, "Upsample2x", seed, in_ch=5, out_ch=7, mode=mode)
        x = torch.randn(2, 5, 6, 4, device=_dev())
        with torch.no_grad():
            out = checks.call_model(block, f"Upsample2x(5, 7, {mode!r})", x)
        convs = _layers(block, (nn.Conv2d, nn.ConvTranspose2d))
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


# --- Part 4: WGAN (clipping) and LSGAN --------------------------------------------------------------
_SUM = "you sum over the batch instead of averaging (mean)"


@hidden("wgan_losses")
def check_wgan_losses(wgan_critic_loss, wgan_generator_loss, seed: int = 0) -> None:
    cases = _score_cases(seed)
    checks.check_loss(wgan_critic_loss, ref.wgan_critic_loss, cases, rtol=1e-6, atol=1e-9, what="wgan_critic_loss", slips={
        "the sign is flipped: the critic minimises mean(f(G(z))) - mean(f(x))": lambda r, f: r.mean() - f.mean(),
        _SUM: lambda r, f: f.sum() - r.sum()})
    checks.check_loss(wgan_generator_loss, ref.wgan_generator_loss, [(f,) for _, f in cases], rtol=1e-6, atol=1e-9,
                      what="wgan_generator_loss", slips={
                          "the sign is flipped: the generator minimises -mean(f(G(z)))": lambda f: f.mean(), _SUM: lambda f: -f.sum()})


@hidden("lsgan_losses")
def check_lsgan_losses(lsgan_discriminator_loss, lsgan_generator_loss, seed: int = 0) -> None:
    cases = _score_cases(seed)
    checks.check_loss(lsgan_discriminator_loss, ref.lsgan_discriminator_loss, cases, rtol=1e-6, atol=1e-9,
                      what="lsgan_discriminator_loss", slips={
                          "you add the factor 1/2 (use the handout's form without it)": lambda r, f: 0.5 * ref.lsgan_discriminator_loss(r, f),
                          "the targets are swapped (real -> 1, fake -> 0)": lambda r, f: (r ** 2).mean() + ((f - 1) ** 2).mean(),
                          "you square sigmoid(outputs) instead of the raw outputs":
                              lambda r, f: ((torch.sigmoid(r) - 1) ** 2).mean() + (torch.sigmoid(f) ** 2).mean(),
                          _SUM: lambda r, f: ((r - 1) ** 2).sum() + (f ** 2).sum()})
    checks.check_loss(lsgan_generator_loss, ref.lsgan_generator_loss, [(f,) for _, f in cases], rtol=1e-6, atol=1e-9,
                      what="lsgan_generator_loss", slips={
                          "you add the factor 1/2 (use the handout's form without it)": lambda f: 0.5 * ((f - 1) ** 2).mean(),
                          "the generator pushes D(G(z)) towards 0 instead of 1": lambda f: (f ** 2).mean(),
                          _SUM: lambda f: ((f - 1) ** 2).sum()})


@hidden("wgan_clip")
def check_clip_weights(clip_weights, clip_constant: float, seed: int = 0) -> None:
    """``WGAN_CLIP`` is the seed's 0.05; every parameter clamped in place to ``[-c, c]``; buffers untouched."""
    if not math.isclose(checks.as_number(clip_constant, "WGAN_CLIP"), SEED_CLIP):
        fail(f"the handout clips the critic's weights to [-{SEED_CLIP}, {SEED_CLIP}]; WGAN_CLIP is {clip_constant!r}")
    for clip in (0.05, 0.3):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 1)).to(_dev())
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 4 * clip)
            model[1].running_var.fill_(5.0)
        tensors, before = list(model.parameters()), checks.snapshot(model)
        buffers = [b.clone() for b in model.buffers()]
        checks.call_student(clip_weights, model, clip, what=f"clip_weights(model, {clip})")
        if any(a is not b for a, b in zip(model.parameters(), tensors, strict=True)):
            fail("clip the parameters in place (p.clamp_ under torch.no_grad(), or p.data.clamp_); do not replace them")
        for (name, p), b in zip(model.named_parameters(), before, strict=True):
            if not core.equal(p.detach(), b.clamp(-clip, clip)):
                fail(f"clip_weights(model, {clip}): parameter {name!r} should equal clamp(p, -{clip}, {clip}); "
                     f"its values lie in [{p.min().item():.3g}, {p.max().item():.3g}]")
        if any(not core.equal(a, b) for a, b in zip(model.buffers(), buffers, strict=True)):
            fail("clip only the parameters: buffers such as BatchNorm running statistics must stay as they are")


# what the critic steps look up in the notebook while they are graded: the course's versions
WGAN_STEP_SWAP = {"discriminator_step": reference_discriminator_step, "wgan_critic_loss": reference_wgan_critic_loss,
                  "clip_weights": reference_clip_weights}
GP_STEP_SWAP = {"wgan_critic_loss": reference_wgan_critic_loss, "gradient_penalty": reference_gradient_penalty}


def _wgan_reference(clip: float | None, lam: float | None, clip_first: bool = False):
    """The reference critic step: WGAN loss (+ lam * GP), one update, then clipping to ``[-clip, clip]``."""
    def run(s: dict) -> float:
        if clip is not None and clip_first:  # a slip: clipping before the update
            reference_clip_weights(s["D"], clip)
        fake = s["G"](s["z"]).detach()
        loss = reference_wgan_critic_loss(s["D"](s["real"]), s["D"](fake))
        if lam is not None:
            loss = loss + lam * reference_gradient_penalty(s["D"], s["real"], fake)
        s["opt_d"].zero_grad()
        loss.backward()
        s["opt_d"].step()
        if clip is not None and not clip_first:
            reference_clip_weights(s["D"], clip)
        return loss.item()
    return run


@hidden("wgan_critic_step")
def check_wgan_critic_step(wgan_critic_step, seed: int = 0) -> None:
    """One SGD step on the WGAN critic loss, then every parameter clamped (clip given explicitly: 0.05 and 0.2)."""
    for clip in (SEED_CLIP, 0.2):
        checks.check_step(f"wgan_critic_step(..., clip={clip})", _run(wgan_critic_step, D_KEYS, WGAN_STEP_SWAP, clip=clip),
                          _wgan_reference(clip, None), _tiny(seed, scale=3.0), updated=["D"], frozen=["G"],
                          variants={"clipping before the optimiser step instead of after it": _wgan_reference(clip, None, clip_first=True),
                                    "a WGAN update without clipping": _wgan_reference(None, None)})


# --- Part 5: the gradient penalty and the WGAN-GP critic step ---------------------------------------
def _penalty(gp_fn, critic, real, fake, eps, expected: torch.Tensor, what: str) -> torch.Tensor:
    got = checks.call_student(gp_fn, critic, real, fake, eps=eps, what="gradient_penalty")
    if not core.is_tensor(got) or got.numel() != 1:
        fail(f"gradient_penalty should return a scalar tensor, got {core.describe(got)}")
    n, value = real.shape[0], core.tensor_detach(got).reshape(()).to(expected.dtype)
    if float(expected) > 1e-6 and math.isclose(float(value), n * float(expected), rel_tol=1e-6):
        fail(f"{what}: expected {float(expected):.6g}, got {float(value):.6g}, {n} times too large: "
             "average over the batch (mean), not sum")
    compare_close(value, core.tensor_detach(expected), 1e-6, 1e-9, what)
    return got


@hidden("gradient_penalty")
def check_gradient_penalty_linear(gradient_penalty, seed: int = 0) -> None:
    """A linear critic ``f(x) = w.x + b`` gives ``(||w|| - 1)^2`` for any interpolation; with ``eps=None``
    each interpolate lies on the segment between its real and fake sample (one eps per sample)."""
    _, real, fake, eps = _gp_case(seed)
    direction = torch.randn(48, dtype=real.dtype, device=_dev())
    for norm in (2.5, 0.4):
        w, seen = direction / direction.norm() * norm, []

        def critic(x, w=w, seen=seen):
            seen.append(core.tensor_detach(x))
            return x.flatten(1) @ w + 0.3

        expected = torch.tensor((norm - 1.0) ** 2, dtype=real.dtype, device=_dev())
        _penalty(gradient_penalty, critic, real, fake, eps, expected, f"penalty of a linear critic with ||w|| = {norm}")
        _penalty(gradient_penalty, critic, real, fake, None, expected, f"penalty of a linear critic with ||w|| = {norm}, eps=None")
        d, r = (real - fake).flatten(1), (seen[-1] - fake).flatten(1)
        e = (r * d).sum(1, keepdim=True) / (d * d).sum(1, keepdim=True)
        if not core.allclose(r, e * d, atol=1e-8) or bool((e < -1e-9).any() | (e > 1 + 1e-9).any()):
            fail("with eps=None, each x_hat_i must lie on the segment between real_i and fake_i: draw one eps per "
                 "sample, of shape (N, 1, 1, 1), not one per pixel")


@hidden("gradient_penalty")
def check_gradient_penalty_reference(gradient_penalty, seed: int = 0) -> None:
    critic, real, fake, eps = _gp_case(seed)
    _penalty(gradient_penalty, critic, real, fake, eps, reference_gradient_penalty(critic, real, fake, eps),
             "gradient penalty of a small conv critic vs the reference on the same eps")


@hidden("gradient_penalty")
def check_gradient_penalty_backprop(gradient_penalty, seed: int = 0) -> None:
    """The penalty's gradient w.r.t. the critic's parameters equals the reference's (needs ``create_graph=True``)."""
    critic, real, fake, eps = _gp_case(seed)
    params = list(critic.parameters())
    expected = reference_gradient_penalty(critic, real, fake, eps)
    want = torch.autograd.grad(expected, params, allow_unused=True)  # the last bias does not change the input gradient
    got = _penalty(gradient_penalty, critic, real, fake, eps, expected, "gradient penalty of a small conv critic")
    if not got.requires_grad:
        fail("the penalty does not depend on the critic's parameters through autograd: take the input gradient "
             "with torch.autograd.grad(..., create_graph=True) so that the critic can be trained on it")
    have = torch.autograd.grad(got.reshape(()), params, allow_unused=True)
    for (name, p), a, b in zip(critic.named_parameters(), have, want, strict=True):
        zero = torch.zeros_like(p)
        compare_close(zero if a is None else a, zero if b is None else b, 1e-6, 1e-9,
                      f"gradient of the penalty w.r.t. the critic parameter {name!r}")


@hidden("wgan_gp_critic_step")
def check_wgan_gp_critic_step(wgan_gp_critic_step, seed: int = 0) -> None:
    """One SGD step on ``L_WGAN + lam * GP`` (the reference penalty swapped in; a linear critic makes it exact)."""
    for lam in (None, 2.0):
        kwargs = {} if lam is None else {"lam": lam}
        checks.check_step(f"wgan_gp_critic_step(...{', lam=2.0' if lam else ''})", _run(wgan_gp_critic_step, D_KEYS, GP_STEP_SWAP, **kwargs),
                          _wgan_reference(None, lam or GP_WEIGHT), _tiny(seed, critic=_linear_critic, lr=0.05),
                          updated=["D"], frozen=["G"], variants={
                              f"the penalty weight {GP_WEIGHT:g} instead of lam": _wgan_reference(None, GP_WEIGHT),
                              "the WGAN critic loss without the penalty": _wgan_reference(None, None)})


core.watch_functions(sys.modules[__name__])

"""Grading checks for the ``dcgan_stl10`` assignment, Parts 1-3 (Table-2 generator
and mirrored discriminator, DCGAN init, training steps, upsampling blocks, overlap
counts). Parts 4-5 (WGAN, LSGAN, WGAN-GP) are in :mod:`.dcgan_stl10_losses`.

Each ``check_*`` function tests one thing the student wrote and raises
``AssertionError`` with a message that says what was expected and what came.
References are computed here, at grade time, on seeded inputs on the CPU:
functional re-implementations of Table 2 that use the student's own weights, one
SGD step computed with ``torch.autograd.grad`` on copies of tiny models, and
``torch.nn.functional.conv_transpose1d`` for overlap counts. Every check runs
under ``autograder.checks``' ``checked`` (tamper guard, deterministic algorithms,
warnings and stderr silenced).

Used from the graded test cells of ``solutions/dcgan_stl10``::

    from autograder.assignments import dcgan_stl10 as grading
    grading.check_generator_forward(Generator, width=4)
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from autograder.checks import core
from autograder.checks.core import checked

Z_DIM = 100
# Table 2 of the Penn seed: (in, out) channels of the five 4x4 transposed convolutions.
TABLE2_GENERATOR = ((100, 1024), (1024, 512), (512, 256), (256, 128), (128, 3))
SEED_CLIP = 0.05  # the Montreal seed's WGAN clipping constant
LEAKY_SLOPE = 0.2


# --- small utilities ----------------------------------------------------------------------


@contextmanager
def _rng(seed: int) -> Iterator[None]:
    """Seed torch inside the block without disturbing the notebook's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _fail(message: str) -> None:
    raise AssertionError(message)


def _as_float(value: object, what: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            _fail(f"{what} should return one number (a float or a 0-d tensor), got a tensor of shape {tuple(value.shape)}")
        return float(value.detach())
    if isinstance(value, (int, float)):
        return float(value)
    _fail(f"{what} should return the loss as a float (e.g. loss.item()), got {type(value).__name__}")
    raise AssertionError  # unreachable


def _close(got: torch.Tensor, expected: torch.Tensor, what: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    got = torch.as_tensor(got).detach().to(expected.dtype)
    if got.shape != expected.shape:
        _fail(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if not torch.allclose(got, expected, rtol=rtol, atol=atol):
        diff = (got - expected).abs().max().item()
        _fail(f"{what}: values differ from the reference (max abs difference {diff:.3g}, tolerance atol={atol:g}, rtol={rtol:g})")


def _modules_of(model: nn.Module, kind: type | tuple[type, ...]) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _channels(z_dim: int, width: int, out_channels: int) -> list[int]:
    return [z_dim, 8 * width, 4 * width, 2 * width, width, out_channels]


# --- Part 1: generator and discriminator -------------------------------------------------


@checked
def check_generator_shapes(generator_cls: Callable[..., nn.Module]) -> None:
    """``Generator(z_dim, width, out_channels)`` maps ``(N, z_dim)`` to ``(N, C, 64, 64)`` in [-1, 1]."""
    for z_dim, width, out_ch, n in ((100, 4, 3, 2), (16, 2, 1, 3)):
        with _rng(0):
            G = generator_cls(z_dim=z_dim, width=width, out_channels=out_ch)
            out = G(torch.randn(n, z_dim))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, out_ch, 64, 64):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            _fail(f"Generator(z_dim={z_dim}, width={width}, out_channels={out_ch}) on z of shape ({n}, {z_dim}): "
                  f"expected images of shape ({n}, {out_ch}, 64, 64), got {got}")
        if out.min() < -1 - 1e-6 or out.max() > 1 + 1e-6:
            _fail("generator outputs must lie in [-1, 1] (end with tanh), "
                  f"got values in [{out.min().item():.3g}, {out.max().item():.3g}]")


@checked
def check_generator_table2(generator_cls: Callable[..., nn.Module]) -> None:
    """At ``width=128`` the layers and parameter count are those of Table 2."""
    G = generator_cls(z_dim=Z_DIM, width=128, out_channels=3)
    convs = _modules_of(G, nn.ConvTranspose2d)
    want = [(cin, cout, 4, 4) for cin, cout in TABLE2_GENERATOR]
    got = [tuple(c.weight.shape) for c in convs]
    if got != want:
        _fail(f"Table 2 has five 4x4 transposed convolutions with weights {want}; found {got}")
    for i, c in enumerate(convs):
        stride, pad = ((1, 1), (0, 0)) if i == 0 else ((2, 2), (1, 1))
        if tuple(c.stride) != stride or tuple(c.padding) != pad:
            _fail(f"transposed conv {i + 1} should have stride {stride[0]} and padding {pad[0]}, "
                  f"got stride {tuple(c.stride)} and padding {tuple(c.padding)}")
    bns = _modules_of(G, nn.BatchNorm2d)
    if [b.num_features for b in bns] != [1024, 512, 256, 128]:
        _fail("Table 2 puts BatchNorm after the first four transposed convolutions (1024, 512, 256, 128 "
              f"channels) and none after the last; found BatchNorm2d with {[b.num_features for b in bns]}")
    n_weights = sum(cin * cout * 16 for cin, cout in TABLE2_GENERATOR)
    n_bn = 2 * (1024 + 512 + 256 + 128)
    biases = [cout for _, cout in TABLE2_GENERATOR]
    allowed = {n_weights + n_bn + sum(b for b, keep in zip(biases, mask, strict=True) if keep)
               for mask in _masks(len(biases))}
    total = sum(p.numel() for p in G.parameters())
    if total not in allowed:
        _fail(f"Table 2 has {n_weights:,} conv weights + {n_bn:,} BatchNorm parameters "
              f"(+ optional conv biases, {n_weights + n_bn:,} to {max(allowed):,} in all); "
              f"your generator has {total:,} parameters")


def _masks(n: int) -> Iterator[tuple[bool, ...]]:
    for k in range(2**n):
        yield tuple(bool(k >> i & 1) for i in range(n))


def _generator_reference(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    convs, bns = _modules_of(G, nn.ConvTranspose2d), _modules_of(G, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 4:
        _fail(f"expected 5 ConvTranspose2d and 4 BatchNorm2d layers, found {len(convs)} and {len(bns)}")
    x = z.reshape(z.shape[0], -1, 1, 1)
    for i, conv in enumerate(convs):
        stride, pad = (1, 0) if i == 0 else (2, 1)
        x = F.conv_transpose2d(x, conv.weight, conv.bias, stride=stride, padding=pad)
        if i < 4:
            bn = bns[i]
            x = F.relu(F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps))
    return torch.tanh(x)


@checked
def check_generator_forward(generator_cls: Callable[..., nn.Module], width: int = 4, batch: int = 4,
                            seed: int = 0) -> None:
    """The forward pass is ConvT -> BN -> ReLU (x4) -> ConvT -> tanh, using the student's weights."""
    with _rng(seed):
        G = generator_cls(z_dim=Z_DIM, width=width, out_channels=3)
        for p in G.parameters():  # non-trivial BN affine parameters and biases
            p.data.normal_(0.0, 0.2) if p.dim() > 1 else p.data.uniform_(0.5, 1.5)
        z = torch.randn(batch, Z_DIM)
    G.train()
    with torch.no_grad():
        expected = _generator_reference(G, z)
        got = G(z)
    _close(got, expected, "generator forward pass (train mode) vs Table 2 "
           "(ConvT -> BatchNorm -> ReLU for layers 1-4, ConvT -> tanh for layer 5)")


@checked
def check_discriminator_shapes(discriminator_cls: Callable[..., nn.Module]) -> None:
    """``Discriminator(width, in_channels)`` maps ``(N, C, 64, 64)`` to logits ``(N,)``."""
    for width, in_ch, n in ((4, 3, 2), (2, 1, 5)):
        with _rng(0):
            D = discriminator_cls(width=width, in_channels=in_ch)
            out = D(torch.rand(n, in_ch, 64, 64) * 2 - 1)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n,):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            _fail(f"Discriminator(width={width}, in_channels={in_ch}) on images ({n}, {in_ch}, 64, 64): "
                  f"expected one logit per image, shape ({n},), got {got}")


@checked
def check_discriminator_table2(discriminator_cls: Callable[..., nn.Module]) -> None:
    """At ``width=128`` the discriminator mirrors Table 2 (convs 3-128-256-512-1024-1)."""
    D = discriminator_cls(width=128, in_channels=3)
    convs = _modules_of(D, nn.Conv2d)
    want = [(128, 3, 4, 4), (256, 128, 4, 4), (512, 256, 4, 4), (1024, 512, 4, 4), (1, 1024, 4, 4)]
    got = [tuple(c.weight.shape) for c in convs]
    if got != want:
        _fail(f"the mirrored discriminator has five 4x4 convolutions with weights {want}; found {got}")
    for i, c in enumerate(convs):
        stride, pad = ((2, 2), (1, 1)) if i < 4 else ((1, 1), (0, 0))
        if tuple(c.stride) != stride or tuple(c.padding) != pad:
            _fail(f"conv {i + 1} should have stride {stride[0]} and padding {pad[0]}, "
                  f"got stride {tuple(c.stride)} and padding {tuple(c.padding)}")
    bns = [b.num_features for b in _modules_of(D, nn.BatchNorm2d)]
    if bns != [256, 512, 1024]:
        _fail(f"expected BatchNorm after convs 2-4 (256, 512, 1024 channels), none after the first and "
              f"the last; found BatchNorm2d with {bns}")
    n_weights = sum(math.prod(s) for s in want) + 2 * (256 + 512 + 1024)
    biases = [128, 256, 512, 1024, 1]
    allowed = {n_weights + sum(b for b, keep in zip(biases, mask, strict=True) if keep) for mask in _masks(len(biases))}
    total = sum(p.numel() for p in D.parameters())
    if total not in allowed:
        _fail(f"the mirrored discriminator has {n_weights:,} conv + BatchNorm parameters "
              f"(+ optional biases); yours has {total:,}")


def _discriminator_reference(D: nn.Module, x: torch.Tensor, slope: float = LEAKY_SLOPE) -> torch.Tensor:
    convs, bns = _modules_of(D, nn.Conv2d), _modules_of(D, nn.BatchNorm2d)
    if len(convs) != 5 or len(bns) != 3:
        _fail(f"expected 5 Conv2d and 3 BatchNorm2d layers, found {len(convs)} and {len(bns)}")
    for i, conv in enumerate(convs[:4]):
        x = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)
        if i > 0:
            bn = bns[i - 1]
            x = F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
        x = F.leaky_relu(x, slope)
    return F.conv2d(x, convs[4].weight, convs[4].bias).reshape(x.shape[0])


@checked
def check_discriminator_forward(discriminator_cls: Callable[..., nn.Module], width: int = 4,
                                batch: int = 4, seed: int = 0) -> None:
    """Conv -> LeakyReLU(0.2), then (Conv -> BN -> LeakyReLU) x3, then a 4x4 conv to one logit."""
    with _rng(seed):
        D = discriminator_cls(width=width, in_channels=3)
        for p in D.parameters():
            p.data.normal_(0.0, 0.2) if p.dim() > 1 else p.data.uniform_(0.5, 1.5)
        x = torch.rand(batch, 3, 64, 64) * 2 - 1
    D.train()
    with torch.no_grad():
        got, expected = D(x), _discriminator_reference(D, x)
        if tuple(got.shape) == expected.shape and torch.allclose(got, torch.sigmoid(expected), atol=1e-5):
            _fail("the discriminator must return raw logits: leave the sigmoid to the loss (BCE with logits)")
        for slope in (0.01, 0.1, 0.0):
            if tuple(got.shape) == expected.shape and torch.allclose(got, _discriminator_reference(D, x, slope), atol=1e-5):
                _fail(f"use LeakyReLU with negative slope {LEAKY_SLOPE} (yours behaves like slope {slope})")
    _close(got, expected, "discriminator forward pass (train mode) vs the mirrored Table 2 "
           "(Conv -> LeakyReLU(0.2); 3 x [Conv -> BatchNorm -> LeakyReLU(0.2)]; Conv 4x4 -> logit)")


@checked
def check_gradient_flow(model: nn.Module, inputs: torch.Tensor, seed: int = 0) -> None:
    """A loss on the output sends a finite, non-zero gradient to every trainable parameter."""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(inputs)
    with _rng(seed):
        weights = torch.randn_like(out)
    (out * weights).sum().backward()
    dead = [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0)]
    if dead:
        _fail(f"no (or a non-finite) gradient reaches these parameters: {dead[:6]}"
              f"{' ...' if len(dead) > 6 else ''}; is something detached or unused?")
    model.zero_grad(set_to_none=True)


@checked
def check_dcgan_init(init_fn: Callable[[nn.Module], object], seed: int = 0) -> None:
    """``module.apply(init_fn)``: conv weights ~ N(0, 0.02), BN scales ~ N(1, 0.02), BN shifts 0."""
    with _rng(seed):
        model = nn.Sequential(nn.ConvTranspose2d(256, 128, 4), nn.BatchNorm2d(4096), nn.ReLU(),
                              nn.Conv2d(128, 256, 4), nn.BatchNorm2d(4096), nn.LeakyReLU(0.2))
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(3.0)
        model.apply(init_fn)
    for i in (0, 3):
        w = model[i].weight.detach()
        kind = type(model[i]).__name__
        if abs(w.mean().item()) > 0.002 or not 0.018 < w.std().item() < 0.022:
            _fail(f"{kind} weights should be ~ N(0, 0.02): got mean {w.mean().item():.4f}, std {w.std().item():.4f}")
    for i in (1, 4):
        bn = model[i]
        w = bn.weight.detach()
        if abs(w.mean().item() - 1) > 0.003 or not 0.017 < w.std().item() < 0.023:
            _fail(f"BatchNorm scales (weight) should be ~ N(1, 0.02): got mean {w.mean().item():.4f}, "
                  f"std {w.std().item():.4f}")
        if bn.bias.detach().abs().max() != 0:
            _fail("BatchNorm shifts (bias) should be initialised to 0")


# --- Part 2: one discriminator step, one generator step ----------------------------------


def _tiny_pair(seed: int, z_dim: int = 8, size: int = 8, channels: int = 3) -> tuple[nn.Module, nn.Module]:
    """A small MLP generator and discriminator without BatchNorm (deterministic steps)."""
    with _rng(seed):
        G = nn.Sequential(nn.Linear(z_dim, channels * size * size), nn.Tanh(), nn.Unflatten(1, (channels, size, size)))
        D = nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, 16), nn.LeakyReLU(0.2),
                          nn.Linear(16, 1), nn.Flatten(0))
    return G, D


def _batch(seed: int, n: int = 6, z_dim: int = 8, size: int = 8, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    with _rng(seed):
        return torch.rand(n, channels, size, size) * 2 - 1, torch.randn(n, z_dim)


def _sgd_reference(model: nn.Module, loss: torch.Tensor, lr: float) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return [(p - lr * g).detach() for p, g in zip(model.parameters(), grads, strict=True)]


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _compare_params(model: nn.Module, expected: list[torch.Tensor], what: str, atol: float = 1e-6) -> None:
    for (name, p), e in zip(model.named_parameters(), expected, strict=True):
        if not torch.allclose(p.detach(), e, atol=atol, rtol=1e-5):
            _fail(f"{what}: parameter {name!r} differs from one SGD step on the reference loss "
                  f"(max abs difference {(p.detach() - e).abs().max().item():.3g})")


def _fill_stale_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = torch.ones_like(p)


def _run_d_step(step_fn: Callable, G: nn.Module, D: nn.Module, real: torch.Tensor, z: torch.Tensor,
                lr: float, **kwargs: object) -> float:
    opt = torch.optim.SGD(D.parameters(), lr=lr)
    _fill_stale_grads(D)
    G.zero_grad(set_to_none=True)
    return _as_float(step_fn(G, D, opt, real, z, **kwargs), "the discriminator step")


def _check_generator_untouched(G: nn.Module, before: list[torch.Tensor], what: str) -> None:
    if any(not torch.equal(p.detach(), b) for p, b in zip(G.parameters(), before, strict=True)):
        _fail(f"{what} changed the generator's parameters; it must update only the discriminator")
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()):
        _fail(f"{what} sent gradients into the generator: detach the fakes (G(z).detach()) "
              "so the discriminator loss does not reach G")


@checked
def check_discriminator_step(step_fn: Callable, loss_fn: Callable, seed: int = 0, lr: float = 0.1) -> None:
    """``step_fn(G, D, opt_d, real, z, loss_fn)`` does one clean update of D only."""
    G, D = _tiny_pair(seed)
    real, z = _batch(seed + 1)
    ref_D = copy.deepcopy(D)
    ref_loss = loss_fn(ref_D(real), ref_D(G(z).detach()))
    expected = _sgd_reference(ref_D, ref_loss, lr)
    g_before = _params(G)
    got = _run_d_step(step_fn, G, D, real, z, lr, loss_fn=loss_fn)
    if not math.isclose(got, ref_loss.item(), rel_tol=1e-4, abs_tol=1e-5):
        _fail(f"the discriminator step returned loss {got:.6g}, expected {ref_loss.item():.6g} "
              "(loss_fn(D(real), D(G(z))) before the update)")
    _check_generator_untouched(G, g_before, "the discriminator step")
    _compare_params(D, expected, "after the discriminator step (did you zero the old gradients first?)")


@checked
def check_generator_step(step_fn: Callable, loss_fn: Callable, seed: int = 0, lr: float = 0.1) -> None:
    """``step_fn(G, D, opt_g, z, loss_fn)`` does one clean update of G only."""
    G, D = _tiny_pair(seed)
    _, z = _batch(seed + 1)
    ref_G = copy.deepcopy(G)
    ref_loss = loss_fn(D(ref_G(z)))
    expected = _sgd_reference(ref_G, ref_loss, lr)
    d_before = _params(D)
    opt = torch.optim.SGD(G.parameters(), lr=lr)
    _fill_stale_grads(G)
    got = _as_float(step_fn(G, D, opt, z, loss_fn=loss_fn), "the generator step")
    if not math.isclose(got, ref_loss.item(), rel_tol=1e-4, abs_tol=1e-5):
        _fail(f"the generator step returned loss {got:.6g}, expected {ref_loss.item():.6g} (loss_fn(D(G(z))))")
    if any(not torch.equal(p.detach(), b) for p, b in zip(D.parameters(), d_before, strict=True)):
        _fail("the generator step changed the discriminator's parameters; it must update only G")
    _compare_params(G, expected, "after the generator step (gradients must flow through D into G; "
                    "zero the old gradients first)")


@checked
def check_discriminator_learns(discriminator_cls: Callable[..., nn.Module], step_fn: Callable,
                               loss_fn: Callable, images: torch.Tensor, steps: int = 12, seed: int = 0) -> None:
    """Smoke run: the student's D and step separate a fixed real batch from fixed noise."""
    with _rng(seed):
        D = discriminator_cls(width=4, in_channels=images.shape[1])
        fakes = torch.rand_like(images) * 2 - 1
    fixed = _FixedImages(fakes)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    z = torch.zeros(images.shape[0], 1)
    values = [_as_float(step_fn(fixed, D, opt, images, z, loss_fn=loss_fn), "the discriminator step")
              for _ in range(steps)]
    if not all(math.isfinite(v) for v in values):
        _fail(f"non-finite discriminator losses during a short run: {values}")
    if not values[-1] < 0.7 * values[0]:
        _fail(f"overfitting one batch, the discriminator loss should fall by 30% in {steps} steps; "
              f"it went from {values[0]:.4g} to {values[-1]:.4g}")


class _FixedImages(nn.Module):
    """A stand-in "generator" that returns the same images whatever the latent."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = nn.Parameter(images.clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[: z.shape[0]]


# --- Part 3: upsampling blocks and overlap counts -------------------------------------------


@checked
def check_upsample_block(block_cls: Callable[..., nn.Module], mode: str, seed: int = 0) -> None:
    """``block_cls(in_ch, out_ch, mode)`` doubles H and W with the layers of the Montreal seed."""
    with _rng(seed):
        block = block_cls(5, 7, mode)
        x = torch.randn(2, 5, 6, 4)
    with torch.no_grad():
        out = block(x)
    if tuple(out.shape) != (2, 7, 12, 8):
        _fail(f"mode {mode!r}: input (2, 5, 6, 4) should give (2, 7, 12, 8), got {tuple(out.shape)}")
    convs = _modules_of(block, (nn.Conv2d, nn.ConvTranspose2d))
    if len(convs) != 1:
        _fail(f"mode {mode!r}: expected exactly one learnable convolution in the block, found {len(convs)}")
    conv = convs[0]
    if mode == "convtranspose":
        if not isinstance(conv, nn.ConvTranspose2d) or conv.kernel_size != (4, 4):
            _fail("mode 'convtranspose' should use nn.ConvTranspose2d(kernel_size=4, stride=2, padding=1)")
        expected = F.conv_transpose2d(x, conv.weight, conv.bias, stride=2, padding=1)
    else:
        if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (3, 3):
            _fail(f"mode {mode!r} should upsample by 2, then apply nn.Conv2d(kernel_size=3, padding=1)")
        if mode == "nearest":
            up = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        expected = F.conv2d(up, conv.weight, conv.bias, padding=1)
    _close(out, expected.detach(), f"upsampling block, mode {mode!r}")


@checked
def check_upsample_rejects_unknown_mode(block_cls: Callable[..., nn.Module]) -> None:
    try:
        block_cls(4, 4, "bicubic-ish")
    except ValueError:
        return
    except Exception as exc:  # noqa: BLE001 - any other error type is the finding
        _fail(f"an unknown mode should raise ValueError, got {type(exc).__name__}: {exc}")
    _fail("an unknown mode should raise ValueError, but the block was built")


OVERLAP_CASES = ((8, 4, 2, 1), (8, 3, 2, 1), (8, 3, 2, 0), (7, 5, 3, 1), (6, 4, 2, 0), (5, 2, 2, 0), (4, 1, 1, 0))


def reference_overlap_counts(in_size: int, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """Push ones through a 1-D transposed conv with an all-ones kernel (no bias)."""
    ones = torch.ones(1, 1, in_size, dtype=torch.float64)
    kernel = torch.ones(1, 1, kernel_size, dtype=torch.float64)
    out = F.conv_transpose1d(ones, kernel, stride=stride, padding=padding)
    return out.reshape(-1).round().long()


@checked
def check_overlap_counts(count_fn: Callable[[int, int, int, int], object],
                         cases: tuple[tuple[int, int, int, int], ...] = OVERLAP_CASES) -> None:
    """``count_fn(in_size, kernel_size, stride, padding)`` matches ones pushed through the layer."""
    for case in cases:
        expected = reference_overlap_counts(*case)
        got = torch.as_tensor(count_fn(*case)).reshape(-1)
        if got.shape != expected.shape or not torch.equal(got.round().long(), expected):
            _fail(f"in_size={case[0]}, kernel_size={case[1]}, stride={case[2]}, padding={case[3]}: "
                  f"expected counts {expected.tolist()}, got {got.tolist()}")


# A notebook that patches these checks (or what they call) makes every check refuse to run.
core.watch_functions(sys.modules[__name__])

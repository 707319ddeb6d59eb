"""GAN inversion and masked restoration by optimising the latent code (HUJI seed).

Given a trained generator ``G`` and images ``I``, find codes ``z`` with ``G(z) ~ I`` by
gradient descent on ``z`` alone (``G`` stays fixed, in eval mode):

    z* = argmin_z  ||M * (G(z) - I)||^2 / sum(M)        (per image)

``M`` is a mask of kept pixels (1 = kept, 0 = missing, from
:mod:`gan_utils.data.degradations`); without one every pixel counts and this is plain
inversion. Restoration reads the missing pixels off ``G(z*)``, since every code the
generator knows maps to a plausible image (Yeh et al., 2017, "Semantic image inpainting
with deep generative models", restore faces this way with a weighted L1 "contextual" loss
plus a perceptual term; this module uses the squared error over the kept pixels).
The loss is non-convex in ``z``: several random starts per image, keeping the best, help.

>>> from gan_utils.inversion import invert_latents
>>> result = invert_latents(G, images, mask, steps=300, restarts=4)    # doctest: +SKIP
>>> restored = mask * images + (1 - mask) * result.images             # doctest: +SKIP

Also :func:`interpolate_latents`, the codes ``a z1 + (1 - a) z2`` of an interpolation.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["InversionResult", "interpolate_latents", "invert_latents", "per_image_masked_mse"]


class InversionResult(NamedTuple):
    """What :func:`invert_latents` found: the best start per image.

    Attributes:
        z: codes ``(N, z_dim)`` (detached).
        images: ``G(z)`` ``(N, C, H, W)`` (detached, eval mode).
        loss: per-image masked MSE ``(N,)`` of ``images`` against the target.
        history: mean (over images and starts) loss after each step, ``steps`` floats.
    """

    z: Tensor
    images: Tensor
    loss: Tensor
    history: list[float]


def _check_images(images: Tensor, what: str) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"{what} must be a float tensor (N, C, H, W), got shape {tuple(images.shape)}, dtype {images.dtype}")


def _expand_mask(mask: Tensor | None, like: Tensor) -> Tensor:
    if mask is None:
        return torch.ones_like(like)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor (1, H, W) or (N, 1, H, W), got {type(mask).__name__}")
    try:
        m = mask.to(like).expand_as(like)
    except RuntimeError as exc:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to images of shape {tuple(like.shape)}: "
                         f"expected (1, {like.shape[-2]}, {like.shape[-1]}) or (N, 1, H, W)") from exc
    kept = m.flatten(1).sum(1)
    if bool((kept <= 0).any()):
        raise ValueError("the mask keeps no pixel of at least one image (all zeros): nothing to invert from")
    return m


def per_image_masked_mse(generated: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Masked mean squared error of each image, ``(N,)``: ``sum(M (G - I)^2) / sum(M)`` per image."""
    _check_images(generated, "generated")
    _check_images(target, "target")
    if generated.shape != target.shape:
        raise ValueError(f"generated and target must have the same shape, got {tuple(generated.shape)} and {tuple(target.shape)}")
    m = _expand_mask(mask, target)
    return (m * (generated - target) ** 2).flatten(1).sum(1) / m.flatten(1).sum(1)


def invert_latents(
    generator: nn.Module,
    target: Tensor,
    mask: Tensor | None = None,
    *,
    steps: int = 300,
    lr: float = 0.05,
    restarts: int = 1,
    z_init: Tensor | None = None,
    seed: int = 0,
) -> InversionResult:
    """Optimise codes so that ``generator(z)`` matches ``target`` on the kept pixels.

    Args:
        generator: ``z (N, z_dim) -> images (N, C, H, W)`` with a ``z_dim`` (or ``latent_dim``)
            attribute; it is put in eval mode and its parameters get no gradient (both restored after).
        target: images ``(N, C, H, W)`` in the generator's range (the missing pixels may hold anything).
        mask: 1 = kept, 0 = missing; ``(1, H, W)``, ``(N, 1, H, W)`` or ``None`` (all kept).
        steps: Adam steps on ``z`` (>= 1).
        lr: Adam learning rate.
        restarts: random starts per image (>= 1); the one with the lowest final loss is kept.
        z_init: starting codes ``(N, z_dim)`` for the first start (default: ``N(0, I)``).
        seed: seeds the random starts (a private generator; the global RNG is untouched).

    Returns:
        :class:`InversionResult`. Each code sees only its own image's loss (the objective is the
        sum of the per-image losses), so results do not depend on the other images in the batch.
    """
    _check_images(target, "target")
    z_dim = getattr(generator, "z_dim", getattr(generator, "latent_dim", None))
    if not isinstance(z_dim, int):
        raise ValueError("the generator needs a z_dim (or latent_dim) attribute: the size of its codes")
    if not (isinstance(steps, int) and steps >= 1 and isinstance(restarts, int) and restarts >= 1):
        raise ValueError(f"steps and restarts must be positive ints, got steps={steps!r}, restarts={restarts!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    n = target.shape[0]
    device = next(generator.parameters()).device
    target = target.to(device)
    m = _expand_mask(mask if mask is None else mask.to(device), target)
    gen = torch.Generator().manual_seed(seed)
    starts = torch.stack([torch.randn(n, z_dim, generator=gen) for _ in range(restarts)])  # start k: same for any restarts
    if z_init is not None:
        if tuple(z_init.shape) != (n, z_dim):
            raise ValueError(f"z_init must have shape ({n}, {z_dim}), got {tuple(z_init.shape)}")
        starts[0] = z_init.detach().cpu()
    z = starts.reshape(restarts * n, z_dim).to(device=device, dtype=target.dtype).requires_grad_(True)
    big_target, big_mask = target.repeat(restarts, 1, 1, 1), m.repeat(restarts, 1, 1, 1)
    was_training = generator.training
    flags = [p.requires_grad for p in generator.parameters()]
    generator.eval()
    for p in generator.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([z], lr=lr)
    history: list[float] = []
    try:
        for _ in range(steps):
            losses = per_image_masked_mse(generator(z), big_target, big_mask)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
            opt.step()
            history.append(float(losses.detach().mean()))
        with torch.no_grad():
            final = per_image_masked_mse(generator(z), big_target, big_mask).reshape(restarts, n)
            best = final.argmin(dim=0)
            z_best = z.detach().reshape(restarts, n, z_dim)[best, torch.arange(n, device=device)]
            images = generator(z_best)
    finally:
        generator.train(was_training)
        for p, flag in zip(generator.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return InversionResult(z_best, images, final.min(dim=0).values, history)


def interpolate_latents(z1: Tensor, z2: Tensor, alphas: Tensor) -> Tensor:
    """Codes ``alphas[k] * z1 + (1 - alphas[k]) * z2`` for each ``k``: ``(K, d)`` for ``z1, z2`` of shape ``(d,)``."""
    if not (isinstance(z1, Tensor) and isinstance(z2, Tensor) and isinstance(alphas, Tensor)):
        raise TypeError("z1, z2 and alphas must be torch.Tensors")
    if z1.dim() != 1 or z1.shape != z2.shape or alphas.dim() != 1:
        raise ValueError(f"expected z1, z2 of the same shape (d,) and alphas (K,), got {tuple(z1.shape)}, "
                         f"{tuple(z2.shape)}, {tuple(alphas.shape)}")
    a = alphas.to(z1)[:, None]
    return a * z1 + (1 - a) * z2

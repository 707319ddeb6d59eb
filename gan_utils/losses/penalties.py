"""Regularisers that keep a critic / discriminator smooth.

All penalties take a *callable* ``critic(x) -> scores`` rather than a module, so a
conditional critic is penalised through a closure::

    gp = gradient_penalty(lambda x: D(x, labels), real, fake)
    loss_d = wgan_critic_loss(D(real, labels), D(fake, labels)) + 10.0 * gp

The critic must return one score per sample (``(N,)`` or ``(N, 1)``; a patch
critic's ``(N, ...)`` scores are summed per sample) and each sample's score must
depend only on that sample: a critic with ``BatchNorm`` in training mode mixes the
batch, so the per-sample gradients below would be wrong (WGAN-GP uses no BatchNorm
in the critic; LayerNorm/InstanceNorm are fine).

Input gradients are taken out of place with ``torch.autograd.grad(...,
create_graph=True)``, so the penalty is differentiable with respect to the critic's
parameters and ``.backward()`` on ``loss_d + lambda * penalty`` trains it. Inputs
are detached first: a penalty never sends gradients into the generator or the data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gan_utils.losses._checks import check_same_shape, check_tensor

Critic = Callable[[Tensor], Tensor]

__all__ = ["gradient_penalty", "r1_penalty", "r2_penalty", "clip_weights_", "input_gradients"]


def input_gradients(critic: Critic, x: Tensor) -> Tensor:
    """Gradient of ``critic(x).sum()`` with respect to ``x``, with ``create_graph=True``.

    Args:
        critic: callable mapping ``(N, ...)`` inputs to per-sample scores ``(N, ...)``.
        x: ``(N, ...)`` floating-point inputs (detached inside).

    Returns:
        ``(N, ...)`` tensor: row ``i`` is ``d critic(x)_i / d x_i`` when each score
        depends only on its own sample. Works inside ``torch.no_grad()`` blocks too
        (grad mode is switched on locally).
    """
    check_tensor("x", x, min_dim=1)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        scores = critic(x)
        if not isinstance(scores, Tensor):
            raise TypeError(f"critic must return a tensor, got {type(scores).__name__}")
        if scores.dim() == 0 or scores.shape[0] != x.shape[0]:
            raise ValueError(
                f"critic must return one score per sample, shape ({x.shape[0]},) or "
                f"({x.shape[0]}, ...), got shape {tuple(scores.shape)} for inputs of shape "
                f"{tuple(x.shape)}"
            )
        if not scores.requires_grad:
            raise RuntimeError(
                "the critic's output does not depend on its input through autograd; check "
                "that the critic uses its argument (for a conditional critic pass "
                "`lambda x: D(x, labels)`) and does not detach it"
            )
        (grad,) = torch.autograd.grad(
            scores.sum(), x, create_graph=True, retain_graph=True, allow_unused=True
        )
    if grad is None:
        raise RuntimeError(
            "the critic's output does not depend on its input; for a conditional critic "
            "pass `lambda x: D(x, labels)` so that x flows into D"
        )
    return grad


def _per_sample_norm(grad: Tensor) -> Tensor:
    return torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1), ord=2, dim=1)


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    target: float = 1.0,
    generator: torch.Generator | None = None,
    return_grad_norm: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """WGAN-GP penalty ``mean_i (||grad_x f(x_hat_i)||_2 - target)^2`` (Gulrajani et al.).

    ``x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i`` with one ``eps_i ~ U[0, 1]``
    per sample, so each ``x_hat_i`` lies on the segment between a real and a fake
    sample. The norm is over all non-batch dims (channels and pixels together).
    Multiply by the penalty weight (10 in the paper) yourself.

    Args:
        critic: ``f(x) -> (N,)`` scores; see the module docstring for conditional use.
        real: ``(N, ...)`` real batch.
        fake: ``(N, ...)`` fake batch of the same shape (detached inside).
        target: the gradient norm to pull towards (1 for 1-Lipschitz; 0 gives the
            zero-centred variant on interpolates).
        generator: optional ``torch.Generator`` for the ``eps`` draws (reproducible
            penalties); it must live on the inputs' device.
        return_grad_norm: also return the detached per-sample norms ``(N,)``,
            handy for logging how far the critic is from 1-Lipschitz.

    Returns:
        A scalar tensor (differentiable w.r.t. the critic's parameters), or
        ``(penalty, grad_norms)`` when ``return_grad_norm`` is true.
    """
    check_tensor("real", real, min_dim=1)
    check_tensor("fake", fake, min_dim=1)
    check_same_shape("real", real, "fake", fake)
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    norms = _per_sample_norm(input_gradients(critic, x_hat))
    penalty = ((norms - target) ** 2).mean()
    if return_grad_norm:
        return penalty, norms.detach()
    return penalty


def _zero_centred(critic: Critic, x: Tensor, return_grad_norm: bool):
    grad = input_gradients(critic, x)
    sq = grad.reshape(grad.shape[0], -1).pow(2).sum(dim=1)
    penalty = sq.mean()
    if return_grad_norm:
        return penalty, sq.detach().sqrt()
    return penalty


def r1_penalty(
    critic: Critic, real: Tensor, return_grad_norm: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """R1 penalty ``mean_i ||grad_x D(x_i)||^2`` at real samples (Mescheder et al., 2018).

    Returned *without* the ``gamma / 2`` factor: add ``0.5 * gamma * r1_penalty(...)``
    to the discriminator loss. Taken on logits (before any sigmoid). For a linear
    critic ``D(x) = w . x + b`` it equals ``||w||^2``.

    Args:
        critic: ``D(x) -> (N,)`` logits.
        real: ``(N, ...)`` real batch (detached inside).
        return_grad_norm: also return the detached per-sample norms ``(N,)``.
    """
    return _zero_centred(critic, real, return_grad_norm)


def r2_penalty(
    critic: Critic, fake: Tensor, return_grad_norm: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """R2 penalty ``mean_i ||grad_x D(x_i)||^2`` at generated samples; see :func:`r1_penalty`."""
    return _zero_centred(critic, fake, return_grad_norm)


@torch.no_grad()
def clip_weights_(module: nn.Module, clip: float = 0.01) -> nn.Module:
    """Clamp every parameter of ``module`` to ``[-clip, clip]`` in place (original WGAN).

    Call after each critic optimiser step. The WGAN paper uses ``clip = 0.01``;
    the CelebA handout uses ``0.05``. Clipping every parameter includes biases and
    norm-layer affine weights (as in the original implementation). Returns the
    module so calls can be chained.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not clip > 0:
        raise ValueError(f"clip must be a positive number, got {clip!r}")
    for p in module.parameters():
        p.clamp_(-clip, clip)
    return module

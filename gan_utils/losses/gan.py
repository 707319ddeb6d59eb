"""Adversarial losses, all computed from raw discriminator outputs (logits).

Conventions used throughout:

* Every function returns a quantity to **minimise**: the discriminator (critic)
  minimises the ``*_discriminator_loss`` / ``wgan_critic_loss`` value and the
  generator minimises the ``*_generator_loss`` value.
* Inputs are *logits* ``l`` (any real number), never probabilities. The
  discriminator's probability of "real" is ``D = sigmoid(l)``. Passing
  ``sigmoid`` outputs here is a silent bug (the losses then see values in
  ``[0, 1]`` as logits); it is not detected, because a batch of genuine logits can
  also lie in ``[0, 1]``. Keep the sigmoid out of the model and let these losses
  apply it in a numerically stable way.
* Stable forms: ``-log D = softplus(-l)`` and ``-log(1 - D) = softplus(l)``.
  They stay finite, with correct gradients, at ``|l| = 100`` where
  ``torch.log(torch.sigmoid(l))`` already returns ``-inf`` in float32.
* Shapes: logits of shape ``(N,)`` (or ``(N, 1)``, or ``(N, 1, H, W)`` for a
  patch discriminator). ``reduction="mean"`` (default) averages over all
  elements, i.e. over the batch for ``(N,)`` logits; ``"sum"`` and ``"none"``
  are available for inspection (e.g. per-sample gradient magnitudes). Real and
  fake logits must agree in shape apart from the batch size.

Kinds for :func:`discriminator_loss` / :func:`generator_loss`:

==============  =======================================  =================================
kind            discriminator / critic loss              generator loss
==============  =======================================  =================================
minimax         BCE: ``-log D(x) - log(1 - D(G(z)))``     ``log(1 - D(G(z)))`` (saturates)
nonsaturating   BCE (same as minimax)                     ``-log D(G(z))``
lsgan           ``(l_x - 1)^2 + l_G^2``                   ``(l_G - 1)^2``
wgan            ``f(G(z)) - f(x)``                        ``-f(G(z))``
hinge           ``relu(1 - l_x) + relu(1 + l_G)``         ``-l_G``
==============  =======================================  =================================
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from gan_utils.losses._checks import check_same_trailing_shape, check_tensor, reduce

GAN_LOSS_KINDS: tuple[str, ...] = ("minimax", "nonsaturating", "lsgan", "wgan", "hinge")

__all__ = [
    "GAN_LOSS_KINDS",
    "bce_discriminator_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "discriminator_loss",
    "generator_loss",
]


def _pair(real_logits: Tensor, fake_logits: Tensor) -> None:
    check_tensor("real_logits", real_logits, min_dim=1)
    check_tensor("fake_logits", fake_logits, min_dim=1)
    check_same_trailing_shape("real_logits", real_logits, "fake_logits", fake_logits)


def _terms(real: Tensor, fake: Tensor, reduction: str) -> Tensor:
    """Sum of the real and fake terms; ``"none"`` needs equal batch sizes."""
    if reduction == "none":
        if real.shape != fake.shape:
            raise ValueError(
                "reduction='none' returns real_term + fake_term per sample, so real and fake "
                f"logits need the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}"
            )
        return real + fake
    return reduce(real, reduction) + reduce(fake, reduction)


# --- cross-entropy family ---------------------------------------------------------------


def bce_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy for the discriminator (real -> 1, fake -> 0).

    ``mean(-log D(x)) + mean(-log(1 - D(G(z))))``, computed as
    ``softplus(-real_logits)`` and ``softplus(fake_logits)``. Shared by the
    ``"minimax"`` and ``"nonsaturating"`` kinds. Equals
    ``BCEWithLogits(real, 1) + BCEWithLogits(fake, 0)``; ``2 log 2 ~ 1.386`` at
    ``D = 0.5`` everywhere.
    """
    _pair(real_logits, fake_logits)
    return _terms(F.softplus(-real_logits), F.softplus(fake_logits), reduction)


def minimax_generator_loss(fake_logits: Tensor, reduction: str = "mean") -> Tensor:
    """Original (saturating) generator loss ``mean(log(1 - D(G(z))))``, to minimise.

    Equals ``-softplus(fake_logits)``: always ``<= 0``, tending to ``0`` when the
    discriminator confidently rejects the fakes (``l -> -inf``). Its gradient
    ``d/dl = -sigmoid(l) / N`` vanishes exactly there: at ``l = -100`` it is
    ~``-4e-44 / N``, so a generator that starts out losing gets no signal. This is
    the saturation that :func:`nonsaturating_generator_loss` fixes.
    """
    check_tensor("fake_logits", fake_logits, min_dim=1)
    return reduce(-F.softplus(fake_logits), reduction)


def nonsaturating_generator_loss(fake_logits: Tensor, reduction: str = "mean") -> Tensor:
    """Non-saturating generator loss ``mean(-log D(G(z))) = mean(softplus(-l))``.

    Same fixed point as the minimax loss, but the gradient ``d/dl = -sigmoid(-l) / N``
    tends to ``-1 / N`` (not ``0``) when the discriminator rejects the fakes.
    """
    check_tensor("fake_logits", fake_logits, min_dim=1)
    return reduce(F.softplus(-fake_logits), reduction)


# --- least squares ------------------------------------------------------------------------


def lsgan_discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    real_target: float = 1.0,
    fake_target: float = 0.0,
    reduction: str = "mean",
) -> Tensor:
    """Least-squares (LSGAN) discriminator loss on the raw outputs (no sigmoid).

    ``mean((D(x) - b)^2) + mean((D(G(z)) - a)^2)`` with ``b = real_target = 1``
    and ``a = fake_target = 0`` (the "0-1" coding). This is the course handout's
    form; Mao et al. write the same terms with a factor 1/2, which only rescales
    the gradients.
    """
    _pair(real_logits, fake_logits)
    return _terms((real_logits - real_target) ** 2, (fake_logits - fake_target) ** 2, reduction)


def lsgan_generator_loss(
    fake_logits: Tensor, target: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Least-squares generator loss ``mean((D(G(z)) - c)^2)`` with ``c = target = 1``.

    Computed on raw outputs. The gradient ``2 (l - c) / N`` grows, not vanishes,
    as the discriminator pushes fakes away from ``c``.
    """
    check_tensor("fake_logits", fake_logits, min_dim=1)
    return reduce((fake_logits - target) ** 2, reduction)


# --- Wasserstein and hinge ----------------------------------------------------------------


def wgan_critic_loss(real_scores: Tensor, fake_scores: Tensor, reduction: str = "mean") -> Tensor:
    """WGAN critic loss ``mean(f(G(z))) - mean(f(x))``, to minimise.

    Minimising it maximises ``E f(x) - E f(G(z))``, the dual estimate of the
    Wasserstein-1 distance (which needs a Lipschitz critic: clip the weights with
    :func:`gan_utils.losses.clip_weights_` or add
    :func:`gan_utils.losses.gradient_penalty`). Scores are unbounded reals.
    """
    _pair(real_scores, fake_scores)
    return _terms(-real_scores, fake_scores, reduction)


def wgan_generator_loss(fake_scores: Tensor, reduction: str = "mean") -> Tensor:
    """WGAN generator loss ``-mean(f(G(z)))``."""
    check_tensor("fake_scores", fake_scores, min_dim=1)
    return reduce(-fake_scores, reduction)


def hinge_discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, reduction: str = "mean"
) -> Tensor:
    """Hinge discriminator loss ``mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))``."""
    _pair(real_logits, fake_logits)
    return _terms(F.relu(1.0 - real_logits), F.relu(1.0 + fake_logits), reduction)


def hinge_generator_loss(fake_logits: Tensor, reduction: str = "mean") -> Tensor:
    """Hinge generator loss ``-mean(D(G(z)))`` (same as the WGAN generator loss)."""
    check_tensor("fake_logits", fake_logits, min_dim=1)
    return reduce(-fake_logits, reduction)


# --- dispatch -----------------------------------------------------------------------------

_D_LOSSES = {
    "minimax": bce_discriminator_loss,
    "nonsaturating": bce_discriminator_loss,
    "lsgan": lsgan_discriminator_loss,
    "wgan": wgan_critic_loss,
    "hinge": hinge_discriminator_loss,
}
_G_LOSSES = {
    "minimax": minimax_generator_loss,
    "nonsaturating": nonsaturating_generator_loss,
    "lsgan": lsgan_generator_loss,
    "wgan": wgan_generator_loss,
    "hinge": hinge_generator_loss,
}


def _check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in GAN_LOSS_KINDS:
        raise ValueError(
            f"unknown GAN loss kind {kind!r}; expected one of {', '.join(GAN_LOSS_KINDS)}"
        )
    return kind


def discriminator_loss(kind: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator (critic) loss of the given ``kind``, mean over the batch.

    ``kind`` is one of :data:`GAN_LOSS_KINDS`; ``"minimax"`` and
    ``"nonsaturating"`` share the BCE loss. Detach the fakes (``G(z).detach()``)
    before the discriminator step so that it does not reach the generator.
    """
    return _D_LOSSES[_check_kind(kind)](real_logits, fake_logits)


def generator_loss(kind: str, fake_logits: Tensor) -> Tensor:
    """Generator loss of the given ``kind`` from ``D(G(z))`` logits, mean over the batch."""
    return _G_LOSSES[_check_kind(kind)](fake_logits)

"""What the GAN trainer's steps and hooks hand each other: small named results.

One step of :class:`~gan_utils.train.GANTrainer` reads, in order:

* :class:`FakeBatch` - fakes and what made them (``fake_batch``);
* :class:`WeightedTerm` - an extra loss term of D or G, logged under its own name
  (``discriminator_extra_terms`` / ``generator_extra_terms``);
* :class:`Objective` - G's main loss and its named parts (``generator_objective``);
* :class:`DStepResult`, :class:`GStepResult` - what one D / G update did.

All tensors stay on the training device; logged values are 0-d.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

__all__ = ["DStepResult", "FakeBatch", "GStepResult", "Objective", "WeightedTerm"]


@dataclass(frozen=True, slots=True)
class FakeBatch:
    """A batch of fakes and the inputs the generator made them from.

    Attributes:
        images: ``G(inputs[, labels])``, ``(N, C, H, W)`` in G's output range; it
            carries G's graph when drawn with ``grad=True``.
        inputs: what G consumed: latents ``z`` ``(N, z_dim)`` for a GAN, the
            degraded images ``(N, C, H, W)`` for super-resolution.
        labels: int64 class labels ``(N,)`` the fakes were asked for
            (conditional G), else ``None``.
    """

    images: torch.Tensor
    inputs: torch.Tensor
    labels: torch.Tensor | None = None


class WeightedTerm(NamedTuple):
    """An extra loss term: ``weight * value`` joins the loss, ``value`` is logged.

    ``value`` is a 0-d tensor (with its graph); a term of weight 0 is logged but
    not added (it need not even be computed: a zero tensor will do).
    """

    value: torch.Tensor
    weight: float


@dataclass(frozen=True, slots=True)
class Objective:
    """The generator's main loss.

    Attributes:
        loss: 0-d tensor to minimise (before the extra terms are added).
        parts: named pieces of ``loss`` to log as they are (e.g. ``loss_recon``,
            ``loss_adv``); they are not added to it again.
    """

    loss: torch.Tensor
    parts: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DStepResult:
    """One discriminator update.

    Attributes:
        loss: D's total loss (adversarial + penalties + weighted extra terms), detached.
        real_logits, fake_logits: D's outputs on the real batch and on the fakes, detached.
        real: the real images of this step ``(N, C, H, W)``.
        labels: their int64 labels ``(N,)`` (checked) for conditional training, else ``None``.
        fake: the fakes D saw (with G's graph when the step was asked to keep it).
        terms: the extra terms' unweighted values by name, detached (for the log).
    """

    loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor
    real: torch.Tensor
    labels: torch.Tensor | None
    fake: FakeBatch
    terms: Mapping[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GStepResult:
    """One generator update.

    Attributes:
        loss: G's total loss ``loss_g`` (main loss + weighted extra terms), detached.
        grad_norm: total L2 norm of G's gradient (after unscaling), 0-d.
        terms: the objective's parts and the extra terms' unweighted values by name, detached.
    """

    loss: torch.Tensor
    grad_norm: torch.Tensor
    terms: Mapping[str, torch.Tensor] = field(default_factory=dict)

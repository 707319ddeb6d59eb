"""Conditional GAN training with a mode-seeking term, an AC-GAN head and a ramped EMA.

:class:`ConditionalGANTrainer` is a :class:`~gan_utils.train.GANTrainer` with a
:class:`~gan_utils.train.config.CGANTrainConfig`; it changes three hooks only:

* :meth:`~ConditionalGANTrainer.generator_extra_terms`: the **mode-seeking term**
  (:func:`gan_utils.losses.mode_seeking_term`, weight ``mode_seeking``), logged as
  ``mode_seeking``, and the **auxiliary classifier** term of G: cross-entropy
  of D's head on the fakes against the labels they were made for (weight
  ``aux_weight``), logged as ``aux_g``;
* :meth:`~ConditionalGANTrainer.discriminator_extra_terms`: the auxiliary
  classifier term of D: cross-entropy of D's head on the *real* images against
  their labels (weight ``aux_weight``), logged as ``aux_d``;
* :meth:`~ConditionalGANTrainer.make_ema`: a :class:`~gan_utils.train.ema.RampedEMA`
  when ``ema_rampup``.

``loss_d`` and ``loss_g`` include the weighted terms; a term of weight 0 is
logged (as 0 for the classifier terms) but not added.

>>> trainer = ConditionalGANTrainer(G, D, CGANTrainConfig(aux_weight=1.0), mnist)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gan_utils.losses import mode_seeking_term
from gan_utils.train.config import CGANTrainConfig, GANTrainConfig
from gan_utils.train.ema import EMA, RampedEMA
from gan_utils.train.gan_trainer import GANTrainer
from gan_utils.train.results import FakeBatch, WeightedTerm

__all__ = ["ConditionalGANTrainer"]


class ConditionalGANTrainer(GANTrainer):
    """:class:`GANTrainer` plus mode seeking, an auxiliary classifier and a ramped EMA (module doc).

    Takes a :class:`CGANTrainConfig` (default); a plain :class:`GANTrainConfig`
    means ``mode_seeking=0``, ``aux_weight=0`` and no ramp-up. With
    ``aux_weight > 0`` the discriminator needs ``classify(x) -> (N, K)`` logits
    (the kit's ``ConditionalDiscriminator(auxiliary_classifier=True)``).
    """

    log_keys = (*GANTrainer.log_keys, "mode_seeking", "aux_d", "aux_g")

    def __init__(self, generator: nn.Module, discriminator: nn.Module, config: GANTrainConfig | None = None,
                 data: Any = None, **kwargs: Any) -> None:
        config = CGANTrainConfig() if config is None else config
        super().__init__(generator, discriminator, config, data, **kwargs)
        self.mode_seeking = float(getattr(config, "mode_seeking", 0.0))
        self.aux_weight = float(getattr(config, "aux_weight", 0.0))
        if self.aux_weight and getattr(self.discriminator, "aux_head", None) is None:
            raise ValueError("aux_weight > 0 needs a discriminator built with auxiliary_classifier=True")

    def make_ema(self) -> EMA | None:
        decay = self.config.ema_decay
        if decay is not None and getattr(self.config, "ema_rampup", False):
            return RampedEMA(self.generator, decay)
        return super().make_ema()

    def classifier_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of D's auxiliary head on ``images`` against ``labels`` (0-d, float32)."""
        return nn.functional.cross_entropy(self.discriminator.classify(images).float(), labels)

    def discriminator_extra_terms(self, real: torch.Tensor, labels: torch.Tensor | None,
                                  fake: FakeBatch) -> dict[str, WeightedTerm]:
        aux = self.classifier_loss(real, labels) if self.aux_weight else real.new_zeros(())
        return {"aux_d": WeightedTerm(aux, self.aux_weight)}

    def generator_extra_terms(self, fake_logits: torch.Tensor, fake: FakeBatch,
                              real: torch.Tensor) -> dict[str, WeightedTerm]:
        mode_seeking = mode_seeking_term(fake.images.float(), fake.inputs.float(), fake.labels)
        aux = self.classifier_loss(fake.images, fake.labels) if self.aux_weight else fake_logits.new_zeros(())
        return {"mode_seeking": WeightedTerm(mode_seeking, self.mode_seeking),
                "aux_g": WeightedTerm(aux, self.aux_weight)}

"""Super-resolution GAN: reconstruction + adversarial loss (Penn seed, part 3).

The generator sees the degraded image ``sr_degrade(x)`` (64 -> 16 -> 64,
bilinear) and is trained on

    loss_G = recon_weight * recon(G(lr), x) + gan_weight * generator_loss(kind, D(G(lr)))

(1:1 by default, MSE reconstruction); the (patch) discriminator learns to tell
``x`` from ``G(lr)``. Everything else (alternating steps, AMP, DDP,
checkpoints, logging) is :class:`~gan_utils.train.GANTrainer`'s.

>>> from gan_utils.models.sr import SRUNetGenerator, PatchDiscriminator
>>> trainer = SRTrainer(SRUNetGenerator(), PatchDiscriminator(), SRTrainConfig(steps=500), dataset)  # doctest: +SKIP

The fixed-sample grid has three rows: degraded input, output, ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gan_utils.data.degradations import sr_degrade
from gan_utils.losses import sr_generator_loss
from gan_utils.train.config import SRTrainConfig
from gan_utils.train.distributed import DistContext
from gan_utils.train.gan_trainer import GANTrainer
from gan_utils.train.results import FakeBatch, Objective
from gan_utils.train.sampling import eval_mode, sample_from

__all__ = ["SRTrainer"]


class SRTrainer(GANTrainer):
    """:class:`GANTrainer` whose generator maps degraded images to sharp ones.

    Args: as :class:`GANTrainer`, with an :class:`SRTrainConfig`; ``data``
    yields high-resolution images (labels ignored).
    """

    log_keys = ("loss_d", "loss_g", "loss_recon", "loss_adv", "d_real", "d_fake", "g_grad_norm")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: SRTrainConfig | None = None,
        data: Any = None,
        *,
        callbacks: Sequence[Any] = (),
        opt_g: torch.optim.Optimizer | None = None,
        opt_d: torch.optim.Optimizer | None = None,
        meta: dict[str, Any] | None = None,
        dist: DistContext | None = None,
    ) -> None:
        config = SRTrainConfig() if config is None else config
        if not isinstance(config, SRTrainConfig):
            raise TypeError(f"config must be an SRTrainConfig, got {type(config).__name__}")
        super().__init__(generator, discriminator, config, data, callbacks=callbacks,
                         opt_g=opt_g, opt_d=opt_d, meta=meta, dist=dist)

    def setup_inputs(self) -> None:
        self.z_dim, self.num_classes, self.conditional = None, None, False
        self._grid_cols = None
        self.fixed_targets = None
        self.fixed_inputs = None
        if self.stream is not None:
            self.fixed_targets, _ = self.fixed_batch(self.config.n_fixed_samples)
            self.fixed_inputs = self.degrade(self.fixed_targets)
            self._grid_cols = self.fixed_targets.shape[0]

    @torch.no_grad()
    def degrade(self, images: torch.Tensor) -> torch.Tensor:
        """The generator's input: ``images`` down to ``low_size`` and back up (same shape)."""
        out = sr_degrade(images, low_size=self.config.low_size, mode=self.config.degrade_mode)
        return out.contiguous(memory_format=torch.channels_last) if self.config.channels_last else out

    def generator_input(self, real: torch.Tensor) -> torch.Tensor:
        """G's input for a real batch: the degraded images (same shape as ``real``)."""
        return self.degrade(real)

    def generator_objective(self, fake_logits: torch.Tensor, fake: FakeBatch, real: torch.Tensor) -> Objective:
        """Reconstruction of ``real`` + adversarial loss; both parts are logged."""
        cfg = self.config
        terms = sr_generator_loss(
            fake_logits, fake.images.float(), real.float(), recon_weight=cfg.recon_weight, adv_weight=cfg.gan_weight,
            adv_kind=cfg.loss, recon_kind=cfg.recon_loss,
        )
        return Objective(terms.total, {"loss_recon": terms.reconstruction, "loss_adv": terms.adversarial})

    @torch.no_grad()
    def make_samples(self) -> torch.Tensor | None:
        """Rows: degraded inputs, outputs (EMA generator if enabled), targets."""
        if self.fixed_inputs is None:
            return None
        G = sample_from(self.generator, self.ema)
        with eval_mode(G):
            out = G(self.fixed_inputs)
        return torch.cat([self.fixed_inputs, out, self.fixed_targets]).float()

"""Adversarial training for any generator / discriminator pair.

>>> from gan_utils.models.dcgan import DCGANGenerator, DCGANDiscriminator, dcgan_init
>>> from gan_utils.train import GANTrainer, GANTrainConfig
>>> G, D = dcgan_init(DCGANGenerator()), dcgan_init(DCGANDiscriminator())
>>> trainer = GANTrainer(G, D, GANTrainConfig(steps=2000, sample_every=400), dataset)  # doctest: +SKIP
>>> history = trainer.train()                                                           # doctest: +SKIP

One step = ``n_critic`` discriminator steps (each on a new real batch) and one
generator step:

* **D step**: fakes are drawn and *detached*; the loss
  ``discriminator_loss(kind, D(x), D(G(z)))`` (+ WGAN-GP / R1 penalties) is
  back-propagated and only D's optimiser steps; weights are clipped after
  the step when ``clip`` is set (WGAN).
* **G step**: D's parameters are frozen (``requires_grad=False``) while
  ``generator_loss(kind, D(G(z)))`` is back-propagated, so no gradient reaches
  D; only G's optimiser steps; then the EMA of G (if any) is updated. With
  ``reuse_fake`` the G step reuses the last D step's fakes (same ``z``).

Conditional models (``config.conditional``, or a generator with a
``num_classes`` attribute) get labels: real images with their labels, fakes
generated for the same labels; the fixed grid then holds one row per class.

Logged every step (moved to the host every ``log_every`` steps): ``loss_d``,
``loss_g``, ``d_real`` and ``d_fake`` (mean ``sigmoid(logit)`` for the BCE
losses, mean raw score otherwise) and ``g_grad_norm`` (total L2 norm of G's
gradient, after unscaling).

Hooks for subclasses, one question each (results in :mod:`gan_utils.train.results`):

* :meth:`GANTrainer.generator_input` - what G consumes for a real batch (latents; SR: degraded images);
* :meth:`GANTrainer.penalty` - the critic penalties (WGAN-GP, R1);
* :meth:`GANTrainer.discriminator_extra_terms` / :meth:`GANTrainer.generator_extra_terms` -
  extra named :class:`~gan_utils.train.results.WeightedTerm` s of D's / G's loss
  (auxiliary classifier, mode seeking); the trainer adds ``weight * value`` and logs
  ``value`` under the term's name (which must be in ``log_keys``);
* :meth:`GANTrainer.generator_objective` - G's main loss and its named parts
  (an :class:`~gan_utils.train.results.Objective`);
* :meth:`GANTrainer.make_ema` - the weight average of G to keep.

:meth:`GANTrainer.d_step` returns a :class:`~gan_utils.train.results.DStepResult`,
:meth:`GANTrainer.g_step` a :class:`~gan_utils.train.results.GStepResult`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gan_utils.losses import (
    clip_weights_,
    discriminator_loss,
    generator_loss,
    input_gradients,
    r1_penalty,
)
from gan_utils.train.config import GANTrainConfig
from gan_utils.train.distributed import DistContext
from gan_utils.train.ema import EMA
from gan_utils.train.loop import TrainerBase
from gan_utils.train.results import DStepResult, FakeBatch, GStepResult, Objective, WeightedTerm
from gan_utils.train.sampling import eval_mode, sample_from

__all__ = ["GANTrainer"]

_PROBABILITY_LOSSES = ("minimax", "nonsaturating")


class GANTrainer(TrainerBase):
    """Train ``generator`` against ``discriminator`` (see the module docstring).

    Args:
        generator: ``G(z)`` or ``G(z, labels)`` -> images; needs ``z_dim``
            (attribute or ``config.z_dim``).
        discriminator: ``D(x)`` or ``D(x, labels)`` -> logits ``(N,)`` (or patch logits).
        config: a :class:`GANTrainConfig` (defaults if ``None``).
        data: a dataset of ``images`` or ``(images, labels)`` items, or an iterable of batches.
        callbacks: objects with ``on_step`` / ``on_log`` / ``on_sample`` / ``on_end``.
        opt_g, opt_d: optimisers to use instead of Adam(``lr_*``, ``betas``).
        meta: stored in checkpoints (recipes put their name and model kwargs here).
        dist: distributed context (default: the running process group, if any).
    """

    log_keys = ("loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm")

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        config: GANTrainConfig | None = None,
        data: Any = None,
        *,
        callbacks: Sequence[Any] = (),
        opt_g: torch.optim.Optimizer | None = None,
        opt_d: torch.optim.Optimizer | None = None,
        meta: dict[str, Any] | None = None,
        dist: DistContext | None = None,
    ) -> None:
        config = GANTrainConfig() if config is None else config
        if not isinstance(config, GANTrainConfig):
            raise TypeError(f"config must be a GANTrainConfig, got {type(config).__name__}")
        super().__init__(config, data, callbacks=callbacks, meta=meta, dist=dist)
        self.generator = self.prepare_module(generator)
        self.discriminator = self.prepare_module(discriminator)
        self.opt_g = opt_g or torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=tuple(config.betas))
        self.opt_d = opt_d or torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=tuple(config.betas))
        self.scaler_g, self.scaler_d = self.make_scaler(), self.make_scaler()
        self.g_train = self.wrap(self.generator)
        self.d_train = self.wrap(self.discriminator)
        self.d_frozen = self.wrap(self.discriminator, ddp=False)
        # after wrapping: DDP has broadcast rank 0's weights, so every rank's EMA starts equal
        self.ema = self.make_ema()
        self._d_trainable = [p for p in self.discriminator.parameters() if p.requires_grad]
        self._g_trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self._labels_checked = False
        self._log_keys_checked = False
        self.setup_inputs()

    # -- set-up (SRTrainer overrides setup_inputs) -----------------------------------------------
    def setup_inputs(self) -> None:
        """Resolve latent size / conditioning and draw the fixed sample batch."""
        cfg = self.config
        self.z_dim = cfg.z_dim or getattr(self.generator, "z_dim", None)
        if not self.z_dim:
            raise ValueError("the latent size is unknown: set config.z_dim or give the generator a z_dim attribute")
        self.num_classes = cfg.num_classes or getattr(self.generator, "num_classes", None)
        self.conditional = cfg.conditional if cfg.conditional is not None else self.num_classes is not None
        if self.conditional and not self.num_classes:
            raise ValueError("conditional training needs num_classes (config.num_classes or generator.num_classes)")
        g = torch.Generator().manual_seed(cfg.seed + 1)
        if self.conditional:
            self._grid_cols = max(1, round(math.sqrt(cfg.n_fixed_samples)))
            labels = torch.arange(self.num_classes).repeat_interleave(self._grid_cols)
            self.fixed_labels = labels.to(self.device)
        else:
            self._grid_cols = None
            self.fixed_labels = None
        n = cfg.n_fixed_samples if self.fixed_labels is None else len(self.fixed_labels)
        self.fixed_noise = torch.randn(n, self.z_dim, generator=g).to(self.device)

    def make_ema(self) -> EMA | None:
        """The weight average of G kept during training (``None`` when ``ema_decay`` is off)."""
        decay = self.config.ema_decay
        return EMA(self.generator, decay) if decay is not None else None

    # -- hooks: one question each ------------------------------------------------------------------
    def generator_input(self, real: torch.Tensor) -> torch.Tensor:
        """What G consumes for a batch like ``real``: latents ``z`` ``(N, z_dim)`` from the trainer's noise.

        Latents are drawn for the global batch and sliced by rank, so distributed
        training sees the same noise as one process with the whole batch.
        """
        n = real.shape[0]
        return self.rank_slice(self.randn(n * self.dist.world_size, self.z_dim))

    def fake_batch(self, real: torch.Tensor, labels: torch.Tensor | None, grad: bool) -> FakeBatch:
        """Fakes for a batch like ``real`` (for its ``labels`` when conditional), with G's graph if ``grad``."""
        inputs = self.generator_input(real)
        with torch.set_grad_enabled(grad), self.autocast():
            images = self.g_train(inputs, labels) if self.conditional else self.g_train(inputs)
        return FakeBatch(images=images, inputs=inputs, labels=labels)

    def penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        """WGAN-GP and R1 terms (weighted), computed in float32 on the plain discriminator."""
        cfg = self.config
        if not (cfg.gp_weight or cfg.r1_gamma):
            return None
        D = self.discriminator
        critic = (lambda x: D(x, labels)) if self.conditional else D
        real, fake = real.detach().float(), fake.detach().float()
        total = real.new_zeros(())
        with torch.autocast(device_type=self.device.type, enabled=False):
            if cfg.gp_weight:
                n = real.shape[0]
                eps = self.rank_slice(self.rand(n * self.dist.world_size)).view(n, *([1] * (real.dim() - 1)))
                x_hat = eps * real + (1.0 - eps) * fake
                grad = input_gradients(critic, x_hat)
                norms = torch.linalg.vector_norm(grad.reshape(n, -1), dim=1)
                total = total + cfg.gp_weight * ((norms - 1.0) ** 2).mean()
            if cfg.r1_gamma:
                total = total + 0.5 * cfg.r1_gamma * r1_penalty(critic, real)
        return total

    def discriminator_extra_terms(self, real: torch.Tensor, labels: torch.Tensor | None,
                                  fake: FakeBatch) -> dict[str, WeightedTerm]:
        """Extra D loss terms by name (e.g. an auxiliary classifier); each is logged under its name.

        Called after :meth:`penalty`, outside autocast; D's parameters are trainable.
        The names must be in :attr:`log_keys`. Default: none.
        """
        return {}

    def generator_objective(self, fake_logits: torch.Tensor, fake: FakeBatch, real: torch.Tensor) -> Objective:
        """G's main loss from D's logits on the fakes (``real``: the real batch of this step)."""
        return Objective(generator_loss(self.config.loss, fake_logits))

    def generator_extra_terms(self, fake_logits: torch.Tensor, fake: FakeBatch,
                              real: torch.Tensor) -> dict[str, WeightedTerm]:
        """Extra G loss terms by name (e.g. mode seeking); each is logged under its name.

        Called under autocast with D frozen (gradients reach only G). The names
        must be in :attr:`log_keys`. Default: none.
        """
        return {}

    # -- steps -----------------------------------------------------------------------------------
    def _d_args(self, labels: torch.Tensor | None) -> tuple:
        return (labels,) if self.conditional else ()

    def _check_labels(self, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            raise ValueError("conditional training needs (images, labels) batches, got images only")
        if not self._labels_checked:  # one host sync, first batch only
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= self.num_classes:
                raise ValueError(f"labels must lie in [0, {self.num_classes}), got values in [{lo}, {hi}]")
            self._labels_checked = True
        return labels.long()

    @staticmethod
    def _add_terms(total: torch.Tensor | None, terms: dict[str, WeightedTerm],
                   logged: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """``total + sum(weight * value)`` over the weighted terms; their values go into ``logged``."""
        for name, term in terms.items():
            logged[name] = term.value.detach()
            if term.weight:
                weighted = term.weight * term.value
                total = weighted if total is None else total + weighted
        return total

    def d_step(self, keep_graph: bool = False) -> DStepResult:
        """One discriminator update on a new real batch (``keep_graph``: keep G's graph in the fakes)."""
        cfg = self.config
        real, labels = self.next_batch()
        labels = self._check_labels(labels) if self.conditional else None
        fake = self.fake_batch(real, labels, grad=keep_graph)
        with self.autocast():
            real_logits = self.d_train(real, *self._d_args(labels))
            fake_logits = self.d_train(fake.images.detach(), *self._d_args(labels))
            loss = discriminator_loss(cfg.loss, real_logits, fake_logits)
        logged: dict[str, torch.Tensor] = {}
        # penalties and extra terms are summed first, then added: the order of float sums of earlier runs,
        # so seeded runs reproduce them bit for bit
        extra = self._add_terms(self.penalty(real, fake.images, labels),
                                self.discriminator_extra_terms(real, labels, fake), logged)
        if extra is not None:
            loss = loss + extra
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        if cfg.clip is not None:
            clip_weights_(self.discriminator, cfg.clip)
        return DStepResult(loss=loss.detach(), real_logits=real_logits.detach(), fake_logits=fake_logits.detach(),
                           real=real, labels=labels, fake=fake, terms=logged)

    def g_step(self, real: torch.Tensor, labels: torch.Tensor | None, fake: FakeBatch | None = None) -> GStepResult:
        """One generator update with D frozen, on ``fake`` (drawn anew for ``real``/``labels`` when ``None``)."""
        if fake is None:
            fake = self.fake_batch(real, labels, grad=True)
        for p in self._d_trainable:
            p.requires_grad_(False)
        try:
            with self.autocast():
                fake_logits = self.d_frozen(fake.images, *self._d_args(labels))
                objective = self.generator_objective(fake_logits, fake, real)
                logged = {k: v.detach() for k, v in objective.parts.items()}
                loss = self._add_terms(objective.loss, self.generator_extra_terms(fake_logits, fake, real), logged)
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(loss).backward()
        finally:
            for p in self._d_trainable:
                p.requires_grad_(True)
        self.scaler_g.unscale_(self.opt_g)
        grads = [p.grad for p in self._g_trainable if p.grad is not None]
        gnorm = torch.nn.utils.get_total_norm(grads) if grads else fake.images.new_zeros(())
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.ema is not None:
            self.ema.update(self.generator)
        return GStepResult(loss=loss.detach(), grad_norm=gnorm, terms=logged)

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return torch.sigmoid(logits).mean() if self.config.loss in _PROBABILITY_LOSSES else logits.mean()

    def train_step(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        for i in range(cfg.n_critic):
            d = self.d_step(keep_graph=cfg.reuse_fake and i == cfg.n_critic - 1)
        g = self.g_step(d.real, d.labels, d.fake if cfg.reuse_fake else None)
        logs = {"loss_d": d.loss, "loss_g": g.loss, "d_real": self._score(d.real_logits),
                "d_fake": self._score(d.fake_logits), "g_grad_norm": g.grad_norm, **d.terms, **g.terms}
        if not self._log_keys_checked:  # a term missing from log_keys would vanish from the history
            unlogged = sorted(set(logs) - set(self.log_keys))
            if unlogged:
                raise KeyError(f"{type(self).__name__} returns terms {unlogged} that are not in its log_keys "
                               f"{self.log_keys}; add them there")
            self._log_keys_checked = True
        return logs

    # -- samples and state -------------------------------------------------------------------------
    @torch.no_grad()
    def make_samples(self) -> torch.Tensor:
        """Images from the fixed latents (EMA generator when enabled), eval mode, float32."""
        G = sample_from(self.generator, self.ema)
        with eval_mode(G):
            return G(self.fixed_noise, self.fixed_labels) if self.conditional else G(self.fixed_noise)

    def grid_nrow(self) -> int | None:
        return self._grid_cols

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def scalers(self) -> dict[str, Any]:
        return {"generator": self.scaler_g, "discriminator": self.scaler_d}

"""VAE and autoencoder training.

VAE (``model_kind="vae"``): the model has ``encode(x) -> (mu, logvar)``,
``reparameterize(mu, logvar)`` and ``decode_logits(z)`` (the kit's ``FCVAE`` /
``ConvVAE``). The loss is ``recon + beta * KL`` (the negative ELBO at
``beta = 1``; :func:`gan_utils.losses.elbo`), or with ``train_samples = k > 1``
the negative IWAE bound ``-L_k`` (:func:`gan_utils.losses.iwae_from_samples`).
At log time the IWAE bound with ``eval_iwae_k`` samples on a fixed batch is
recorded in :attr:`VAETrainer.evaluations`.

Autoencoder (``model_kind="ae"``): ``encode(x) -> z``, ``decode(z) -> image``;
the loss is a pixel reconstruction loss plus, when ``moment_weight > 0``, the
latent moment loss (mean 0, variance 1, kurtosis 3 per axis;
:func:`gan_utils.losses.latent_moment_loss`) that makes ``z ~ N(0, I)``
sampling meaningful.

>>> from gan_utils.models.vae import FCVAE
>>> trainer = VAETrainer(FCVAE(), VAETrainConfig(steps=2000), mnist_unit_range)  # doctest: +SKIP

Losses go through one module (:class:`VAEObjective`) so that under DDP the
whole forward runs inside ``DistributedDataParallel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_utils.losses import elbo, iwae_from_samples, latent_moment_loss, reconstruction_loss
from gan_utils.train.config import VAETrainConfig
from gan_utils.train.distributed import DistContext
from gan_utils.train.loop import TrainerBase
from gan_utils.train.sampling import eval_mode

__all__ = ["VAEObjective", "VAETrainer"]

_VAE_KEYS = ("loss", "recon", "kl", "elbo")
_IWAE_KEYS = ("loss", "iwae_bound")
_AE_KEYS = ("loss", "recon", "moment")


class VAEObjective(nn.Module):
    """``forward(x) -> dict`` of 0-d loss terms; ``"loss"`` is the one to minimise."""

    def __init__(self, model: nn.Module, config: VAETrainConfig) -> None:
        super().__init__()
        self.model, self.config = model, config

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (Bernoulli) or means (Gaussian) for latents ``z``."""
        if self.config.likelihood == "bernoulli":
            return self.model.decode_logits(z)
        return self.model.decode(z)

    def decoder_sigma(self) -> torch.Tensor | float:
        """Gaussian decoder std: the model's learned ``decoder_sigma()`` if it has one, else 1."""
        get = getattr(self.model, "decoder_sigma", None)
        return get().float() if callable(get) else 1.0

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, model = self.config, self.model
        if cfg.model_kind == "ae":
            z = model.encode(x)
            recon = model.decode(z)
            if cfg.recon_loss == "bce":
                rec = F.binary_cross_entropy(recon.float().clamp(0, 1), x.float())
            else:
                rec = reconstruction_loss(recon.float(), x.float(), kind=cfg.recon_loss)
            moment = latent_moment_loss(z.float()).total if cfg.moment_weight else rec.new_zeros(())
            return {"loss": rec + cfg.moment_weight * moment, "recon": rec, "moment": moment}
        mu, logvar = model.encode(x)
        mu, logvar = mu.float(), logvar.float()
        if cfg.train_samples > 1:
            bound = iwae_from_samples(lambda z: self.decoder_output(z).float(), x.float(), mu, logvar,
                                      k=cfg.train_samples, likelihood=cfg.likelihood, sigma=self.decoder_sigma()).mean()
            return {"loss": -bound, "iwae_bound": bound}
        z = model.reparameterize(mu, logvar)
        out = self.decoder_output(z).float().reshape(x.shape)
        terms = elbo(out, x.float(), mu, logvar, likelihood=cfg.likelihood, beta=cfg.beta, sigma=self.decoder_sigma())
        return {"loss": terms.loss, "recon": terms.recon, "kl": terms.kl, "elbo": terms.elbo}


class VAETrainer(TrainerBase):
    """Train a VAE or an autoencoder (see the module docstring).

    Args:
        model: the VAE / autoencoder.
        config: a :class:`VAETrainConfig` (defaults if ``None``).
        data: dataset of images (``value_range="unit"`` for the Bernoulli likelihood).
        optimizer: optional optimiser instead of Adam(``lr``, ``betas``).
    """

    def __init__(
        self,
        model: nn.Module,
        config: VAETrainConfig | None = None,
        data: Any = None,
        *,
        callbacks: Sequence[Any] = (),
        optimizer: torch.optim.Optimizer | None = None,
        meta: dict[str, Any] | None = None,
        dist: DistContext | None = None,
    ) -> None:
        config = VAETrainConfig() if config is None else config
        if not isinstance(config, VAETrainConfig):
            raise TypeError(f"config must be a VAETrainConfig, got {type(config).__name__}")
        if config.model_kind == "ae":
            self.log_keys = _AE_KEYS
        else:
            self.log_keys = _IWAE_KEYS if config.train_samples > 1 else _VAE_KEYS
        super().__init__(config, data, callbacks=callbacks, meta=meta, dist=dist)
        self.model = self.prepare_module(model)
        self.objective = VAEObjective(self.model, config)
        self.objective_train = self.wrap(self.objective)
        self.optimizer = optimizer or torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=tuple(config.betas))
        self.scaler = self.make_scaler()
        self.latent_dim = getattr(model, "latent_dim", None)
        activation = getattr(model, "out_activation", None) or getattr(getattr(model, "decoder", None), "out_activation", None)
        self.sample_value_range = "tanh" if activation == "tanh" else "unit"
        g = torch.Generator().manual_seed(config.seed + 1)
        self.fixed_noise = None if self.latent_dim is None else torch.randn(
            config.n_fixed_samples, self.latent_dim, generator=g).to(self.device)
        self.eval_batch = None
        if self.stream is not None and config.model_kind == "vae" and config.eval_iwae_k:
            self.eval_batch = self.fixed_batch(min(config.batch_size, 128))[0]

    def train_step(self) -> dict[str, torch.Tensor]:
        x, _ = self.next_batch()
        with self.autocast():
            terms = self.objective_train(x)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["loss"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def evaluate_iwae(self, x: torch.Tensor, k: int) -> float:
        """Mean IWAE bound ``L_k`` (nats per image) on ``x`` (eval mode, float32)."""
        with eval_mode(self.model):
            mu, logvar = self.model.encode(x)
            bound = iwae_from_samples(lambda z: self.objective.decoder_output(z).float(), x.float(),
                                      mu.float(), logvar.float(), k=k, likelihood=self.config.likelihood,
                                      sigma=self.objective.decoder_sigma())
        return float(bound.mean())

    def log_extras(self) -> dict[str, float]:
        if self.eval_batch is None:
            return {}
        return {f"iwae_{self.config.eval_iwae_k}": self.evaluate_iwae(self.eval_batch, self.config.eval_iwae_k)}

    @torch.no_grad()
    def make_samples(self) -> torch.Tensor | None:
        """Decoded prior samples ``z ~ N(0, I)`` (fixed ``z``), eval mode."""
        if self.fixed_noise is None:
            return None
        with eval_mode(self.model):
            images = self.model.decode(self.fixed_noise)
        shape = getattr(self.model, "image_shape", None)
        if images.dim() != 4 and shape is not None:
            images = images.reshape(images.shape[0], *shape)
        return images if images.dim() == 4 else None

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.optimizer}

    def scalers(self) -> dict[str, Any]:
        return {"model": self.scaler}

"""VAETrainer and SRTrainer on tiny data with the kit's models (~15 s)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from gan_utils.losses import gaussian_kl
from gan_utils.models.autoencoder import ConvAutoencoder
from gan_utils.models.sr import PatchDiscriminator, SRUNetGenerator
from gan_utils.models.vae import FCVAE
from gan_utils.train import SRTrainConfig, SRTrainer, VAETrainConfig, VAETrainer


def unit_images(n: int = 32, side: int = 28, seed: int = 0) -> TensorDataset:
    """Two binary patterns repeated: a batch a small model can overfit."""
    g = torch.Generator().manual_seed(seed)
    patterns = (torch.rand(2, 1, side, side, generator=g) > 0.7).float()
    return TensorDataset(patterns.repeat(n // 2, 1, 1, 1))


def vae_trainer(**cfg) -> VAETrainer:
    torch.manual_seed(0)
    config = VAETrainConfig(**{"batch_size": 16, "steps": 60, "progress": False, "device": "cpu",
                               "log_every": 20, "eval_iwae_k": 5, **cfg})
    return VAETrainer(FCVAE(hidden=64, latent_dim=4), config, unit_images())


def test_vae_loss_falls_when_overfitting_and_terms_are_consistent() -> None:
    trainer = vae_trainer()
    history = trainer.train()
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    for loss, recon, kl, elbo in zip(history["loss"], history["recon"], history["kl"], history["elbo"], strict=True):
        assert loss == pytest.approx(recon + kl, rel=1e-5) and elbo == pytest.approx(-loss, rel=1e-5)
        assert kl >= 0
    # IWAE(k=5) evaluations at log time, a tighter (or equal) bound than the ELBO on average
    assert [e["step"] for e in trainer.evaluations] == [20, 40, 60]
    assert all(math.isfinite(e["iwae_5"]) for e in trainer.evaluations)
    assert trainer.samples[-1][1].shape == (36, 1, 28, 28)


def test_vae_step_matches_an_independent_elbo() -> None:
    trainer = vae_trainer(beta=0.5)
    x, _ = trainer.fixed_batch(8)
    torch.manual_seed(5)
    terms = trainer.objective(x)
    torch.manual_seed(5)
    model = trainer.model
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(model.decode_logits(z).reshape(x.shape), x, reduction="sum") / 8
    kl = gaussian_kl(mu, logvar)
    torch.testing.assert_close(terms["loss"], recon + 0.5 * kl)


def test_iwae_training_and_autoencoder_with_moment_loss() -> None:
    h = vae_trainer(train_samples=3, steps=5, log_every=5).train()
    assert set(h) == {"step", "loss", "iwae_bound"} and h["loss"][0] == pytest.approx(-h["iwae_bound"][0])
    torch.manual_seed(0)
    cfg = VAETrainConfig(model_kind="ae", moment_weight=0.1, batch_size=16, steps=30, progress=False,
                         device="cpu", log_every=10)
    ae = VAETrainer(ConvAutoencoder(image_size=28, latent_dim=4), cfg, unit_images())
    h = ae.train()
    assert h["moment"][0] > 0 and h["loss"][-1] < h["loss"][0]
    assert h["loss"][0] == pytest.approx(h["recon"][0] + 0.1 * h["moment"][0], rel=1e-5)
    assert ae.samples[-1][1].shape == (36, 1, 28, 28)


def sr_data(n: int = 16) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
    return TensorDataset(F.interpolate(base, size=32, mode="nearest"))  # sharp edges to recover


def test_sr_trainer_uses_degraded_inputs_and_weights_the_terms() -> None:
    torch.manual_seed(0)
    data = sr_data()
    cfg = SRTrainConfig(batch_size=4, steps=12, low_size=8, recon_weight=2.0, gan_weight=0.5, progress=False,
                        device="cpu", log_every=4, n_fixed_samples=3)
    trainer = SRTrainer(SRUNetGenerator(base=4, n_levels=3), PatchDiscriminator(base=4, n_layers=3), cfg, data)
    seen = []
    trainer.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    h = trainer.train()
    for total, rec, adv in zip(h["loss_g"], h["loss_recon"], h["loss_adv"], strict=True):
        assert total == pytest.approx(2.0 * rec + 0.5 * adv, rel=1e-5)
    assert h["loss_recon"][-1] < h["loss_recon"][0]
    # the generator's input is the first real batch taken down to 8x8 and back up
    from gan_utils.data.degradations import sr_degrade
    from gan_utils.train.batches import BatchStream

    (first_real,) = next(BatchStream(data, 4, seed=cfg.seed))
    torch.testing.assert_close(seen[0], sr_degrade(first_real, low_size=8))
    step, grid = trainer.samples[-1]
    assert grid.shape == (9, 3, 32, 32) and trainer.grid_nrow() == 3  # inputs / outputs / targets rows
    torch.testing.assert_close(grid[6:], trainer.fixed_targets)

"""The learned-variance Gaussian decoder (``GaussianFCVAE``) and bits per dim with it: its density is
the one torch.distributions gives and integrates to 1, the trainer learns its scale, and the
evaluation / recipe / command use it."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from gan_utils.data import OfflineFallbackWarning
from gan_utils.losses import gaussian_nll
from gan_utils.metrics import evaluate_vae_likelihood
from gan_utils.models.vae import FCVAE, GaussianFCVAE
from gan_utils.recipes.vae import RECIPE
from gan_utils.train.config import VAETrainConfig
from gan_utils.train.vae_trainer import VAEObjective


def _model(seed: int = 0, **kw) -> GaussianFCVAE:
    torch.manual_seed(seed)
    model = GaussianFCVAE(in_features=12, hidden=8, latent_dim=3, image_shape=(1, 3, 4), **kw)
    with torch.no_grad():
        model.log_scale.copy_(torch.randn(model.log_scale.shape) * 0.5 - 1.0)
    return model


def test_decoder_density_matches_torch_distributions() -> None:
    model = _model()
    z, x = torch.randn(5, 3), torch.rand(5, 1, 3, 4)
    mean, sigma = model.decode(z), model.decoder_sigma()
    assert sigma.shape == (1, 3, 4) and bool((sigma > 0).all())
    expected = torch.distributions.Normal(mean, sigma.expand_as(mean)).log_prob(x).flatten(1).sum(1)
    got = -gaussian_nll(mean, x, sigma=sigma, reduction="none")
    torch.testing.assert_close(got, expected)
    # the objective hands the learned sigma to the ELBO: its recon term is this NLL, not the unit-variance one
    objective = VAEObjective(model, VAETrainConfig(likelihood="gaussian"))
    assert torch.equal(objective.decoder_sigma(), sigma)
    assert VAEObjective(FCVAE(12, 8, 3, (1, 3, 4)), VAETrainConfig(likelihood="gaussian")).decoder_sigma() == 1.0


def test_one_pixel_density_integrates_to_one() -> None:
    model = GaussianFCVAE(in_features=1, hidden=4, latent_dim=2, image_shape=(1,), init_scale=0.05)
    mean = model.decode(torch.zeros(1, 2)).detach()  # (1, 1)
    grid = torch.linspace(-1.0, 2.0, 30001, dtype=torch.float64).unsqueeze(1)
    dens = torch.exp(-gaussian_nll(mean.double().expand_as(grid), grid, sigma=model.decoder_sigma().detach().double(),
                                   reduction="none"))
    assert math.isclose(float(torch.trapezoid(dens, grid[:, 0])), 1.0, rel_tol=1e-6)


def test_scale_floor_and_bad_arguments() -> None:
    model = GaussianFCVAE(in_features=4, hidden=4, latent_dim=2, image_shape=(1, 2, 2), min_scale=1e-2)
    with torch.no_grad():
        model.log_scale.fill_(-50.0)
    torch.testing.assert_close(model.decoder_sigma(), torch.full((1, 2, 2), 1e-2))
    with pytest.raises(ValueError, match="min_scale"):
        GaussianFCVAE(init_scale=-1.0)


class _ConstantGaussian(GaussianFCVAE):
    """Decoder mean 0.5 whatever z, and encoder = prior: every importance weight equals p(y), so the
    IS estimate is exact for any K."""

    def encode(self, x, return_features=False):
        n = x.shape[0]
        return torch.zeros(n, self.latent_dim), torch.zeros(n, self.latent_dim)

    def decode_logits(self, z):
        return torch.zeros(*z.shape[:-1], *self.image_shape)


def test_bits_per_dim_of_a_closed_form_density() -> None:
    model = _ConstantGaussian(in_features=6, hidden=4, latent_dim=2, image_shape=(1, 2, 3), init_scale=0.2)
    images = torch.randint(0, 256, (7, 1, 2, 3)).float() / 255
    result = evaluate_vae_likelihood(model, [images], k=3, likelihood="gaussian", seed=4)
    # the same dequantized data by hand: (round(255 x) + u) / 256 with the evaluation's seeded noise
    u = torch.rand(images.shape, generator=torch.Generator().manual_seed(4))
    y = (torch.round(images * 255) + u) / 256
    nll = float(-torch.distributions.Normal(0.5, 0.2).log_prob(y).flatten(1).sum(1).mean())
    assert math.isclose(result.nll_nats, nll, rel_tol=1e-5)
    assert math.isclose(result.bpd, (nll + 6 * math.log(256)) / (6 * math.log(2)), rel_tol=1e-6)


def test_training_learns_the_scale_and_the_recipe_builds_it() -> None:
    from gan_utils.train.vae_trainer import VAETrainer

    data = torch.utils.data.TensorDataset(torch.rand(64, 1, 3, 4), torch.zeros(64))
    model = _model(1)
    before = model.log_scale.detach().clone()
    trainer = VAETrainer(model, VAETrainConfig(likelihood="gaussian", steps=5, batch_size=16, lr=1e-2, device="cpu",
                                               progress=False, eval_iwae_k=2), data)
    trainer.train()
    assert not torch.equal(before, model.log_scale.detach()), "the decoder's log-scale got no gradient"
    kw = RECIPE.model_kwargs(data, learned_scale=True, hidden=8, latent_dim=3)
    assert isinstance(RECIPE.build_models(**kw)["model"], GaussianFCVAE)
    assert type(RECIPE.build_models(**{**kw, "learned_scale": "false"})["model"]) is FCVAE
    with pytest.raises(ValueError, match="learned_scale"):
        RECIPE.build_models(**{**kw, "learned_scale": "maybe"})


def test_command_trains_and_evaluates_the_learned_variance_decoder(tmp_path, capsys) -> None:
    import json

    from gan_utils.__main__ import main
    from gan_utils.recipes import load_checkpoint_models

    out = tmp_path / "vae_learned"
    with warnings.catch_warnings():  # without the real MNIST files the recipe says it uses the offline digits
        warnings.simplefilter("ignore", OfflineFallbackWarning)
        assert main(["train", "vae", "--steps", "3", "--out", str(out), "--model", "hidden=32", "--model",
                     "learned_scale=true", "--set", "likelihood=gaussian", "--device", "cpu", "--no-progress",
                     "--batch-size", "16"]) == 0
    _, models, _ = load_checkpoint_models(out / "checkpoint.pt", device="cpu")
    assert isinstance(models["model"], GaussianFCVAE)
    capsys.readouterr()
    assert main(["eval", str(out / "checkpoint.pt"), "--k", "4", "--n", "10", "--no-progress"]) == 0
    line = json.loads([s for s in capsys.readouterr().out.splitlines() if s.startswith("{")][-1])
    assert line["likelihood"] == "gaussian" and line["bpd"] is not None
    from gan_utils.metrics import evaluate_vae_checkpoint

    assert line["bpd"] == pytest.approx(evaluate_vae_checkpoint(out / "checkpoint.pt", k=4, n=10)["bpd"], rel=1e-9)

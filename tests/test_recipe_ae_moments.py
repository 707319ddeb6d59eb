"""The ``ae_moments`` recipe: conv autoencoder + latent moment losses, trained and sampled from the
command line on the offline MNIST (~15 s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_utils.__main__ import main
from gan_utils.metrics.cli import model_checkpoint_kind
from gan_utils.models.autoencoder import ConvAutoencoder
from gan_utils.recipes import RECIPE_NAMES, get_recipe, load_checkpoint_models

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def hand_moment_loss(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """avg_j m_j^2 + avg_j (v_j - 1)^2 + avg_j (k_j - 3)^2 with biased batch moments, written out.

    ``eps`` is the documented guard of the kurtosis denominator, ``v^2 + eps``: it matters here, as
    freshly initialised codes have variances near 1e-4.
    """
    m = z.mean(0)
    v = ((z - m) ** 2).mean(0)
    k = ((z - m) ** 4).mean(0) / (v**2 + eps)
    return (m**2).mean() + ((v - 1) ** 2).mean() + ((k - 3) ** 2).mean()


def test_recipe_is_registered_with_the_autoencoder_and_its_defaults() -> None:
    assert "ae_moments" in RECIPE_NAMES
    recipe = get_recipe("ae_moments")
    cfg = recipe.make_config()
    assert (recipe.trainer_kind, recipe.value_range, recipe.default_dataset) == ("vae", "unit", "mnist")
    assert (cfg.model_kind, cfg.recon_loss, cfg.moment_weight, cfg.batch_size) == ("ae", "mse", 1.0, 128)
    data = torch.utils.data.TensorDataset(torch.rand(4, 1, 28, 28))
    model = recipe.build_models(**recipe.model_kwargs(data))["model"]
    assert isinstance(model, ConvAutoencoder) and model.latent_dim == 10  # the seed's 10-d MNIST code
    with pytest.raises(ValueError, match="unknown model option"):
        recipe.model_kwargs(data, width=3)


def test_training_on_offline_mnist_lowers_the_moment_loss() -> None:
    torch.manual_seed(0)
    trainer = get_recipe("ae_moments").build("mnist", steps=60, batch_size=32, lr=1e-2, progress=False,
                                             device="cpu", log_every=20)
    x, _ = trainer.fixed_batch(32)
    terms = trainer.objective(x)  # the trainer's loss is recon + 1 * moment, moment as written by hand
    with torch.no_grad():
        z = trainer.model.encode(x)
        recon = trainer.model.decode(z)
    torch.testing.assert_close(terms["moment"], hand_moment_loss(z), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(terms["recon"], ((recon - x) ** 2).mean(), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["moment"])
    h = trainer.train()
    first, last = np.mean(h["moment"][:10]), np.mean(h["moment"][-10:])
    assert last < 0.5 * first, (first, last)
    assert np.mean(h["recon"][-10:]) < 0.5 * np.mean(h["recon"][:10])
    assert trainer.samples[-1][1].shape == (36, 1, 28, 28)  # the grid decodes z ~ N(0, I)


def test_train_and_sample_from_the_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ae"
    assert main(["train", "ae_moments", "--steps", "3", "--batch-size", "16", "--out", str(out), "--device", "cpu",
                 "--no-progress"]) == 0
    assert "ae_moments: 3 steps" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"] == "ae_moments" and json.loads((out / "config.json").read_text())["model_kind"] == "ae"
    history = json.loads((out / "history.json").read_text())
    assert set(history) == {"step", "loss", "recon", "moment"}
    ckpt = out / "checkpoint.pt"
    assert main(["sample", str(ckpt), "--n", "5", "--seed", "3", "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as f:
        images = f["images"]
    # sample = the decoder on z ~ N(0, I) drawn from a generator seeded with --seed
    _, models, _ = load_checkpoint_models(ckpt)
    z = torch.randn(5, 10, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = models["model"].decode(z).clamp(0, 1).numpy()
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-6)
    assert main(["sample", str(ckpt), "--n", "2", "--labels", "1", "--out", str(tmp_path / "l.npz")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert model_checkpoint_kind(str(ckpt)) is None  # an autoencoder has no likelihood for `eval`

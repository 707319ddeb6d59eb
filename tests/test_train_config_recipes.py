"""Config JSON round trips, validation, and the recipe registry with the kit's real models (~15 s)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from gan_utils.recipes import RECIPE_NAMES, get_recipe, list_recipes
from gan_utils.recipes.base import Recipe
from gan_utils.train import GANTrainConfig, SRTrainConfig, VAETrainConfig, load_config


@pytest.mark.parametrize("config", [
    GANTrainConfig(loss="wgan", gp_weight=10.0, n_critic=5, betas=(0.0, 0.9), ema_decay=0.999,
                   max_seconds=12.5, amp="bf16", channels_last=True, out_dir="out/x", clip=None),
    SRTrainConfig(recon_loss="l1", recon_weight=2.0, low_size=8),
    VAETrainConfig(model_kind="ae", moment_weight=0.5, recon_loss="bce", betas=(0.5, 0.99)),
])
def test_config_json_round_trip(config, tmp_path: Path) -> None:
    text = config.to_json(tmp_path / "c.json")
    assert type(config).from_json(text) == config
    assert type(config).from_json(tmp_path / "c.json") == config
    assert load_config(str(tmp_path / "c.json")) == config
    assert load_config(json.loads(text)) == config
    assert isinstance(type(config).from_json(text).betas, tuple)


def test_config_json_errors() -> None:
    with pytest.raises(ValueError, match="unknown GANTrainConfig fields \\['lr'\\]"):
        GANTrainConfig.from_dict({"lr": 1e-3})
    with pytest.raises(ValueError, match="holds a 'vae' config"):
        GANTrainConfig.from_json(VAETrainConfig().to_json())
    with pytest.raises(ValueError, match="config_kind"):
        load_config({"steps": 3})
    with pytest.raises(FileNotFoundError):
        GANTrainConfig.from_json("no/such/file.json")


@pytest.mark.parametrize("bad, match", [
    (dict(amp="fp8"), "amp must be one of"),
    (dict(loss="wasserstein"), "loss must be one of"),
    (dict(n_critic=0), "n_critic must be a positive int"),
    (dict(batch_size=2.5), "batch_size must be a positive int"),
    (dict(betas=(0.5,)), "betas must be two numbers"),
    (dict(ema_decay=1.0), "ema_decay must be in"),
    (dict(clip=-0.01), "clip must be positive"),
    (dict(gp_weight=-1.0), "gp_weight must be >= 0"),
    (dict(max_seconds=0), "max_seconds must be positive"),
])
def test_config_validation_names_the_field(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GANTrainConfig(**bad)


def test_registry_lists_names_and_rejects_unknown() -> None:
    assert list_recipes() == ["ae_moments", "cgan_mnist", "dcgan", "sr", "vae", "wgan_gp"]
    with pytest.raises(ValueError, match="unknown recipe 'stylegan'.*ae_moments, cgan_mnist, dcgan, sr, vae, wgan_gp"):
        get_recipe("stylegan")
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe(None)  # type: ignore[arg-type]


def test_recipes_follow_the_handouts() -> None:
    dcgan = get_recipe("dcgan").make_config()
    assert (dcgan.batch_size, dcgan.z_dim, dcgan.lr_g, dcgan.lr_d, dcgan.betas, dcgan.loss) == (
        128, 100, 2e-4, 2e-4, (0.5, 0.999), "nonsaturating")
    assert get_recipe("dcgan").default_dataset == "stl10" and get_recipe("dcgan").image_size == 64
    wgan = get_recipe("wgan_gp").make_config()
    assert (wgan.loss, wgan.gp_weight, wgan.n_critic, wgan.lr_g, wgan.lr_d, wgan.betas) == (
        "wgan", 10.0, 5, 1e-4, 1e-4, (0.0, 0.9))
    sr = get_recipe("sr").make_config()
    assert (sr.batch_size, sr.lr_g, sr.lr_d, sr.recon_weight, sr.gan_weight, sr.low_size) == (32, 2e-4, 2e-4, 1.0, 1.0, 16)
    vae = get_recipe("vae").make_config()
    assert (vae.model_kind, vae.beta, vae.likelihood) == ("vae", 1.0, "bernoulli")
    with pytest.raises(ValueError, match="no config field"):
        get_recipe("dcgan").make_config(learning_rate=1.0)


def test_dcgan_recipe_builds_table_2_and_a_batchnorm_free_wgan_critic() -> None:
    data = TensorDataset(torch.rand(4, 3, 64, 64) * 2 - 1)
    models = get_recipe("dcgan").build_models(**get_recipe("dcgan").model_kwargs(data))
    G, D = models["generator"], models["discriminator"]
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [1024, 512, 256, 128, 3]
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    critic = get_recipe("wgan_gp").build_models(**get_recipe("wgan_gp").model_kwargs(data))["discriminator"]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    with pytest.raises(ValueError, match="unknown model option"):
        get_recipe("dcgan").model_kwargs(data, depth=3)


@pytest.mark.parametrize("name, shape, model", [
    ("dcgan", (3, 32, 32), {"width": 8}),
    ("wgan_gp", (1, 28, 28), {"width": 8}),
    ("vae", (1, 28, 28), {"hidden": 32}),
    ("sr", (3, 64, 64), {"base": 4}),
])
def test_each_recipe_trains_two_steps_with_the_kit_models(name: str, shape, model, tmp_path: Path) -> None:
    lo = 0.0 if name == "vae" else -1.0
    data = TensorDataset(torch.rand(8, *shape) * (1 - lo) + lo, torch.zeros(8, dtype=torch.long))
    trainer = get_recipe(name).build(data, model=model, steps=2, batch_size=4, progress=False, device="cpu",
                                     out_dir=str(tmp_path))
    history = trainer.train()
    assert trainer.step == 2 and all(math.isfinite(v) for v in history[trainer.log_keys[0]])
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["recipe"] == name and meta["model_kwargs"] == json.loads(json.dumps(trainer.meta["model_kwargs"]))


def test_base_recipe_sampling_cycles_labels_for_conditional_generators() -> None:
    from test_train_helpers import CondG, TinyG

    recipe = Recipe()
    out = recipe.sample({"generator": CondG(num_classes=3)}, 7, labels=[2, 0])
    assert out["images"].shape == (7, 1, 8, 8)
    assert 0.0 <= out["images"].min() and out["images"].max() <= 1.0
    assert out["labels"].tolist() == [2, 0, 2, 0, 2, 0, 2]
    assert recipe.sample({"generator": CondG(num_classes=3)}, 4)["labels"].tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        recipe.sample({"generator": CondG(num_classes=3)}, 2, labels=[5])
    with pytest.raises(ValueError, match="unconditional"):
        recipe.sample({"generator": TinyG()}, 2, labels=[1])
    G = TinyG()
    a = recipe.sample({"generator": G}, 3, seed=1)["images"]
    assert torch.equal(a, recipe.sample({"generator": G}, 3, seed=1)["images"])
    assert not torch.equal(a, recipe.sample({"generator": G}, 3, seed=2)["images"])


def test_registry_names_are_modules() -> None:
    import importlib.util

    for name in RECIPE_NAMES:
        if name == "cgan_mnist" and importlib.util.find_spec("gan_utils.recipes.cgan_mnist") is None:
            continue
        assert isinstance(get_recipe(name), Recipe) and get_recipe(name).name == name

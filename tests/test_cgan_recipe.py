"""The cgan_mnist recipe: its training extras and a tiny end-to-end run (budget: < 30 s on CPU)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gan_utils.recipes import get_recipe, load_checkpoint_models
from gan_utils.recipes.cgan_mnist import (
    RECIPE,
    CGANTrainConfig,
    ConditionalGANTrainer,
    RampedEMA,
    mode_seeking_term,
    run_demo,
    same_label_pairs,
)
from gan_utils.train.results import FakeBatch


def test_same_label_pairs_are_disjoint_and_maximal():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (64,), generator=g)
    first, second = same_label_pairs(labels)
    assert torch.equal(labels[first], labels[second])
    used = torch.cat([first, second])
    assert used.unique().numel() == used.numel()  # each sample in at most one pair
    counts = torch.bincount(labels, minlength=10)
    assert first.numel() == int((counts // 2).sum())
    a, b = same_label_pairs(None, n=5)
    assert a.tolist() == [0, 2] and b.tolist() == [1, 3]
    a, b = same_label_pairs(torch.tensor([3, 1, 2]))
    assert a.numel() == 0


def test_mode_seeking_term_matches_its_formula_and_rewards_spread():
    z = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 0, 1, 2, 5])
    fake = torch.randn(6, 1, 3, 3, requires_grad=True)
    term = mode_seeking_term(fake, z, labels)
    ratios = [
        (fake[i] - fake[j]).abs().mean() / (z[i] - z[j]).abs().mean() for i, j in ((0, 2), (1, 3))
    ]
    torch.testing.assert_close(term, 1.0 / (torch.stack(ratios).mean() + 1e-5))
    term.backward()
    # a gradient step on the term moves same-label images apart
    with torch.no_grad():
        moved = fake - 0.1 * fake.grad
    assert (moved[0] - moved[2]).abs().mean() > (fake[0] - fake[2]).abs().mean()
    assert fake.grad[4].abs().sum() == 0 and fake.grad[5].abs().sum() == 0  # unpaired
    assert mode_seeking_term(fake, z, torch.arange(6)) == 0


def test_ramped_ema_follows_the_model_early():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = RampedEMA(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 1/10 at the first update
    assert float(ema.module.weight) == pytest.approx(0.9)
    ema.update(model)  # 2/11
    assert float(ema.module.weight) == pytest.approx(1 - 0.1 * 2 / 11)
    assert ema.decay == 0.999
    for _ in range(20000):
        ema.num_updates += 1
    before = float(ema.module.weight)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model)
    assert float(ema.module.weight) == pytest.approx(0.999 * before + 0.001 * 2.0)


def test_config_round_trip_and_validation():
    cfg = RECIPE.make_config(steps=10, mode_seeking=0.5)
    assert isinstance(cfg, CGANTrainConfig) and cfg.mode_seeking == 0.5 and cfg.ema_decay == 0.999
    assert cfg.aux_weight == 1.0 and CGANTrainConfig().aux_weight == 0.0
    assert CGANTrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="mode_seeking"):
        CGANTrainConfig(mode_seeking=-1.0)
    with pytest.raises(ValueError, match="no config field"):
        RECIPE.make_config(bogus=1)


def test_registry_and_model_options():
    recipe = get_recipe("cgan_mnist")
    assert recipe is RECIPE
    with pytest.raises(ValueError, match="1x28x28"):
        recipe.model_kwargs(torch.utils.data.TensorDataset(torch.zeros(2, 3, 32, 32)))
    with pytest.raises(ValueError, match="unknown model option"):
        recipe.model_kwargs(torch.utils.data.TensorDataset(torch.zeros(2, 1, 28, 28)), width=3)


def _digits(n: int = 128) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
                                          torch.randint(0, 10, (n,), generator=g))


def test_generator_step_logs_and_uses_the_mode_seeking_term(tmp_path):
    trainer = RECIPE.build(_digits(), steps=3, batch_size=32, device="cpu", progress=False,
                           model={"g_channels": 8, "d_channels": 4}, log_every=1)
    assert isinstance(trainer, ConditionalGANTrainer) and isinstance(trainer.ema, RampedEMA)
    history = trainer.train()
    assert len(history["mode_seeking"]) == 3 and all(np.isfinite(history["mode_seeking"]))
    # with the weight off, the generator loss is the plain non-saturating one
    off = RECIPE.build(_digits(), steps=1, batch_size=32, device="cpu", progress=False, mode_seeking=0.0,
                       aux_weight=0.0, model={"g_channels": 8, "d_channels": 4}, log_every=1)
    logits = torch.tensor([0.5, -1.0])
    fake, z = torch.zeros(2, 1, 28, 28), torch.randn(2, 64)
    same_digit = FakeBatch(images=fake, inputs=z, labels=torch.tensor([1, 1]))
    objective = off.generator_objective(logits, same_digit, fake)
    torch.testing.assert_close(objective.loss, torch.nn.functional.softplus(-logits).mean())
    off_terms = off.generator_extra_terms(logits, same_digit, fake)
    assert off_terms["mode_seeking"].weight == 0.0 and off_terms["aux_g"].weight == 0.0
    spread = FakeBatch(images=fake + torch.arange(2.0).view(2, 1, 1, 1), inputs=z, labels=torch.tensor([1, 1]))
    on_terms = trainer.generator_extra_terms(logits, spread, fake)
    assert on_terms["mode_seeking"].weight == 0.3
    torch.testing.assert_close(on_terms["mode_seeking"].value, mode_seeking_term(spread.images, z, spread.labels))
    assert float(on_terms["mode_seeking"].value) > 0


def test_run_demo_tiny_budget_writes_the_figures(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # offline-data notice
        result = run_demo(tmp_path / "demo", max_seconds=60, max_steps=3, device="cpu", progress=False,
                          evaluate=False)
    out = tmp_path / "demo"
    assert result["steps"] == 3 and "accuracy" not in result
    for name in ("samples.png", "samples_by_digit.png", "losses.png", "checkpoint.pt", "config.json"):
        assert (out / name).is_file(), name
    assert Image.open(out / "samples.png").size == (6 * 30 + 2, 6 * 30 + 2)  # 6x6 grid of 28px + 2px padding
    assert Image.open(out / "samples_by_digit.png").size == (10 * 30 + 2, 10 * 30 + 2)
    assert json.loads((out / "config.json").read_text())["mode_seeking"] == 0.3
    # the checkpoint rebuilds the conditional generator (EMA weights) for the sample command
    recipe, models, _ = load_checkpoint_models(out / "checkpoint.pt")
    drawn = recipe.sample(models, 12, labels=[3, 7])
    assert drawn["images"].shape == (12, 1, 28, 28)
    assert drawn["labels"].tolist() == [3, 7] * 6
    assert float(drawn["images"].min()) >= 0.0 and float(drawn["images"].max()) <= 1.0


def test_auxiliary_classifier_terms():
    small = {"g_channels": 8, "d_channels": 4}
    with pytest.raises(ValueError, match="auxiliary_classifier=True"):
        RECIPE.build(_digits(), steps=1, batch_size=32, device="cpu", progress=False, aux_weight=1.0,
                     model={**small, "auxiliary_classifier": False})
    trainer = RECIPE.build(_digits(), steps=2, batch_size=32, device="cpu", progress=False, aux_weight=0.5,
                           model={**small, "auxiliary_classifier": True}, log_every=1)
    history = trainer.train()
    # ten classes, an untrained head: cross-entropy near log(10) on both sides
    assert all(abs(v - np.log(10)) < 0.5 for v in history["aux_d"] + history["aux_g"])
    # the D-side term is the head's cross-entropy on real labels, weighted by aux_weight; not a penalty
    real, labels = _digits(32).tensors
    fake = FakeBatch(images=real, inputs=torch.randn(32, 64), labels=labels)
    term = trainer.discriminator_extra_terms(real, labels, fake)["aux_d"]
    expected = torch.nn.functional.cross_entropy(trainer.discriminator.classify(real), labels)
    torch.testing.assert_close(term.value, expected)
    assert term.weight == 0.5 and trainer.penalty(real, real, labels) is None

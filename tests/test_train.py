"""GANTrainer: step semantics, penalties, EMA, AMP, channels_last, callbacks, budget (CPU, ~20 s)."""

from __future__ import annotations

import math

import pytest
import torch
from test_train_helpers import (
    CondD,
    CondG,
    ConvD,
    ConvG,
    TinyD,
    TinyG,
    all_changed,
    image_data,
    same,
    snapshot,
)
from torch import nn
from torch.utils.data import TensorDataset

from gan_utils.train import Callback, GANTrainConfig, GANTrainer


def make(config: dict | None = None, G=None, D=None, data=None, **kw) -> GANTrainer:
    cfg = GANTrainConfig(**{"batch_size": 16, "steps": 5, "progress": False, "device": "cpu",
                            "log_every": 5, **(config or {})})
    torch.manual_seed(0)
    return GANTrainer(G or TinyG(), D or TinyD(), cfg, data if data is not None else image_data(), **kw)


def test_generator_learns_a_single_image() -> None:
    # Overfit one batch: every real image is the same pattern; G must move towards it.
    target = torch.linspace(-0.8, 0.8, 64).view(1, 1, 8, 8)
    data = TensorDataset(target.repeat(64, 1, 1, 1))
    trainer = make({"steps": 150, "lr_g": 2e-3, "lr_d": 2e-3, "log_every": 50}, data=data)
    before = ((trainer.make_samples() - target) ** 2).mean().item()
    history = trainer.train()
    after = ((trainer.make_samples() - target) ** 2).mean().item()
    assert after < 0.5 * before, (before, after)
    assert all(math.isfinite(v) for key in ("loss_d", "loss_g") for v in history[key])
    assert len(history["loss_d"]) == 150 and history["step"] == list(range(1, 151))


@pytest.mark.parametrize("reuse_fake", [True, False])
def test_d_step_changes_only_d_and_g_step_only_g(reuse_fake: bool) -> None:
    trainer = make({"reuse_fake": reuse_fake})
    G0, D0 = snapshot(trainer.generator), snapshot(trainer.discriminator)
    d = trainer.d_step(keep_graph=reuse_fake)
    G1, D1 = snapshot(trainer.generator), snapshot(trainer.discriminator)
    assert same(G0, G1), "the D step changed the generator"
    assert all_changed(D0, D1), "the D step did not update every discriminator parameter"
    assert all(p.grad is None for p in trainer.generator.parameters()), "the D step sent gradients into G"
    assert d.fake.images.requires_grad == reuse_fake, "keep_graph decides whether the fakes carry G's graph"
    trainer.g_step(d.real, d.labels, d.fake if reuse_fake else None)
    G2, D2 = snapshot(trainer.generator), snapshot(trainer.discriminator)
    assert same(D1, D2), "the G step changed the discriminator"
    assert all_changed(G1, G2), "the G step did not update every generator parameter"
    assert all(p.requires_grad for p in trainer.discriminator.parameters()), "D left frozen after the G step"


def test_n_critic_counts_optimizer_steps_and_batches() -> None:
    trainer = make({"n_critic": 3, "steps": 4, "loss": "wgan", "clip": 0.05})
    counts = {"d": 0, "g": 0}
    trainer.opt_d.register_step_post_hook(lambda *a: counts.__setitem__("d", counts["d"] + 1))
    trainer.opt_g.register_step_post_hook(lambda *a: counts.__setitem__("g", counts["g"] + 1))
    trainer.train()
    assert counts == {"d": 12, "g": 4}
    assert trainer.stream.position == 12  # one new real batch per critic step


def test_weight_clipping_bounds_every_critic_weight() -> None:
    trainer = make({"loss": "wgan", "clip": 0.01, "lr_d": 0.05, "steps": 3})
    trainer.train()
    for p in trainer.discriminator.parameters():
        assert p.abs().max() <= 0.01 + 1e-9
    assert any(p.abs().max() > 0.009 for p in trainer.discriminator.parameters())


class LinearCritic(nn.Module):
    """``D(x) = w . x + b``: input gradient ``w`` everywhere, so GP and R1 have closed forms."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1)).view(-1)


def test_penalties_match_closed_form_for_a_linear_critic() -> None:
    trainer = make({"loss": "wgan", "gp_weight": 10.0, "r1_gamma": 3.0}, D=LinearCritic())
    real, fake = torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8)
    w = trainer.discriminator.lin.weight.detach()
    norm = w.norm()
    expected = 10.0 * (norm - 1) ** 2 + 0.5 * 3.0 * norm**2
    got = trainer.penalty(real, fake, None)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # and it is differentiable w.r.t. the critic: d/dw [10 (|w|-1)^2 + 1.5 |w|^2]
    (grad,) = torch.autograd.grad(got, trainer.discriminator.lin.weight)
    torch.testing.assert_close(grad, (20.0 * (norm - 1) / norm + 3.0) * w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("extra", [dict(loss="wgan", gp_weight=10.0, n_critic=2), dict(r1_gamma=1.0),
                                   dict(loss="lsgan"), dict(loss="hinge"), dict(loss="minimax")])
def test_loss_kinds_and_penalties_train(extra: dict) -> None:
    history = make({"steps": 4, "log_every": 2, **extra}).train()
    assert all(math.isfinite(v) for v in history["loss_d"] + history["loss_g"] + history["g_grad_norm"])


def test_logged_scores_are_probabilities_for_bce_and_raw_for_wgan() -> None:
    t = make({"steps": 3, "log_every": 1})
    t.train()
    assert all(0.0 <= v <= 1.0 for v in t.history["d_real"] + t.history["d_fake"])
    w = make({"steps": 3, "loss": "wgan", "lr_d": 0.5, "log_every": 1})
    w.train()
    real, _ = w.fixed_batch(16)
    assert w.history["d_real"][-1] != pytest.approx(torch.sigmoid(w.discriminator(real)).mean().item())


def test_generator_gradient_norm_matches_a_direct_computation() -> None:
    trainer = make({"reuse_fake": True})
    d = trainer.d_step(keep_graph=True)
    g0 = snapshot(trainer.generator)
    gnorm = trainer.g_step(d.real, d.labels, d.fake).grad_norm
    expected = torch.sqrt(sum((p.grad**2).sum() for p in trainer.generator.parameters()))
    torch.testing.assert_close(gnorm, expected)
    assert not same(g0, snapshot(trainer.generator))


def test_ema_follows_the_independent_formula_and_copies_buffers() -> None:
    decay = 0.8
    trainer = make({"ema_decay": decay, "steps": 6}, G=TinyG(batchnorm=True))
    expected = {k: v.clone() for k, v in trainer.generator.state_dict().items()}

    class Track(Callback):
        def on_step(self, tr, step):
            for name, p in tr.generator.named_parameters():
                expected[name] = decay * expected[name] + (1 - decay) * p.detach()

    trainer.callbacks.append(Track())
    trainer.train()
    ema_state = trainer.ema.module.state_dict()
    for name, _ in trainer.generator.named_parameters():
        torch.testing.assert_close(ema_state[name], expected[name], rtol=1e-5, atol=1e-6)
        assert not torch.equal(ema_state[name], trainer.generator.state_dict()[name])
    for name, buf in trainer.generator.named_buffers():
        assert torch.equal(ema_state[name], buf), f"buffer {name} not copied"
    assert trainer.ema.num_updates == 6
    assert all(not p.requires_grad for p in trainer.ema.module.parameters())


def test_bf16_autocast_runs_on_cpu() -> None:
    trainer = make({"amp": "bf16", "steps": 3, "gp_weight": 1.0, "loss": "wgan"}, G=ConvG(), D=ConvD(),
                   data=image_data(channels=3))
    assert not trainer.scaler_d.is_enabled()
    seen = []
    trainer.discriminator.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    history = trainer.train()
    assert torch.bfloat16 in seen  # the forward really ran under autocast
    assert all(math.isfinite(v) for v in history["loss_d"])


def test_fp16_uses_a_grad_scaler() -> None:
    trainer = make({"amp": "fp16", "steps": 2}, G=ConvG(), D=ConvD(), data=image_data(channels=3))
    assert trainer.scaler_g.is_enabled() and trainer.scaler_d.is_enabled()
    trainer.train()
    assert all(math.isfinite(v) for v in trainer.history["loss_d"])


def test_channels_last_path() -> None:
    trainer = make({"channels_last": True, "steps": 3}, G=ConvG(), D=ConvD(), data=image_data(channels=3))
    conv = trainer.discriminator.net[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    real, _ = trainer.next_batch()
    assert real.is_contiguous(memory_format=torch.channels_last)
    trainer.train()
    assert all(math.isfinite(v) for v in trainer.history["loss_g"])


def test_conditional_models_get_labels_and_one_grid_row_per_class() -> None:
    G, D = CondG(num_classes=3), CondD(num_classes=3)
    trainer = make({"steps": 2, "n_fixed_samples": 16}, G=G, D=D, data=image_data(num_classes=3))
    assert trainer.conditional and trainer.num_classes == 3
    trainer.train()
    step, images = trainer.samples[-1]
    assert step == 2 and images.shape == (3 * 4, 1, 8, 8) and trainer.grid_nrow() == 4
    assert torch.equal(trainer.fixed_labels.cpu(), torch.tensor([0] * 4 + [1] * 4 + [2] * 4))
    real_labels = torch.cat([lab for lab in D.seen_labels])
    assert real_labels.min() >= 0 and real_labels.max() < 3 and len(D.seen_labels) >= 6


def test_conditional_training_rejects_missing_or_bad_labels() -> None:
    unlabeled = TensorDataset(torch.rand(32, 1, 8, 8))
    with pytest.raises(ValueError, match="labels"):
        make({"steps": 1}, G=CondG(), D=CondD(), data=unlabeled).train()
    bad = TensorDataset(torch.rand(32, 1, 8, 8), torch.full((32,), 7))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        make({"steps": 1}, G=CondG(), D=CondD(), data=bad).train()


def test_callbacks_samples_and_outputs(tmp_path) -> None:
    events = {"step": 0, "log": [], "sample": [], "end": 0}

    class Rec(Callback):
        def on_step(self, tr, step):
            events["step"] += 1

        def on_log(self, tr, step, logs):
            events["log"].append((step, sorted(logs)))

        def on_sample(self, tr, step, images):
            events["sample"].append((step, tuple(images.shape)))

        def on_end(self, tr, history):
            events["end"] += 1

    trainer = make({"steps": 10, "log_every": 4, "sample_every": 5, "out_dir": str(tmp_path)}, callbacks=[Rec()])
    trainer.train()
    assert events["step"] == 10 and events["end"] == 1
    assert [s for s, _ in events["log"]] == [4, 8, 10]
    assert events["log"][0][1] == sorted(GANTrainer.log_keys)
    assert events["sample"] == [(5, (36, 1, 8, 8)), (10, (36, 1, 8, 8))]
    assert [s for s, _ in trainer.samples] == [5, 10]
    for name in ("config.json", "checkpoint.pt", "history.json", "losses.png", "samples/step_000005.png"):
        assert (tmp_path / name).is_file(), name


def test_logged_values_stay_on_device_until_log_time() -> None:
    trainer = make({"steps": 3, "log_every": 100})
    for _ in range(3):
        trainer._pending.append((0, tuple(trainer.train_step()[k] for k in trainer.log_keys)))
    assert all(isinstance(t, torch.Tensor) for _, row in trainer._pending for t in row)
    assert trainer.history["loss_d"] == []
    trainer._log(None)
    assert len(trainer.history["loss_d"]) == 3 and trainer._pending == []


def test_time_budget_stops_cleanly(tmp_path) -> None:
    trainer = make({"steps": 10**6, "max_seconds": 0.3, "out_dir": str(tmp_path)})
    history = trainer.train()
    assert 0 < trainer.step < 10**6
    assert len(history["loss_d"]) == trainer.step
    assert (tmp_path / "checkpoint.pt").is_file() and trainer.samples[-1][0] == trainer.step


def test_non_finite_loss_is_reported() -> None:
    class NaND(TinyD):
        def forward(self, x):
            return super().forward(x) * float("nan")

    with pytest.raises(FloatingPointError, match="non-finite"):
        make({"steps": 2, "log_every": 1}, D=NaND()).train()


def test_dataset_smaller_than_a_batch_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="fewer than one global batch"):
        make({"batch_size": 64}, data=image_data(n=10))


def test_missing_latent_size_is_a_clear_error() -> None:
    G = TinyG()
    del G.z_dim
    with pytest.raises(ValueError, match="z_dim"):
        make(G=G)
    assert make({"z_dim": 8}, G=G).z_dim == 8


def test_live_plot_callback_draws_without_error(capsys) -> None:
    from gan_utils.train import LivePlot

    trainer = make({"steps": 4, "log_every": 2, "sample_every": 2}, callbacks=[LivePlot(smooth=2)])
    trainer.train()
    assert "Figure" in capsys.readouterr().out  # IPython's display falls back to printing outside notebooks

"""The GAN trainer's typed results and hooks: fake batches, extra loss terms, the network to sample from."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_train_helpers import CondD, CondG, TinyD, TinyG, image_data, same, snapshot

from gan_utils.recipes.cgan_mnist import RECIPE
from gan_utils.train import (
    ConditionalGANTrainer,
    DStepResult,
    FakeBatch,
    GANTrainConfig,
    GANTrainer,
    GStepResult,
    RampedEMA,
    WeightedTerm,
    eval_mode,
    sample_from,
    trained_generator,
)

_FAST = {"batch_size": 16, "steps": 2, "progress": False, "device": "cpu", "log_every": 1}


def make(cls=GANTrainer, G=None, D=None, data=None, **config) -> GANTrainer:
    torch.manual_seed(0)
    return cls(G or TinyG(), D or TinyD(), GANTrainConfig(**{**_FAST, **config}),
               data if data is not None else image_data())


def small_cgan(**config) -> ConditionalGANTrainer:
    g = torch.Generator().manual_seed(0)
    digits = torch.utils.data.TensorDataset(torch.rand(64, 1, 28, 28, generator=g) * 2 - 1,
                                            torch.randint(0, 10, (64,), generator=g))
    return RECIPE.build(digits, model={"g_channels": 8, "d_channels": 4}, **{**_FAST, "batch_size": 32, **config})


# -- fake batches ------------------------------------------------------------------------------------
def test_fake_batch_holds_the_latents_and_labels_that_made_it() -> None:
    trainer = make(G=CondG(), D=CondD(), data=image_data(num_classes=3))
    real, labels = trainer.next_batch()
    labels = labels.long()
    fake = trainer.fake_batch(real, labels, grad=False)
    assert fake.labels is labels and fake.inputs.shape == (16, trainer.z_dim)
    torch.testing.assert_close(fake.images, trainer.generator(fake.inputs, labels))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fake.labels = None  # type: ignore[misc]


def test_conditional_trainer_fakes_carry_the_labels_of_their_real_batch() -> None:
    trainer = small_cgan()
    d = trainer.d_step(keep_graph=True)
    assert isinstance(d, DStepResult) and isinstance(d.fake, FakeBatch)
    assert torch.equal(d.fake.labels, d.labels) and d.labels.dtype == torch.int64
    assert d.fake.inputs.shape == (32, 64) and d.fake.images.shape == (32, 1, 28, 28)
    assert d.fake.images.requires_grad  # kept for the generator step (reuse_fake)
    assert set(d.terms) == {"aux_d"}


def test_unconditional_fakes_have_no_labels_and_d_step_reports_logits() -> None:
    trainer = make()
    d = trainer.d_step()
    assert d.labels is None and d.fake.labels is None and not d.fake.images.requires_grad
    assert d.real_logits.shape == (16,) and d.fake_logits.shape == (16,) and d.terms == {}
    g = trainer.g_step(d.real, d.labels)
    assert isinstance(g, GStepResult) and g.loss.dim() == 0 and g.grad_norm > 0 and g.terms == {}


# -- extra loss terms ----------------------------------------------------------------------------------
class WeightDecayD(GANTrainer):
    """Adds ``0.5 * ||W||^2`` of D's first layer to D's loss as an extra term."""

    log_keys = (*GANTrainer.log_keys, "d_weight_sq")
    weight = 0.1

    def discriminator_extra_terms(self, real, labels, fake):
        w = self.discriminator.net[1].weight
        return {"d_weight_sq": WeightedTerm(0.5 * (w ** 2).sum(), self.weight)}


def test_extra_d_term_is_added_weighted_logged_and_its_gradient_reaches_d() -> None:
    plain, extra = make(), make(WeightDecayD)
    w_before = extra.discriminator.net[1].weight.detach().clone()
    d_plain, d_extra = plain.d_step(), extra.d_step()
    value = 0.5 * (w_before ** 2).sum()
    torch.testing.assert_close(d_extra.terms["d_weight_sq"], value)
    torch.testing.assert_close(d_extra.loss, d_plain.loss + 0.1 * value)
    # d/dW of 0.1 * 0.5 ||W||^2 is 0.1 W: exactly the difference of D's gradients
    grad_gap = extra.discriminator.net[1].weight.grad - plain.discriminator.net[1].weight.grad
    torch.testing.assert_close(grad_gap, 0.1 * w_before)
    history = make(WeightDecayD).train()
    assert len(history["d_weight_sq"]) == 2 and history["d_weight_sq"][0] > 0


def test_a_term_missing_from_log_keys_is_a_clear_error() -> None:
    class Forgot(WeightDecayD):
        log_keys = GANTrainer.log_keys

    with pytest.raises(KeyError, match="d_weight_sq"):
        make(Forgot).train()


def test_a_zero_weight_term_is_logged_but_not_added() -> None:
    class Off(WeightDecayD):
        weight = 0.0

    d_plain, d_off = make().d_step(), make(Off).d_step()
    assert torch.equal(d_off.loss, d_plain.loss) and float(d_off.terms["d_weight_sq"]) > 0


def test_auxiliary_classifier_term_is_logged_by_name_and_trains_only_d_head_in_the_d_step() -> None:
    on, off = small_cgan(aux_weight=1.0), small_cgan(aux_weight=0.0)
    for trainer, changes in ((on, True), (off, False)):
        head = snapshot(trainer.discriminator.aux_head)
        d = trainer.d_step()
        assert same(head, snapshot(trainer.discriminator.aux_head)) != changes
        assert "aux_d" in d.terms and (float(d.terms["aux_d"]) > 0) == changes
    # G's side: the head's cross-entropy on the fakes, for the labels they were made for; D stays frozen
    d = on.d_step(keep_graph=True)
    D0 = snapshot(on.discriminator)
    g = on.g_step(d.real, d.labels, d.fake)
    assert same(D0, snapshot(on.discriminator))
    assert set(g.terms) == {"mode_seeking", "aux_g"} and float(g.terms["aux_g"]) > 0
    history = small_cgan(aux_weight=1.0).train()
    assert len(history["aux_d"]) == len(history["aux_g"]) == 2


# -- the network to sample from ------------------------------------------------------------------------
def test_sample_from_prefers_the_ema_copy() -> None:
    with_ema, without = make(ema_decay=0.9), make()
    assert sample_from(with_ema.generator, with_ema.ema) is with_ema.ema.module
    assert sample_from(without.generator, None) is without.generator
    assert trained_generator(with_ema) is with_ema.ema.module
    G = trained_generator(without)
    assert G is without.generator and not G.training
    with_ema.train()
    expected = with_ema.ema.module(with_ema.fixed_noise)
    torch.testing.assert_close(with_ema.make_samples(), expected)
    assert not torch.equal(with_ema.make_samples(), with_ema.generator.eval()(with_ema.fixed_noise))


def test_cgan_recipe_keeps_a_ramped_ema_and_samples_from_it() -> None:
    trainer = small_cgan()
    assert isinstance(trainer.ema, RampedEMA) and trained_generator(trainer) is trainer.ema.module


def test_eval_mode_restores_the_previous_mode_even_after_an_error() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
    with eval_mode(net) as inside:
        assert inside is net and not net.training
    assert net.training
    with pytest.raises(RuntimeError), eval_mode(net):
        raise RuntimeError("boom")
    assert net.training


def test_sr_generator_input_is_the_degraded_batch_and_the_objective_parts_are_logged() -> None:
    from gan_utils.models.sr import PatchDiscriminator, SRUNetGenerator
    from gan_utils.train import SRTrainConfig, SRTrainer

    torch.manual_seed(0)
    trainer = SRTrainer(SRUNetGenerator(in_channels=3, base=8, n_levels=2),
                        PatchDiscriminator(in_channels=3, base=8, n_layers=2),
                        SRTrainConfig(**{**_FAST, "batch_size": 8, "low_size": 4}),
                        image_data(n=32, channels=3, side=16))
    d = trainer.d_step(keep_graph=True)
    torch.testing.assert_close(d.fake.inputs, trainer.degrade(d.real))
    assert d.fake.labels is None
    g = trainer.g_step(d.real, d.labels, d.fake)
    assert set(g.terms) == {"loss_recon", "loss_adv"}
    cfg = trainer.config
    torch.testing.assert_close(g.loss, cfg.recon_weight * g.terms["loss_recon"] + cfg.gan_weight * g.terms["loss_adv"])

"""Conditional GAN on MNIST (KAUST seed): G and D both take the digit.

    python -m gan_utils train cgan_mnist --steps 5000 --max-seconds 300 --out out/cgan
    python -m gan_utils sample out/cgan/checkpoint.pt --n 100 --labels 0,1,2,3,4,5,6,7,8,9 --out s.npz

Networks: :class:`~gan_utils.models.cgan.ConditionalGenerator` (label embedding
+ class-conditional batch norm) against the projection
:class:`~gan_utils.models.cgan.ConditionalDiscriminator` with an auxiliary
classifier head.

Training (:class:`~gan_utils.train.cgan_trainer.ConditionalGANTrainer`, a
:class:`~gan_utils.train.GANTrainer`, with a :class:`~gan_utils.train.config.CGANTrainConfig`):

* non-saturating BCE loss, Adam (3e-4 for both, betas (0.5, 0.999)), batch 64,
  one D step per G step, the G step reusing the D step's fakes (3e-4 reaches
  97 % about 1,000 steps sooner than DCGAN's 2e-4 and plateaus higher);
* a **mode-seeking term** (Mao et al., 2019): for pairs of fakes with the same
  label, G is pushed to keep ``mean|G(z1, y) - G(z2, y)| / mean|z1 - z2|``
  large. Without it this small conditional GAN learns to ignore ``z`` (every
  sample of a class looks the same, the Frechet distance stays ~7x higher)
  even though the digits are recognisable. Weight ``mode_seeking`` (0.3);
* an **auxiliary classifier** (AC-GAN, Odena et al., 2017): D has a second
  head that learns the digit of *real* images (cross-entropy, weight
  ``aux_weight`` = 1), and G is asked to make that head predict the requested
  digit on its fakes. The projection term alone left ~3 % of the samples
  ambiguous (4 vs 9, 7 vs 1) after 5,000 steps; with the head the requested
  digit is recognised sooner and more often. The mode-seeking term keeps the
  head from pulling every sample towards one easy prototype;
* an **EMA of G** with a ramp-up (``decay_t = min(decay, (1 + t) / (10 + t))``),
  so the average forgets the random initial weights after a few hundred steps
  instead of a few thousand. Samples and the ``sample`` command use it.

``loss_d`` and ``loss_g`` include the extra terms; ``mode_seeking``,
``aux_d`` and ``aux_g`` are also logged on their own.

Budget: ``steps`` (default 5000) and ``max_seconds`` - whichever comes first.
On two CPU cores a step costs about 70 ms (13-14 steps/s), so
``max_seconds=300`` usually ends the run after ~4,000 steps; the classifier
accuracy of the samples passes 98 % by ~2,000 steps and stays there, so a
busy machine that stops earlier loses little. ``scripts/cgan_quality.py``
measures it.
:func:`gan_utils.demo.run_demo` is what ``make demo`` runs.

Where the parts live: the config in :mod:`gan_utils.train.config`, the ramped
EMA in :mod:`gan_utils.train.ema`, the mode-seeking term in
:mod:`gan_utils.losses.mode_seeking`, the trainer in
:mod:`gan_utils.train.cgan_trainer`, :func:`trained_generator` in
:mod:`gan_utils.train.sampling` and the demo driver in :mod:`gan_utils.demo`;
this module keeps the recipe and re-exports the rest under their old names.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan_utils.losses.mode_seeking import mode_seeking_term, same_label_pairs
from gan_utils.recipes.base import Recipe, dataset_image_shape
from gan_utils.train.cgan_trainer import ConditionalGANTrainer
from gan_utils.train.config import CGANTrainConfig
from gan_utils.train.ema import RampedEMA
from gan_utils.train.sampling import trained_generator

__all__ = [
    "CGANMnistRecipe",
    "CGANTrainConfig",
    "ConditionalGANTrainer",
    "DEFAULT_SECONDS",
    "DEFAULT_STEPS",
    "RECIPE",
    "RampedEMA",
    "mode_seeking_term",
    "same_label_pairs",
    "trained_generator",
]  # run_demo and save_sample_grids are found by __getattr__ below

DEFAULT_STEPS = 5000
DEFAULT_SECONDS = 300.0


class CGANMnistRecipe(Recipe):
    name = "cgan_mnist"
    description = "conditional GAN on MNIST: CBN generator, projection discriminator, mode seeking, EMA"
    trainer_kind = "gan"
    default_dataset = "mnist"
    value_range = "tanh"
    image_size = None
    config_defaults = {
        "loss": "nonsaturating",
        "batch_size": 64,
        "steps": DEFAULT_STEPS,
        "lr_g": 3e-4,
        "lr_d": 3e-4,
        "betas": (0.5, 0.999),
        "n_critic": 1,
        "ema_decay": 0.999,
        "mode_seeking": 0.3,
        "aux_weight": 1.0,
        "conditional": True,
        "n_fixed_samples": 100,
        "log_every": 50,
    }

    def config_class(self) -> type:
        return CGANTrainConfig

    def model_kwargs(self, dataset: Any, **overrides: Any) -> dict[str, Any]:
        shape = dataset_image_shape(dataset)
        if tuple(shape) != (1, 28, 28):
            raise ValueError(f"cgan_mnist needs 1x28x28 images (MNIST), got {shape}")
        kwargs = {"z_dim": 64, "num_classes": 10, "g_channels": 64, "d_channels": 32,
                  "d_feature_dim": None, "spectral_norm": False, "auxiliary_classifier": True}
        unknown = sorted(set(overrides) - set(kwargs))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown} for recipe {self.name!r}; known: {sorted(kwargs)}")
        return {**kwargs, **overrides}

    def build_models(self, **kw: Any) -> dict[str, nn.Module]:
        from gan_utils.models.cgan import ConditionalDiscriminator, ConditionalGenerator

        generator = ConditionalGenerator(z_dim=kw["z_dim"], num_classes=kw["num_classes"], base_channels=kw["g_channels"])
        discriminator = ConditionalDiscriminator(num_classes=kw["num_classes"], base_channels=kw["d_channels"],
                                                 feature_dim=kw["d_feature_dim"], spectral_norm=kw["spectral_norm"],
                                                 auxiliary_classifier=kw.get("auxiliary_classifier", False))
        return {"generator": generator, "discriminator": discriminator}

    def make_trainer(self, models, config, data, *, callbacks=(), meta=None) -> ConditionalGANTrainer:
        return ConditionalGANTrainer(models["generator"], models["discriminator"], config, data,
                                     callbacks=callbacks, meta=meta)


RECIPE = CGANMnistRecipe()


def __getattr__(name: str) -> Any:
    # the demo driver moved to gan_utils.demo (which imports this module); old imports keep working
    if name in ("run_demo", "save_sample_grids"):
        from gan_utils import demo

        return getattr(demo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

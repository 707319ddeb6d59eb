"""Trainers for GANs, super-resolution GANs and VAEs / autoencoders.

>>> from gan_utils.train import GANTrainer, GANTrainConfig
>>> trainer = GANTrainer(G, D, GANTrainConfig(loss="wgan", gp_weight=10, n_critic=5), dataset)  # doctest: +SKIP
>>> history = trainer.train()                                                                    # doctest: +SKIP

* :mod:`~gan_utils.train.config` dataclass configs (JSON round trip)
* :mod:`~gan_utils.train.loop` the shared loop (:class:`TrainerBase`);
  :mod:`~gan_utils.train.callbacks` hooks (:class:`Callback`, :class:`LivePlot`)
* :mod:`~gan_utils.train.gan_trainer`, :mod:`~gan_utils.train.cgan_trainer`,
  :mod:`~gan_utils.train.sr_trainer`, :mod:`~gan_utils.train.vae_trainer` the trainers;
  :mod:`~gan_utils.train.results` what the GAN trainer's steps and hooks return
* :mod:`~gan_utils.train.checkpoint` atomic checkpoints, bit-exact resume
* :mod:`~gan_utils.train.ema` exponential moving average of weights (plain, ramped)
* :mod:`~gan_utils.train.sampling` which network to sample from (the EMA copy if kept)
* :mod:`~gan_utils.train.distributed` DDP under ``torchrun``
* :mod:`~gan_utils.train.cli` the ``train`` and ``sample`` commands
"""

from gan_utils.train.batches import BatchStream
from gan_utils.train.callbacks import Callback, LivePlot
from gan_utils.train.cgan_trainer import ConditionalGANTrainer
from gan_utils.train.checkpoint import load_checkpoint, save_checkpoint
from gan_utils.train.config import (
    BaseTrainConfig,
    CGANTrainConfig,
    GANTrainConfig,
    SRTrainConfig,
    VAETrainConfig,
    load_config,
)
from gan_utils.train.ema import EMA, RampedEMA
from gan_utils.train.gan_trainer import GANTrainer
from gan_utils.train.loop import TrainerBase
from gan_utils.train.results import DStepResult, FakeBatch, GStepResult, Objective, WeightedTerm
from gan_utils.train.sampling import eval_mode, sample_from, trained_generator
from gan_utils.train.sr_trainer import SRTrainer
from gan_utils.train.vae_trainer import VAETrainer

__all__ = [
    "EMA",
    "BaseTrainConfig",
    "BatchStream",
    "CGANTrainConfig",
    "Callback",
    "ConditionalGANTrainer",
    "DStepResult",
    "FakeBatch",
    "GANTrainConfig",
    "GANTrainer",
    "GStepResult",
    "LivePlot",
    "Objective",
    "RampedEMA",
    "SRTrainConfig",
    "SRTrainer",
    "TrainerBase",
    "VAETrainConfig",
    "VAETrainer",
    "WeightedTerm",
    "eval_mode",
    "load_checkpoint",
    "load_config",
    "sample_from",
    "save_checkpoint",
    "trained_generator",
]

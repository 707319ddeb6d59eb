"""Which network to sample from, and drawing from it without disturbing training.

* :func:`sample_from` - the EMA copy when one is kept, else the live network;
* :func:`eval_mode` - run a network in eval mode, then restore its mode;
* :func:`trained_generator` - :func:`sample_from` for a GAN trainer, in eval mode.

>>> G = torch.nn.Linear(2, 2)
>>> sample_from(G, None) is G
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch  # noqa: F401  (doctest)
from torch import nn

from gan_utils.train.ema import EMA

__all__ = ["eval_mode", "sample_from", "trained_generator"]


def sample_from(model: nn.Module, ema: EMA | None) -> nn.Module:
    """The network to draw samples from: ``ema.module`` when an EMA is kept, else ``model``."""
    return ema.module if ema is not None else model


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(G): ...`` runs ``G`` in eval mode and restores its previous mode after."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def trained_generator(trainer: Any) -> nn.Module:
    """The generator of a GAN trainer to sample from (:func:`sample_from`), switched to eval mode.

    ``trainer`` is anything with ``generator`` and ``ema`` attributes (a
    :class:`~gan_utils.train.GANTrainer`). The live generator is left in eval
    mode; ``trainer.train()`` switches it back.
    """
    return sample_from(trainer.generator, trainer.ema).eval()

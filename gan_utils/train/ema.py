"""Exponential moving average of a model's weights (e.g. the generator).

After every optimiser step::

    ema_param <- decay * ema_param + (1 - decay) * param

Buffers (BatchNorm running statistics, spectral-norm vectors) are copied from
the model by default, as StyleGAN does; ``average_buffers=True`` averages the
floating-point ones too. :class:`RampedEMA` ramps the decay up from 0.1 so the
average forgets the random initial weights within a few hundred updates.

>>> G = torch.nn.Linear(2, 2)
>>> ema = EMA(G, decay=0.99)
>>> ema.update(G)
>>> ema.module(torch.zeros(1, 2)).shape
torch.Size([1, 2])
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["EMA", "RampedEMA", "unwrap_model"]


def unwrap_model(module: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel`` / ``torch.compile`` wrappers."""
    while True:
        if hasattr(module, "_orig_mod"):
            module = module._orig_mod
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


class EMA:
    """A frozen copy of ``model`` that tracks the exponential average of its weights.

    Args:
        model: the network being trained (DDP / compiled wrappers are looked through).
        decay: weight of the old average, in ``[0, 1)``; 0.999 is usual for GANs.
        average_buffers: average floating-point buffers instead of copying them.

    ``ema.module`` is the averaged network (eval mode, ``requires_grad=False``).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, average_buffers: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.average_buffers = average_buffers
        self.module = copy.deepcopy(unwrap_model(model)).eval().requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend ``model``'s current weights into the average (call after each optimiser step)."""
        model = unwrap_model(model)
        ema_params = list(self.module.parameters())
        params = list(model.parameters())
        if len(ema_params) != len(params):
            raise ValueError(f"EMA holds {len(ema_params)} parameters but the model has {len(params)}")
        if ema_params:
            # lerp: ema + (1 - decay) * (param - ema) == decay * ema + (1 - decay) * param
            torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - self.decay)
        for ema_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            if self.average_buffers and ema_b.is_floating_point():
                ema_b.lerp_(b, 1.0 - self.decay)
            else:
                ema_b.copy_(b)
        self.num_updates += 1

    def to(self, *args: Any, **kwargs: Any) -> EMA:
        self.module.to(*args, **kwargs)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["module"])


class RampedEMA(EMA):
    """EMA whose decay ramps up: ``min(decay, (1 + n) / (10 + n))`` at update ``n``.

    Early on the average follows the model closely (decay 0.1, 0.17, ...), so
    it is not dragged back to the random initial weights; the ceiling
    ``decay`` is reached after ``~10 / (1 - decay)`` updates.
    """

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ceiling = self.decay
        self.decay = min(ceiling, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        try:
            super().update(model)
        finally:
            self.decay = ceiling

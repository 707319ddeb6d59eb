"""Trainer callbacks: hooks a notebook can use to watch training live.

A callback is any object with some of these methods::

    on_step(trainer, step)                    after every step
    on_log(trainer, step, logs: dict)         every log_every steps; logs are floats
    on_sample(trainer, step, images)          after each fixed-sample grid (CPU tensor)
    on_end(trainer, history)                  when train() returns

>>> trainer = GANTrainer(G, D, config, data, callbacks=[LivePlot()])   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Callback", "LivePlot", "call_callback", "progress_bar"]


class Callback:
    """No-op base class for trainer callbacks (subclass and override what you need)."""

    def on_step(self, trainer: Any, step: int) -> None: ...
    def on_log(self, trainer: Any, step: int, logs: dict[str, float]) -> None: ...
    def on_sample(self, trainer: Any, step: int, images: torch.Tensor) -> None: ...
    def on_end(self, trainer: Any, history: dict[str, list[float]]) -> None: ...


class LivePlot(Callback):
    """Redraw the loss curves and the latest sample grid in a notebook at every log.

    Args:
        keys: history keys to plot (default: every ``loss*`` key).
        smooth: moving-average window for the curves.
    """

    def __init__(self, keys: tuple[str, ...] | None = None, smooth: int = 1) -> None:
        self.keys, self.smooth = keys, smooth

    def on_log(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        from gan_utils.plotting import plot_losses, show_grid

        keys = self.keys or tuple(k for k in trainer.history if k.startswith("loss"))
        curves = {k: trainer.history[k] for k in keys if trainer.history.get(k)}
        fig, axes = plt.subplots(1, 2 if trainer.samples else 1, figsize=(11 if trainer.samples else 6, 4),
                                 squeeze=False)
        if curves:
            plot_losses(curves, steps=trainer.history["step"], smooth_window=self.smooth, ax=axes[0, 0])
        if trainer.samples:
            s, images = trainer.samples[-1]
            show_grid(images, nrow=trainer.grid_nrow(), value_range=trainer.sample_value_range,
                      title=f"samples at step {s}", ax=axes[0, 1])
        clear_output(wait=True)
        display(fig)
        plt.close(fig)


def call_callback(callback: Any, name: str, *args: Any) -> None:
    """Call ``callback.<name>(*args)`` if the callback defines it."""
    fn = getattr(callback, name, None)
    if fn is not None:
        fn(*args)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, initial: int, enabled: bool, desc: str) -> Any:
    """A ``tqdm.auto`` bar (notebook widget or terminal), or a no-op when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=True)

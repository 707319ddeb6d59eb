"""Image grids and loss curves.

Grids use torchvision's ``make_grid`` / ``save_image``; curves use matplotlib
with the non-interactive backend when no display is attached.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from gan_utils.data.transforms import to_unit_range


def image_grid(images: torch.Tensor, nrow: int | None = None, value_range: str = "tanh", padding: int = 2) -> torch.Tensor:
    """Arrange a batch ``(N, C, H, W)`` into one ``(C, H', W')`` grid in [0, 1].

    ``value_range`` says what the input holds: ``"tanh"`` for [-1, 1] (generator
    outputs), ``"unit"`` for [0, 1]. ``nrow`` defaults to a square grid.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected a 4-D image batch (N, C, H, W), got {shape}")
    images = images.detach().float().cpu()
    if value_range == "tanh":
        images = to_unit_range(images)
    elif value_range != "unit":
        raise ValueError(f"value_range must be 'tanh' or 'unit', got {value_range!r}")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(images.clamp(0, 1), nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, value_range: str = "tanh") -> Path:
    """Save a batch as one PNG grid (see :func:`image_grid`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(image_grid(images, nrow=nrow, value_range=value_range), str(path))
    return path


def show_grid(images: torch.Tensor, nrow: int | None = None, value_range: str = "tanh", title: str | None = None, ax=None):
    """Draw a grid on a matplotlib axis (for notebooks); returns the axis."""
    import matplotlib.pyplot as plt

    grid = image_grid(images, nrow=nrow, value_range=value_range)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if grid.shape[0] == 1 else None)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (window 1 = unchanged)."""
    if window <= 1:
        return list(values)
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(
    history: Mapping[str, Sequence[float]],
    path: str | Path | None = None,
    steps: Sequence[int] | None = None,
    title: str = "Training losses",
    smooth_window: int = 1,
    ax=None,
):
    """Plot one curve per key of ``history`` (e.g. ``{"loss_d": [...], "loss_g": [...]}``).

    Writes a PNG when ``path`` is given; returns the matplotlib figure.
    """
    # No matplotlib.use() here: in a notebook it would switch the kernel to Agg for good, and every later
    # plt.show() would draw nothing. Without a display, matplotlib picks Agg by itself.
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("history is empty: expected a mapping like {'loss_d': [...], 'loss_g': [...]}")
    own_figure = ax is None
    if own_figure:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for name, values in history.items():
        values = [float(v) for v in values]
        xs = list(steps) if steps is not None else list(range(len(values)))
        if len(xs) != len(values):
            raise ValueError(f"curve {name!r} has {len(values)} values but {len(xs)} steps")
        ax.plot(xs, smooth(values, smooth_window), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if own_figure:  # never re-layout a caller's figure (it may use constrained layout)
        fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig

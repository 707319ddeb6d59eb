from __future__ import annotations

import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from gan_utils.data.transforms import to_tanh_range, to_unit_range, uint8_to_unit
from gan_utils.plotting import image_grid, plot_losses, save_grid, smooth


def test_range_conversions_are_inverse():
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(to_unit_range(to_tanh_range(x)), x)
    assert to_tanh_range(torch.zeros(1)).item() == -1.0 and to_tanh_range(torch.ones(1)).item() == 1.0
    assert torch.equal(uint8_to_unit(torch.tensor([0, 255], dtype=torch.uint8)), torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="uint8"):
        uint8_to_unit(torch.zeros(2))


def test_grid_layout_and_values():
    images = torch.full((36, 1, 4, 4), -1.0)
    images[7] = 1.0  # second row, second column in a 6x6 grid
    grid = image_grid(images, nrow=6, padding=2)
    assert grid.shape == (3, 6 * 6 + 2, 6 * 6 + 2)  # make_grid pads and repeats gray to RGB
    cell = grid[:, 2 + 6 : 2 + 6 + 4, 2 + 6 : 2 + 6 + 4]
    assert torch.all(cell == 1.0)
    assert torch.all(grid[:, 2:6, 2:6] == 0.0)


def test_save_grid_writes_png(tmp_path):
    path = save_grid(torch.rand(36, 3, 8, 8) * 2 - 1, tmp_path / "g" / "grid.png", nrow=6)
    img = mpimg.imread(path)
    assert img.shape[:2] == (6 * 10 + 2, 6 * 10 + 2)


def test_grid_rejects_bad_input():
    with pytest.raises(ValueError, match=r"4-D image batch"):
        image_grid(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="value_range"):
        image_grid(torch.rand(1, 3, 8, 8), value_range="0-255")


def test_plot_losses_png_and_smoothing(tmp_path):
    fig = plot_losses({"loss_d": [1.0, 0.5, 0.2], "loss_g": [2.0, 1.0, 0.5]}, tmp_path / "l.png")
    assert (tmp_path / "l.png").stat().st_size > 1000
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["loss_d", "loss_g"]
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    with pytest.raises(ValueError, match="empty"):
        plot_losses({})


def test_saving_a_loss_plot_leaves_the_backend_alone(tmp_path):
    # a notebook's inline backend must survive plot_losses(..., path) (GANTrainer calls it with out_dir set)
    code = (
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "import matplotlib.pyplot as plt\n"
        "from gan_utils.plotting import plot_losses\n"
        f"plot_losses({{'loss_d': [1.0, 0.5]}}, {str(tmp_path / 'losses.png')!r})\n"
        "print(matplotlib.get_backend())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "svg", f"plot_losses switched the backend to {run.stdout.strip()!r}"
    assert (tmp_path / "losses.png").stat().st_size > 0

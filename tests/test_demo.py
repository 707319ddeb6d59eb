"""`make demo`'s Python entry point on a tiny budget."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from gan_utils.__main__ import main


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_writes_grid_and_loss_curve(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "20", "--seconds", "60", "--no-progress", "--device", "cpu"]) == 0
    samples, losses = out / "samples.png", out / "losses.png"
    assert samples.exists() and losses.exists()
    grid = mpimg.imread(samples)
    # 6x6 grid of 28x28 digits with 2-pixel padding
    assert grid.shape[:2] == (6 * 30 + 2, 6 * 30 + 2)
    assert grid.std() > 0.01, "the sample grid is blank"
    assert mpimg.imread(losses).shape[0] > 100
    assert "demo finished" in capsys.readouterr().out

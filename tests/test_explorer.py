"""The latent explorer: codes, images, the static figure, the live widget and its debounce."""

from __future__ import annotations

import time
import warnings

import matplotlib
import pytest
import torch
from torch import nn

from gan_utils.explorer import LatentExplorer, explore_latent, is_live_frontend

matplotlib.use("Agg")


class Linear(nn.Module):
    """z -> a 1x4x4 image in [-1, 1]: tanh of a fixed linear map (label added as an offset when conditional)."""

    def __init__(self, z_dim: int = 6, num_classes: int | None = None) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.fc = nn.Linear(z_dim, 16)
        self.bn = nn.BatchNorm1d(16)  # eval mode matters: one code in train mode would fail
        self.seen_training: list[bool] = []

    def forward(self, z, labels=None):
        self.seen_training.append(self.training)
        assert not torch.is_grad_enabled()
        h = self.bn(self.fc(z))
        if labels is not None:
            h = h + labels.float()[:, None]
        return torch.tanh(h).view(-1, 1, 4, 4)


def test_code_is_the_interpolation_plus_the_offsets():
    ex = LatentExplorer(Linear(), dims=[1, 4], seed=3)
    ex.alpha, ex.offsets = 0.25, {1: 2.0, 4: -1.0}
    expected = 0.75 * ex.z_a + 0.25 * ex.z_b
    expected[1] += 2.0
    expected[4] -= 1.0
    torch.testing.assert_close(ex.code(), expected)
    torch.testing.assert_close(ex.code(1.0, {}), ex.z_b)


def test_images_come_from_the_model_in_eval_mode_and_the_mode_is_restored():
    G = Linear().train()
    ex = LatentExplorer(G, seed=0)
    image = ex.render()
    assert image.shape == (1, 4, 4) and 0 <= float(image.min()) and float(image.max()) <= 1
    with torch.no_grad():
        G.eval()
        want = (G(ex.code().unsqueeze(0))[0] + 1) / 2
        G.train()
    torch.testing.assert_close(image, want)
    assert G.seen_training[0] is False and G.training


def test_traversal_rows_vary_one_dimension_and_the_last_row_interpolates():
    ex = LatentExplorer(Linear(), dims=[0, 2], seed=1)
    steps = 5
    grid = ex.traversal(steps)
    assert grid.shape == (3 * steps, 1, 4, 4)
    centre = ex.decode(ex.z_a.unsqueeze(0))[0]
    torch.testing.assert_close(grid[steps // 2], centre)  # dim 0 at offset 0 is z_a
    torch.testing.assert_close(grid[2 * steps], centre)  # alpha = 0
    torch.testing.assert_close(grid[-1], ex.decode(ex.z_b.unsqueeze(0))[0])  # alpha = 1
    assert not torch.allclose(grid[0], grid[steps - 1])  # the traversal changes the image


def test_conditional_models_get_the_chosen_label():
    ex = LatentExplorer(Linear(num_classes=10), seed=0)
    assert ex.num_classes == 10  # read from the model
    ex.label = 0
    zero = ex.render()
    ex.label = 7
    assert not torch.allclose(zero, ex.render())


def test_decoder_methods_and_unit_range_outputs():
    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def decode(self, z):
            return torch.sigmoid(self.lin(z)).view(-1, 1, 2, 2)

    vae = VAE()
    ex = LatentExplorer(vae.decode, z_dim=3, value_range="unit")
    with torch.no_grad():
        torch.testing.assert_close(ex.render(), vae.decode(ex.code().unsqueeze(0))[0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"z_dim": None}, "give z_dim"),
    ({"z_dim": 4, "dims": [4]}, r"dims must be latent coordinates in \[0, 4\)"),
    ({"z_dim": 4, "value_range": "0-255"}, "value_range"),
    ({"z_dim": 4, "num_classes": 0}, "num_classes"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatentExplorer(lambda z: z, **kwargs)


def test_a_model_that_does_not_return_images_is_explained():
    ex = LatentExplorer(lambda z: z, z_dim=4)
    with pytest.raises(ValueError, match=r"images \(N, C, H, W\), got \(1, 4\)"):
        ex.render()


def test_outside_a_live_frontend_it_draws_a_static_figure_and_writes_nothing(monkeypatch, capsys):
    monkeypatch.delenv("GAN_UTILS_WIDGETS", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not is_live_frontend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex = explore_latent(Linear(), dims=[0, 1, 2])
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""
    assert ex.figure is not None and len(ex.figure.axes) == 1
    image = ex.figure.axes[0].images[0].get_array()
    assert image.shape[0] > image.shape[1] / 7 * 3  # 4 rows of 7 tiles
    monkeypatch.setenv("GAN_UTILS_WIDGETS", "1")
    assert is_live_frontend()


def test_the_widget_redraws_when_a_slider_moves():
    ex = LatentExplorer(Linear(num_classes=3), dims=[0, 1], debounce=0)
    ex.widget()
    w = ex._widgets
    before = w["image"].value
    w["sliders"][0].value = 2.5
    assert ex.offsets[0] == 2.5 and w["image"].value != before
    after_slider = w["image"].value
    w["alpha"].value = 1.0
    assert ex.alpha == 1.0 and w["image"].value != after_slider
    w["image"].value, renders = b"", ex.renders
    w["button"].click()
    assert ex.renders == renders + 1 and bytes(w["image"].value).startswith(b"\x89PNG")


def test_slider_moves_are_debounced():
    ex = LatentExplorer(Linear(), dims=[0], debounce=0.2)
    ex.widget()
    start = ex.renders
    for v in (0.5, 1.0, 1.5, 2.0):
        ex._widgets["sliders"][0].value = v
    assert ex.renders == start  # nothing yet: still moving
    deadline = time.monotonic() + 5
    while ex.renders == start and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert ex.renders == start + 1 and ex.offsets[0] == 2.0

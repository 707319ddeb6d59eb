"""Masks and super-resolution inputs of gan_utils.data.degradations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan_utils.data.degradations import (
    apply_mask,
    center_box_mask,
    downsample,
    half_mask,
    random_pixel_mask,
    sr_degrade,
)

pytestmark = pytest.mark.timeout(60)


def assert_binary_mask(mask: torch.Tensor, h: int, w: int) -> None:
    assert mask.shape == (1, h, w) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------- masks


def test_center_box_mask_square():
    mask = center_box_mask(64)  # box_fraction 0.5
    assert_binary_mask(mask, 64, 64)
    expected = torch.ones(1, 64, 64)
    expected[:, 16:48, 16:48] = 0
    assert torch.equal(mask, expected)


def test_center_box_mask_rectangular_and_extremes():
    mask = center_box_mask((64, 48), box_fraction=0.25)  # 16 x 12 hole
    assert_binary_mask(mask, 64, 48)
    assert int((mask == 0).sum()) == 16 * 12
    assert torch.all(mask[:, 24:40, 18:30] == 0) and mask[:, :24].all() and mask[:, 40:].all()
    assert center_box_mask(8, 0.0).all()
    assert not center_box_mask(8, 1.0).any()
    odd = center_box_mask(7, 0.5)  # round(3.5) = 4 rows/cols, offset (7 - 4) // 2 = 1
    assert torch.equal((odd[0] == 0).nonzero()[:, 0].unique(), torch.arange(1, 5))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("size", [64, (28, 28), (30, 17)])
def test_random_pixel_mask_exact_count(fraction, size):
    h, w = (size, size) if isinstance(size, int) else size
    mask = random_pixel_mask(size, fraction, seed=3)
    assert_binary_mask(mask, h, w)
    assert int((mask == 0).sum()) == round(fraction * h * w)


def test_random_pixel_mask_seeded():
    a = random_pixel_mask(64, 0.5, seed=0)
    b = random_pixel_mask(64, 0.5, seed=0)
    c = random_pixel_mask(64, 0.5, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.get_rng_state()
    random_pixel_mask(64, 0.3, seed=5)
    assert torch.equal(state, torch.get_rng_state())  # the global stream is left alone
    # spread over the whole image, not a block: every quadrant loses about half
    for q in (a[:, :32, :32], a[:, :32, 32:], a[:, 32:, :32], a[:, 32:, 32:]):
        assert 0.4 < float(q.mean()) < 0.6


@pytest.mark.parametrize(
    "side, missing",
    [("left", (slice(None), slice(0, 3))), ("right", (slice(None), slice(4, 7))),
     ("top", (slice(0, 2), slice(None))), ("bottom", (slice(3, 5), slice(None)))],
)
def test_half_mask_sides(side, missing):
    mask = half_mask((5, 7), side)  # odd sizes: W // 2 = 3 columns, H // 2 = 2 rows
    assert_binary_mask(mask, 5, 7)
    expected = torch.ones(5, 7)
    expected[missing] = 0
    assert torch.equal(mask[0], expected)


def test_half_masks_even_size_complement():
    assert torch.equal(half_mask(8, "left") + half_mask(8, "right"), torch.ones(1, 8, 8))
    assert torch.equal(half_mask(8, "top") + half_mask(8, "bottom"), torch.ones(1, 8, 8))
    assert float(half_mask(64, "left").mean()) == 0.5


def test_apply_mask_matches_where():
    images = torch.randn(4, 3, 16, 16)
    mask = random_pixel_mask(16, 0.4, seed=2)
    before = images.clone()
    out = apply_mask(images, mask)
    assert torch.equal(out, torch.where(mask.bool(), images, torch.zeros(())))
    assert torch.equal(images, before)  # not in place
    filled = apply_mask(images, mask, fill=-1.0)
    assert torch.equal(filled, torch.where(mask.bool(), images, torch.tensor(-1.0)))
    single = apply_mask(images[0], mask[0])  # (C, H, W) image, (H, W) mask
    assert torch.equal(single, out[0])


def test_apply_mask_per_sample_masks():
    images = torch.rand(2, 1, 8, 8)
    masks = torch.stack([half_mask(8, "left"), half_mask(8, "top")])  # (2, 1, 8, 8)
    out = apply_mask(images, masks)
    assert torch.equal(out[0], images[0] * half_mask(8, "left"))
    assert torch.equal(out[1], images[1] * half_mask(8, "top"))


# ---------------------------------------------------------------- resizing / super-resolution


def pil_resize(channel: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(channel.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))


def test_downsample_matches_pil_antialias():
    x = torch.rand(2, 3, 64, 48)
    out = downsample(x, (16, 12))
    assert out.shape == (2, 3, 16, 12)
    ref = np.stack([[pil_resize(x[n, c].numpy(), 16, 12) for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    assert downsample(x[0], 32).shape == (3, 32, 32)


def test_sr_degrade_shape_and_reference():
    x = torch.rand(5, 3, 64, 64) * 2 - 1
    out = sr_degrade(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    low = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    ref = F.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(sr_degrade(x[0]), ref[0])
    bicubic = sr_degrade(x, low_size=16, mode="bicubic")
    torch.testing.assert_close(bicubic, F.interpolate(low, size=(64, 64), mode="bicubic", align_corners=False))
    assert sr_degrade(x, low_size=(32, 16)).shape == x.shape


def high_frequency_energy(x: torch.Tensor, cutoff: int = 8) -> float:
    """Energy at spatial frequencies above ``cutoff`` cycles per image (of 64)."""
    spec = torch.fft.fft2(x).abs() ** 2
    f = torch.fft.fftfreq(x.shape[-1]) * x.shape[-1]
    high = (f.abs()[:, None] > cutoff) | (f.abs()[None, :] > cutoff)
    return float(spec[..., high].sum())


def test_sr_degrade_removes_high_frequencies_keeps_low():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 64, 64, generator=g)
    out = sr_degrade(noise)
    assert high_frequency_energy(out) < 0.02 * high_frequency_energy(noise)
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1.0
    assert float(sr_degrade(checker[None, None]).abs().max()) < 0.01  # Nyquist pattern averaged away
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.cos(2 * torch.pi * xx / 64) * torch.cos(2 * torch.pi * yy / 64)
    kept = sr_degrade(smooth[None, None])[0, 0]
    # a slow wave survives (slightly attenuated by the two bilinear filters); noise does not
    assert float(torch.corrcoef(torch.stack([kept.flatten(), smooth.flatten()]))[0, 1]) > 0.999
    assert float((kept - smooth).norm() / smooth.norm()) < 0.1
    assert float(torch.corrcoef(torch.stack([out.flatten(), noise.flatten()]))[0, 1]) < 0.5
    const = torch.full((1, 3, 64, 64), 0.3)
    torch.testing.assert_close(sr_degrade(const), const)

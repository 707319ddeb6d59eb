"""Every bad input gets a message that says what was expected and what came; make_loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_utils.data import (
    DatasetNotFoundError,
    TensorImageDataset,
    apply_mask,
    center_box_mask,
    half_mask,
    load_dataset,
    make_loader,
    random_pixel_mask,
    sr_degrade,
)
from gan_utils.data.degradations import downsample

pytestmark = pytest.mark.timeout(60)


# ---------------------------------------------------------------- load_dataset


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10")
    message = str(info.value)
    assert "'cifar10'" in message
    for known in ("'mnist'", "'stl10'", "'celeba64'", "'npy:<path>'"):
        assert known in message


@pytest.mark.parametrize(
    "name, split, valid",
    [("mnist", "valid", ["'train'", "'test'"]),
     ("stl10", "val", ["'train'", "'test'", "'unlabeled'", "'train+unlabeled'"]),
     ("celeba64", "unlabeled", ["'train'", "'valid'", "'test'", "'all'"])],
)
def test_bad_split_lists_valid_ones(tmp_path, name, split, valid):
    with pytest.raises(ValueError, match=f"unknown split '{split}' for {name}") as info:
        load_dataset(name, split=split, root=tmp_path)
    for v in valid:
        assert v in str(info.value)


def test_bad_split_for_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"expected one of 'train', 'test', 'all'"):
        load_dataset(f"npy:{tmp_path / 'a.npy'}", split="unlabeled")


def test_bad_value_range_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown value_range '0-255'.*'tanh', 'unit'"):
        load_dataset("mnist", root=tmp_path, value_range="0-255")


@pytest.mark.parametrize("image_size, error", [(0, ValueError), ((32, 32, 3), ValueError),
                                               (32.0, TypeError), ("64", TypeError)])
def test_bad_image_size(tmp_path, image_size, error):
    with pytest.raises(error, match="image_size"):
        load_dataset("mnist", root=tmp_path, image_size=image_size)


@pytest.mark.parametrize(
    "array, got",
    [(np.zeros((4, 8), np.uint8), r"shape \(4, 8\)"),
     (np.zeros((4, 8, 8, 3), np.float32), "dtype float32"),
     (np.zeros((4, 8, 8, 4), np.uint8), r"shape \(4, 8, 8, 4\)"),
     (np.zeros((4, 8, 8, 3, 1), np.uint8), r"shape \(4, 8, 8, 3, 1\)")],
)
def test_npy_wrong_rank_or_dtype(tmp_path, array, got):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(ValueError, match=got) as info:
        load_dataset(f"npy:{tmp_path / 'bad.npy'}")
    assert "uint8" in str(info.value) and "(N, H, W, C)" in str(info.value)


def test_npy_channels_first_gets_a_hint(tmp_path):
    np.save(tmp_path / "chw.npy", np.zeros((4, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"channels-first.*transpose\(0, 2, 3, 1\)"):
        load_dataset(f"npy:{tmp_path / 'chw.npy'}")


def test_npy_not_an_array_file(tmp_path):
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable .npy"):
        load_dataset(f"npy:{tmp_path / 'text.npy'}")
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        load_dataset(f"npy:{tmp_path / 'empty.npy'}")


def test_npy_missing_file_lists_paths_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("npy:CelebA64.npy", root=tmp_path / "data")
    assert "CelebA64.npy" in str(info.value) and str(tmp_path / "data" / "CelebA64.npy") in str(info.value)
    with pytest.raises(ValueError, match="empty path"):
        load_dataset("npy:")


def test_tensor_dataset_validates_storage():
    with pytest.raises(ValueError, match=r"uint8 tensor of shape \(N, C, H, W\).*float32"):
        TensorImageDataset(torch.zeros(2, 1, 4, 4), name="x")
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        TensorImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3), name="x")


# ---------------------------------------------------------------- degradations


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_fractions(bad):
    with pytest.raises(ValueError, match=r"box_fraction must be in \[0, 1\]"):
        center_box_mask(16, bad)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\]"):
        random_pixel_mask(16, bad, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        random_pixel_mask(16, 0.5, seed=None)


def test_bad_side_and_sizes():
    with pytest.raises(ValueError, match=r"unknown side 'middle'.*'left', 'right', 'top', 'bottom'"):
        half_mask(16, "middle")
    with pytest.raises(ValueError, match=r"\(H, W\) pair.*3 values"):
        center_box_mask((16, 16, 3))
    with pytest.raises(ValueError, match="positive"):
        half_mask(0)


def test_bad_shapes_for_apply_mask_and_sr():
    images = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"mask of shape \(1, 8, 8\).*expected \(1, 16, 16\)"):
        apply_mask(images, center_box_mask(8))
    with pytest.raises(ValueError, match=r"mask of shape \(3, 16, 16\)"):
        apply_mask(images, torch.ones(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(N, C, H, W\), got shape \(16, 16\)"):
        apply_mask(images[0, 0], center_box_mask(16))
    with pytest.raises(TypeError, match="floating point.*uint8"):
        sr_degrade(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"unknown mode 'area'.*'bilinear', 'bicubic', 'nearest'"):
        sr_degrade(images, mode="area")
    with pytest.raises(ValueError, match=r"low_size \(32, 32\) must not exceed the image size \(16, 16\)"):
        sr_degrade(images, low_size=32)
    with pytest.raises(ValueError, match="positive"):
        downsample(images, (0, 4))


# ---------------------------------------------------------------- make_loader


def small_dataset(n: int = 10) -> TensorImageDataset:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return TensorImageDataset(images, torch.arange(n), name="tiny", value_range="unit")


def test_make_loader_seeded_order_and_shapes():
    ds = small_dataset()
    order = lambda seed: [y.tolist() for _, y in make_loader(ds, batch_size=3, seed=seed)]  # noqa: E731
    assert order(0) == order(0) and order(0) != order(1)
    batches = order(0)
    assert len(batches) == 3 and all(len(b) == 3 for b in batches)  # drop_last
    x, y = next(iter(make_loader(ds, batch_size=4, shuffle=False)))
    assert x.shape == (4, 1, 2, 2) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(x[:, 0, 0, 0], torch.arange(4) / 255.0)
    kept = make_loader(ds, batch_size=4, shuffle=False, drop_last=False)
    assert [len(b[1]) for b in kept] == [4, 4, 2]
    assert not kept.pin_memory or torch.cuda.is_available()


def test_make_loader_errors():
    ds = small_dataset()
    with pytest.raises(ValueError, match=r"batch_size 16 is larger than the dataset \(10 items\)"):
        make_loader(ds, batch_size=16)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        make_loader(ds, batch_size=0)
    with pytest.raises(ValueError, match="num_workers must be an int >= 0"):
        make_loader(ds, batch_size=2, num_workers=-1)

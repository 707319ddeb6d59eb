"""Every real dataset path, through torchvision's own readers, on small files in the real formats.

The files are written here byte for byte as the real datasets ship them:
MNIST IDX (``MNIST/raw/*-ubyte``), STL-10 binaries (``stl10_binary/*.bin``,
column-major 3x96x96), a CelebA folder (``celeba/img_align_celeba/`` and the five
``.txt`` lists) and a ``.npy`` array. torchvision checks STL-10 and CelebA files
against the MD5 sums of the official release; the tests replace those expected
sums with the sums of the files written here (``monkeypatch`` on the class
attribute), so torchvision's real integrity check still runs on every file.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gan_utils.data import DatasetNotFoundError, OfflineFallbackWarning, load_dataset, make_loader

pytestmark = pytest.mark.timeout(60)


def tanh_ref(hwc_uint8: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [-1, 1], computed independently of the library."""
    return torch.from_numpy(hwc_uint8.astype(np.float32) / 255.0 * 2.0 - 1.0).permute(2, 0, 1)


def pil_resize_ref(hwc_uint8: np.ndarray, size: int) -> torch.Tensor:
    """Antialiased bilinear resize by PIL (float 'F' mode, per channel), then [0, 1] -> [-1, 1]."""
    chans = [
        np.asarray(Image.fromarray(hwc_uint8[..., c].astype(np.float32) / 255.0, mode="F")
                   .resize((size, size), Image.BILINEAR))
        for c in range(hwc_uint8.shape[2])
    ]
    return torch.from_numpy(np.clip(np.stack(chans), 0.0, 1.0) * 2.0 - 1.0)


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- MNIST (IDX files)


def write_idx(path, array: np.ndarray) -> None:
    """IDX: 0x00 0x00 <type 0x08 = ubyte> <ndim>, then big-endian int32 dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture()
def mnist_root(tmp_path):
    rng = np.random.default_rng(1)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    data = {}
    for prefix, n in (("train", 7), ("t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        data[prefix] = (images, labels)
    return tmp_path, data


def test_mnist_idx_round_trip(mnist_root):
    root, data = mnist_root
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfflineFallbackWarning)
        train = load_dataset("mnist", root=root)
        test = load_dataset("mnist", split="test", root=root, value_range="unit")
    assert train.name == "mnist" and not train.offline
    assert (len(train), len(test)) == (7, 3)
    images, labels = data["train"]
    for i in range(7):
        x, y = train[i]
        assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
        torch.testing.assert_close(x, tanh_ref(images[i][..., None]), rtol=0, atol=1e-6)
        assert y == int(labels[i]) and isinstance(y, int)
    x, y = test[2]
    torch.testing.assert_close(x, torch.from_numpy(data["t10k"][0][2] / 255.0).float()[None], rtol=0, atol=1e-6)
    assert y == int(data["t10k"][1][2])
    assert float(train.batch()[0].min()) >= -1.0 and float(train.batch()[0].max()) <= 1.0


def test_mnist_resize_matches_pil(mnist_root):
    root, data = mnist_root
    ds = load_dataset("mnist", root=root, image_size=32)
    assert ds.image_shape == (1, 32, 32)
    x, _ = ds[4]
    assert x.shape == (1, 32, 32)
    torch.testing.assert_close(x, pil_resize_ref(data["train"][0][4][..., None], 32), rtol=0, atol=1e-5)


def test_default_root_from_environment(mnist_root, monkeypatch):
    root, _ = mnist_root
    monkeypatch.setenv("GAN_UTILS_DATA", str(root))
    from gan_utils.data import default_root

    assert default_root() == root
    assert load_dataset("mnist").name == "mnist"
    monkeypatch.delenv("GAN_UTILS_DATA")
    assert str(default_root()).endswith(".cache/gan_utils/data")


def test_mnist_download_failure_falls_back(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise URLError("no network in this test")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    with pytest.warns(OfflineFallbackWarning, match="mnist-5k-offline"):
        ds = load_dataset("mnist", root=tmp_path, download=True)
    assert ds.name == "mnist-5k-offline"
    with pytest.raises(DatasetNotFoundError, match="Error downloading"):
        load_dataset("mnist", root=tmp_path, download=True, offline_fallback=False)


# ---------------------------------------------------------------- STL-10 (binary files)


def write_stl_images(path, images_hwc: np.ndarray) -> None:
    """STL-10 stores each image as 3 planes of 96x96 in column-major order: (N, C, W, H) bytes."""
    path.write_bytes(np.ascontiguousarray(images_hwc.transpose(0, 3, 2, 1)).tobytes())


@pytest.fixture()
def stl_root(tmp_path, monkeypatch):
    from torchvision.datasets import STL10

    rng = np.random.default_rng(2)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    data = {}
    for split, n in (("train", 4), ("test", 3), ("unlabeled", 2)):
        images = rng.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        images[:, :10, :, 0] = 255  # a red band at the top: orientation must survive
        write_stl_images(folder / f"{split}_X.bin", images)
        labels = None
        if split != "unlabeled":
            labels = rng.integers(1, 11, size=n, dtype=np.uint8)  # 1-based on disk
            (folder / f"{split}_y.bin").write_bytes(labels.tobytes())
        data[split] = (images, labels)
    # The real check_integrity runs; it compares against the sums of these files.
    monkeypatch.setattr(STL10, "train_list", [[f, md5(folder / f)] for f, _ in STL10.train_list])
    monkeypatch.setattr(STL10, "test_list", [[f, md5(folder / f)] for f, _ in STL10.test_list])
    return tmp_path, data


def test_stl10_binary_round_trip_at_native_size(stl_root):
    root, data = stl_root
    ds = load_dataset("stl10", root=root, image_size=96)
    assert ds.name == "stl10" and len(ds) == 4 and ds.image_shape == (3, 96, 96)
    images, labels = data["train"]
    for i in range(4):
        x, y = ds[i]
        torch.testing.assert_close(x, tanh_ref(images[i]), rtol=0, atol=1e-6)
        assert y == int(labels[i]) - 1
    assert torch.all(ds[0][0][0, :10] == 1.0)


def test_stl10_default_is_64_and_matches_pil(stl_root):
    root, data = stl_root
    ds = load_dataset("stl10", split="test", root=root)
    x, y = ds[1]
    assert x.shape == (3, 64, 64) and y == int(data["test"][1][1]) - 1
    torch.testing.assert_close(x, pil_resize_ref(data["test"][0][1], 64), rtol=0, atol=1e-5)


def test_stl10_unlabeled_has_label_minus_one(stl_root):
    root, data = stl_root
    ds = load_dataset("stl10", split="unlabeled", root=root, image_size=96, value_range="unit")
    assert len(ds) == 2 and [ds[i][1] for i in range(2)] == [-1, -1]
    torch.testing.assert_close(ds[1][0], (tanh_ref(data["unlabeled"][0][1]) + 1) / 2, rtol=0, atol=1e-6)
    both = load_dataset("stl10", split="train+unlabeled", root=root)
    assert len(both) == 6 and both[5][1] == -1


def test_stl10_wrong_checksum_is_not_silently_accepted(stl_root):
    root, _ = stl_root
    (root / "stl10_binary" / "test_y.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DatasetNotFoundError, match="corrupted"):
        load_dataset("stl10", root=root, offline_fallback=False)


# ---------------------------------------------------------------- CelebA (image folder + lists)


ATTRS = [f"Attr_{i}" for i in range(40)]
LANDMARKS = ["lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
             "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y"]


@pytest.fixture()
def celeba_root(tmp_path, monkeypatch):
    from torchvision.datasets import CelebA

    rng = np.random.default_rng(3)
    base = tmp_path / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    # Portrait images (H > W) as the aligned CelebA photos are; PNG keeps pixels exact.
    # At least two images per split: torchvision's CelebA mis-indexes a one-image split.
    names = [f"{i:06d}.png" for i in range(1, 8)]
    partition = [0, 0, 1, 2, 0, 1, 2]
    images = {}
    for name in names:
        img = rng.integers(0, 256, size=(30, 24, 3), dtype=np.uint8)
        Image.fromarray(img).save(base / "img_align_celeba" / name)
        images[name] = img
    n = len(names)
    (base / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(names, partition, strict=True)))
    (base / "identity_CelebA.txt").write_text("".join(f"{f} {i + 10}\n" for i, f in enumerate(names)))
    (base / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{f}  95  71 226 313\n" for f in names))
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n" + " ".join(LANDMARKS) + "\n" + "".join(f"{f} " + " ".join(["50"] * 10) + "\n" for f in names))
    (base / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(ATTRS) + "\n" + "".join(f"{f} " + " ".join(["-1", "1"] * 20) + "\n" for f in names))
    files = [(fid, md5(base / fname) if fname.endswith(".txt") else h, fname) for fid, h, fname in CelebA.file_list]
    monkeypatch.setattr(CelebA, "file_list", files)
    return tmp_path, names, partition, images


def test_celeba_splits_follow_the_partition_file(celeba_root):
    root, names, partition, _ = celeba_root
    sizes = {s: len(load_dataset("celeba64", split=s, root=root)) for s in ("train", "valid", "test", "all")}
    assert sizes == {"train": 3, "valid": 2, "test": 2, "all": 7}


def test_celeba_center_crop_exact_at_crop_size(celeba_root):
    root, names, _, images = celeba_root
    ds = load_dataset("celeba64", split="test", root=root, image_size=24)
    x, y = ds[1]
    assert ds.name == "celeba64" and y == -1 and x.shape == (3, 24, 24)
    # 30x24 -> centered 24x24 square starts at row (30 - 24) // 2 = 3
    torch.testing.assert_close(x, tanh_ref(images[names[6]][3:27]), rtol=0, atol=1e-6)
    torch.testing.assert_close(ds[0][0], tanh_ref(images[names[3]][3:27]), rtol=0, atol=1e-6)


def test_celeba_default_64_matches_pil(celeba_root):
    root, names, _, images = celeba_root
    ds = load_dataset("celeba64", split="valid", root=root, value_range="unit")
    x, _ = ds[0]
    assert x.shape == (3, 64, 64) and ds.image_shape == (3, 64, 64)
    ref = (pil_resize_ref(images[names[2]][3:27], 64) + 1) / 2
    torch.testing.assert_close(x, ref, rtol=0, atol=1e-5)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_celeba_missing_list_file_means_not_found(celeba_root):
    root, *_ = celeba_root
    (root / "celeba" / "list_attr_celeba.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=str(root / "celeba")):
        load_dataset("celeba64", root=root, offline_fallback=False)


# ---------------------------------------------------------------- .npy (the HUJI CelebA64.npy layout)


@pytest.fixture()
def npy_file(tmp_path):
    arr = np.random.default_rng(4).integers(0, 256, size=(20, 8, 6, 3), dtype=np.uint8)
    path = tmp_path / "faces.npy"
    np.save(path, arr)
    return path, arr


def test_npy_split_last_tenth_is_test(npy_file):
    path, arr = npy_file
    train = load_dataset(f"npy:{path}")
    test = load_dataset(f"npy:{path}", split="test")
    full = load_dataset(f"npy:{path}", split="all", value_range="unit")
    assert (len(train), len(test), len(full)) == (18, 2, 20)
    assert train.name == f"npy:{path.resolve()}" and train.image_shape == (3, 8, 6)
    assert isinstance(train.array, np.memmap)
    torch.testing.assert_close(train[17][0], tanh_ref(arr[17]), rtol=0, atol=1e-6)
    torch.testing.assert_close(test[0][0], tanh_ref(arr[18]), rtol=0, atol=1e-6)
    torch.testing.assert_close(test[-1][0], tanh_ref(arr[19]), rtol=0, atol=1e-6)
    torch.testing.assert_close(full[5][0], (tanh_ref(arr[5]) + 1) / 2, rtol=0, atol=1e-6)
    assert test[0][1] == -1
    images, labels = train.batch([0, 3])
    torch.testing.assert_close(images[1], tanh_ref(arr[3]), rtol=0, atol=1e-6)
    assert labels.tolist() == [-1, -1]


def test_npy_grayscale_and_resize(tmp_path):
    arr = np.random.default_rng(5).integers(0, 256, size=(10, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "g.npy", arr)
    np.save(tmp_path / "g1.npy", arr[..., None])
    a = load_dataset(f"npy:{tmp_path / 'g.npy'}", split="all")
    b = load_dataset("npy:g1.npy", split="all", root=tmp_path)  # relative path found under root
    assert a[3][0].shape == (1, 16, 16)
    torch.testing.assert_close(a[3][0], b[3][0])
    small = load_dataset(f"npy:{tmp_path / 'g.npy'}", split="all", image_size=8)
    torch.testing.assert_close(small[3][0], pil_resize_ref(arr[3][..., None], 8), rtol=0, atol=1e-5)


def test_npy_pickles_without_data_and_feeds_workers(npy_file):
    path, arr = npy_file
    ds = load_dataset(f"npy:{path}", split="all")
    blob = pickle.dumps(ds)
    assert len(blob) < arr.nbytes  # the map is reopened, not copied
    torch.testing.assert_close(pickle.loads(blob)[7][0], ds[7][0])
    loader = make_loader(ds, batch_size=5, shuffle=False, num_workers=1)
    batches = list(loader)
    assert len(batches) == 4
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), ds.batch()[0])

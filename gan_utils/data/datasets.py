"""``load_dataset``: one entry point for every image set the course uses.

>>> from gan_utils.data import load_dataset
>>> train = load_dataset("mnist")                  # (1, 28, 28) in [-1, 1], labels 0..9
>>> test = load_dataset("stl10", split="test")     # (3, 64, 64), labels 0..9
>>> faces = load_dataset("celeba64", value_range="unit")
>>> arr = load_dataset("npy:/data/CelebA64.npy")   # (N, H, W, C) uint8 array file

Where the files live: ``root`` or :func:`default_root` (``$GAN_UTILS_DATA``, else
``~/.cache/gan_utils/data``), laid out as torchvision expects:
``<root>/MNIST/raw/*-ubyte``, ``<root>/stl10_binary/*.bin``,
``<root>/celeba/img_align_celeba/`` plus CelebA's five ``.txt`` lists.

When those files are absent (and ``download=True`` is not given, or the download
fails) and ``offline_fallback=True``, a real offline stand-in is used and one
:class:`OfflineFallbackWarning` names it (see :mod:`gan_utils.data.offline`):
``mnist-5k-offline``, ``stl10-skimage-patches-offline``,
``celeba64-skimage-patches-offline``. With ``offline_fallback=False`` a
:class:`DatasetNotFoundError` gives the exact path that was tried.

Pixels: uint8 -> [0, 1] -> (celeba64 only: center square crop) -> bilinear
antialiased resize to ``image_size`` -> ``value_range`` (``"tanh"`` [-1, 1] or
``"unit"`` [0, 1]); see :func:`gan_utils.data.base.finish_image`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gan_utils.data import offline
from gan_utils.data.base import (
    DatasetNotFoundError,
    MappedImageDataset,
    NpyImageDataset,
    OfflineFallbackWarning,
    TensorImageDataset,
    as_hw,
    check_value_range,
)

KNOWN_DATASETS = ("mnist", "stl10", "celeba64", "npy:<path>")
SPLITS = {
    "mnist": ("train", "test"),
    "stl10": ("train", "test", "unlabeled", "train+unlabeled"),
    "celeba64": ("train", "valid", "test", "all"),
    "npy": ("train", "test", "all"),
}
DEFAULT_IMAGE_SIZE = {"mnist": None, "stl10": 64, "celeba64": 64, "npy": None}
NPY_TEST_FRACTION = 0.1

# Exceptions torchvision raises for "files absent" (RuntimeError) and for a failed
# download (URLError is an OSError; CelebA's Google-Drive download may need gdown).
_UNAVAILABLE = (RuntimeError, OSError, ImportError)


def default_root() -> Path:
    """Data root: ``$GAN_UTILS_DATA`` when set (and non-empty), else ``~/.cache/gan_utils/data``."""
    env = os.environ.get("GAN_UTILS_DATA", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan_utils" / "data"


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    image_size: int | Sequence[int] | None = None,
    value_range: str = "tanh",
    download: bool = False,
    offline_fallback: bool = True,
) -> Dataset:
    """Load an image dataset by name.

    Args:
        name: ``"mnist"`` (1x28x28, labels 0..9), ``"stl10"`` (3x64x64 by default,
            labels 0..9, -1 for ``unlabeled``), ``"celeba64"`` (3x64x64, center
            square crop then resize, label -1) or ``"npy:<path>"`` (uint8
            ``(N, H, W, C)`` with C in {1, 3}, or ``(N, H, W)``; native size, label -1;
            ``test`` is the last ``ceil(N / 10)`` images, ``train`` the rest).
        split: see :data:`SPLITS` for each name.
        root: data root (default :func:`default_root`); for ``npy:`` a relative path
            is tried against the working directory, then against ``root``.
        image_size: output ``H = W`` (int) or ``(H, W)``; None keeps the default above.
        value_range: ``"tanh"`` -> float32 in [-1, 1]; ``"unit"`` -> [0, 1].
        download: let torchvision download the real data (needs network access).
        offline_fallback: when the real data is absent, use the offline stand-in
            (with one :class:`OfflineFallbackWarning`) instead of raising
            :class:`DatasetNotFoundError`.

    Returns:
        A ``torch.utils.data.Dataset`` of ``(image float32 (C, H, W), label int)``
        with attributes ``name``, ``split``, ``image_shape``, ``value_range`` and
        ``offline``.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    check_value_range(value_range)
    size = None if image_size is None else as_hw(image_size, "image_size")
    root_path = Path(root).expanduser() if root is not None else default_root()

    if name.startswith("npy:"):
        _check_split("npy", split)
        return _load_npy(name[4:], split, root_path, size, value_range)
    key = name.strip().lower()
    if key not in _LOADERS:
        raise ValueError(
            f"unknown dataset {name!r}: known names are {', '.join(map(repr, KNOWN_DATASETS))}"
        )
    _check_split(key, split)
    if size is None and DEFAULT_IMAGE_SIZE[key] is not None:
        size = as_hw(DEFAULT_IMAGE_SIZE[key])
    real_loader, where, fallback = _LOADERS[key]
    try:
        return real_loader(root_path, split, size, value_range, download)
    except _UNAVAILABLE as err:
        tried = where(root_path)
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if not offline_fallback:
            raise DatasetNotFoundError(
                f"{key} files not found at {tried} ({reason}). Put the dataset there, pass root=..., "
                "set $GAN_UTILS_DATA, pass download=True with network access, "
                "or allow offline_fallback=True"
            ) from err
    ds = fallback(split, size, value_range)
    warnings.warn(
        f"{key}: real data not available at {tried} ({reason}); using {ds.name!r} instead "
        f"({len(ds)} {split} images of shape {ds.image_shape}). Place the real files there or "
        "pass download=True with network access to use the full dataset.",
        OfflineFallbackWarning,
        stacklevel=2,
    )
    return ds


def _check_split(key: str, split: str) -> None:
    if split not in SPLITS[key]:
        label = "npy:<path>" if key == "npy" else key
        raise ValueError(
            f"unknown split {split!r} for {label}: expected one of {', '.join(map(repr, SPLITS[key]))}"
        )


# ---------------------------------------------------------------- real data (torchvision)


def _mnist(root: Path, split: str, size, value_range: str, download: bool) -> Dataset:
    from torchvision.datasets import MNIST

    # torchvision parses the IDX files; the decoded uint8 tensor is served from memory.
    base = MNIST(str(root), train=(split == "train"), download=download)
    return TensorImageDataset(base.data.unsqueeze(1), base.targets, name="mnist", split=split,
                              image_size=size, value_range=value_range)


def _stl10(root: Path, split: str, size, value_range: str, download: bool) -> Dataset:
    from torchvision.datasets import STL10

    base = STL10(str(root), split=split, download=download)
    images = torch.from_numpy(base.data)  # (N, 3, 96, 96) uint8, already row-major per image
    labels = torch.from_numpy(np.asarray(base.labels, dtype=np.int64))
    return TensorImageDataset(images, labels, name="stl10", split=split,
                              image_size=size, value_range=value_range)


def _pil_to_uint8_rgb(image) -> torch.Tensor:
    from torchvision.transforms.functional import pil_to_tensor

    return pil_to_tensor(image.convert("RGB"))


def _celeba64(root: Path, split: str, size, value_range: str, download: bool) -> Dataset:
    from torchvision.datasets import CelebA

    base = CelebA(str(root), split=split, target_type=[], transform=_pil_to_uint8_rgb, download=download)
    return MappedImageDataset(base, name="celeba64", split=split, image_size=size,
                              value_range=value_range, channels=3, crop_square=True)


# ---------------------------------------------------------------- offline stand-ins


def _mnist_offline(split: str, size, value_range: str) -> Dataset:
    images, labels = offline.mnist_5k(split)
    return TensorImageDataset(images, labels, name=offline.MNIST_5K_NAME, split=split,
                              image_size=size, value_range=value_range, offline=True)


def _patches_offline(kind: str) -> Callable[[str, tuple[int, int], str], Dataset]:
    combined = {"train+unlabeled": ("train", "unlabeled"), "all": ("train", "valid", "test")}

    def build(split: str, size: tuple[int, int], value_range: str) -> Dataset:
        parts = combined.get(split, (split,))
        images = torch.cat([offline.skimage_patches(kind, part, size) for part in parts])
        # Patches carry no class; size is cut natively, so no second resize.
        return TensorImageDataset(images, None, name=offline.patch_dataset_name(kind), split=split,
                                  image_size=None, value_range=value_range, offline=True)

    return build


_LOADERS: dict[str, tuple[Callable, Callable[[Path], Path], Callable]] = {
    "mnist": (_mnist, lambda root: root / "MNIST" / "raw", _mnist_offline),
    "stl10": (_stl10, lambda root: root / "stl10_binary", _patches_offline("stl10")),
    "celeba64": (_celeba64, lambda root: root / "celeba", _patches_offline("celeba64")),
}


# ---------------------------------------------------------------- .npy files


def _resolve_npy(path_text: str, root: Path) -> Path:
    if not path_text.strip():
        raise ValueError("empty path in 'npy:<path>': give the .npy file, e.g. 'npy:/data/CelebA64.npy'")
    path = Path(path_text).expanduser()
    tried = [path]
    if not path.is_absolute():
        tried.append(root / path)
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    raise DatasetNotFoundError(
        f"npy file not found: tried {', '.join(str(p) for p in tried)}. "
        "Give an existing .npy of uint8 images shaped (N, H, W, C)"
    )


def _load_npy(path_text: str, split: str, root: Path, size, value_range: str) -> Dataset:
    path = _resolve_npy(path_text, root)
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise ValueError(f"{path} is not a readable .npy array of uint8 (N, H, W, C) images: {err}") from err
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path} holds a {type(arr).__name__}, expected one array of uint8 (N, H, W, C)")
    got = f"got dtype {arr.dtype} and shape {arr.shape}"
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected a uint8 array shaped (N, H, W, C) with pixels 0..255, {got}")
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[3] not in (1, 3)):
        hint = ""
        if arr.ndim == 4 and arr.shape[1] in (1, 3):
            hint = " (it looks channels-first: save arr.transpose(0, 2, 3, 1) instead)"
        raise ValueError(
            f"{path}: expected a uint8 array shaped (N, H, W, C) with C in {{1, 3}} "
            f"(or (N, H, W) grayscale), {got}{hint}"
        )
    n = int(arr.shape[0])
    if n == 0:
        raise ValueError(f"{path}: the array holds no images, {got}")
    n_test = math.ceil(n * NPY_TEST_FRACTION) if n > 1 else 0
    start, stop = {"train": (0, n - n_test), "test": (n - n_test, n), "all": (0, n)}[split]
    del arr
    return NpyImageDataset(path, start, stop, name=f"npy:{path}", split=split,
                           image_size=size, value_range=value_range)

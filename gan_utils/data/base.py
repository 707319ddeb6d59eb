"""Dataset classes shared by every loader, and the one pixel pipeline they all use.

Every image goes through :func:`finish_image`: uint8 ``(C, H, W)`` in 0..255
-> float32 in [0, 1] -> optional center square crop -> optional resize (bilinear,
antialiased, ``align_corners=False``, clamped to [0, 1]) -> the requested value
range (``"tanh"``: [-1, 1] via ``2x - 1``; ``"unit"``: [0, 1]).

Two storage kinds:

- :class:`TensorImageDataset`: all images in memory as one uint8 tensor
  ``(N, C, H, W)`` (MNIST, STL-10, the offline sets); indexing is a slice plus
  one conversion, no PIL.
- :class:`NpyImageDataset`: images in a ``.npy`` file, memory-mapped, read one at
  a time; the map is reopened lazily in each DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gan_utils.data.transforms import to_tanh_range

VALUE_RANGES = ("tanh", "unit")


class OfflineFallbackWarning(UserWarning):
    """The requested dataset is not on disk and could not be downloaded.

    The message names the real offline stand-in that is used instead (for
    example ``mnist-5k-offline``) and why the real data was not available.
    """


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are not where they were looked for (the message gives the path)."""


def check_value_range(value_range: str) -> str:
    """Return ``value_range`` if it is ``"tanh"`` or ``"unit"``; raise ValueError otherwise."""
    if value_range not in VALUE_RANGES:
        raise ValueError(
            f"unknown value_range {value_range!r}: expected one of {', '.join(map(repr, VALUE_RANGES))} "
            "('tanh' gives [-1, 1], 'unit' gives [0, 1])"
        )
    return value_range


def as_hw(size: int | Sequence[int], what: str = "size") -> tuple[int, int]:
    """Normalise an int or ``(H, W)`` pair to a tuple of two positive ints.

    Raises TypeError for non-integers and ValueError for a wrong length or a
    non-positive size.
    """
    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(size):
        pair = (int(size), int(size))  # type: ignore[arg-type]
    elif isinstance(size, (Sequence, torch.Size)) and not isinstance(size, str):
        if len(size) != 2:
            raise ValueError(f"{what} must be an int or an (H, W) pair, got {size!r} ({len(size)} values)")
        if not all(is_int(s) for s in size):
            raise TypeError(f"{what} must hold ints, got {size!r}")
        pair = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{what} must be an int or an (H, W) pair of ints, got {size!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(f"{what} must be positive, got {size!r}")
    return pair


def center_square_crop(image: torch.Tensor) -> torch.Tensor:
    """Crop the largest centered square from ``(..., H, W)``; offsets round down."""
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top : top + side, left : left + side]


def resize_unit(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float images in [0, 1], ``(C, H, W)`` or ``(N, C, H, W)``, to ``size``.

    Bilinear with antialiasing (as PIL and ``torchvision.transforms.Resize`` do),
    clamped back to [0, 1]. A no-op when the size already matches.
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    batched = images.dim() == 4
    x = images if batched else images.unsqueeze(0)
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    x = x.clamp_(0.0, 1.0)
    return x if batched else x.squeeze(0)


def finish_image(
    image: torch.Tensor,
    image_size: tuple[int, int] | None,
    value_range: str,
    crop_square: bool = False,
) -> torch.Tensor:
    """uint8 ``(C, H, W)`` (or ``(N, C, H, W)``) -> float32 in ``value_range`` at ``image_size``."""
    if image.dtype != torch.uint8:
        raise TypeError(f"expected uint8 pixels 0..255, got dtype {image.dtype}")
    x = image.float().div_(255.0)
    if crop_square:
        x = center_square_crop(x)
    if image_size is not None:
        x = resize_unit(x, image_size)
    return to_tanh_range(x) if value_range == "tanh" else x


class TensorImageDataset(Dataset):
    """In-memory images: uint8 ``(N, C, H, W)`` tensor + int64 labels ``(N,)`` (-1 = no label).

    ``dataset[i]`` returns ``(image, label)`` with ``image`` float32 ``(C, H', W')``
    in ``value_range`` (``H', W' = image_size`` or the stored size) and ``label``
    a python int. :meth:`batch` converts many at once (used by whole-set metrics).

    Attributes: ``name``, ``split``, ``value_range``, ``image_shape`` (C, H', W'),
    ``images`` (the uint8 storage), ``labels``, ``offline`` (True for the
    offline stand-ins).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        name: str,
        split: str = "train",
        image_size: int | Sequence[int] | None = None,
        value_range: str = "tanh",
        offline: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 tensor of shape (N, C, H, W), got dtype {images.dtype} "
                f"and shape {tuple(images.shape)}"
            )
        n = images.shape[0]
        if labels is None:
            labels = torch.full((n,), -1, dtype=torch.long)
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels
        self.name = name
        self.split = split
        self.value_range = check_value_range(value_range)
        self.image_size = None if image_size is None else as_hw(image_size, "image_size")
        self.offline = offline
        out_hw = self.image_size or tuple(images.shape[-2:])
        self.image_shape = (int(images.shape[1]), int(out_hw[0]), int(out_hw[1]))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = finish_image(self.images[index], self.image_size, self.value_range)
        return image, int(self.labels[index])

    def batch(self, indices: Sequence[int] | torch.Tensor | slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(n, C, H', W')`` float32 and labels ``(n,)`` int64 for ``indices`` (all if None)."""
        sel = slice(None) if indices is None else indices
        if not isinstance(sel, slice):
            sel = torch.as_tensor(sel, dtype=torch.long)
        return finish_image(self.images[sel], self.image_size, self.value_range), self.labels[sel].clone()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, value_range={self.value_range!r})")


class NpyImageDataset(Dataset):
    """Images from one ``.npy`` file of uint8 ``(N, H, W, C)`` (C in {1, 3}) or ``(N, H, W)``.

    The array is memory-mapped; rows ``start:stop`` form this split. Items are
    ``(image float32 (C, H', W') in value_range, -1)``.
    """

    def __init__(
        self,
        path: str | Path,
        start: int,
        stop: int,
        *,
        name: str,
        split: str,
        image_size: int | Sequence[int] | None = None,
        value_range: str = "tanh",
    ) -> None:
        self.path = Path(path)
        self.start, self.stop = int(start), int(stop)
        self.name = name
        self.split = split
        self.value_range = check_value_range(value_range)
        self.image_size = None if image_size is None else as_hw(image_size, "image_size")
        self.offline = False
        self._array: np.ndarray | None = None
        arr = self.array
        channels = 1 if arr.ndim == 3 else int(arr.shape[3])
        out_hw = self.image_size or (int(arr.shape[1]), int(arr.shape[2]))
        self.image_shape = (channels, int(out_hw[0]), int(out_hw[1]))

    @property
    def array(self) -> np.ndarray:
        """The whole memory-mapped array (all splits), opened on first use."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self) -> dict:
        # Workers reopen the map instead of receiving a pickled copy of the data.
        state = self.__dict__.copy()
        state["_array"] = None
        return state

    def __len__(self) -> int:
        return self.stop - self.start

    def _rows(self, rows: np.ndarray) -> torch.Tensor:
        # (n, H, W[, C]) uint8 -> (n, C, H, W)
        if rows.ndim == 3:
            rows = rows[..., None]
        return torch.from_numpy(np.array(rows, copy=True)).permute(0, 3, 1, 2)  # memmap is read-only

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        row = self.start + (index % n)
        image = self._rows(self.array[row : row + 1])[0]
        return finish_image(image, self.image_size, self.value_range), -1

    def batch(self, indices: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(n, C, H', W')`` float32 and labels ``(n,)`` (all -1) for ``indices`` (all if None)."""
        rows = np.arange(self.start, self.stop) if indices is None else self.start + np.asarray(indices)
        images = self._rows(self.array[rows])
        return finish_image(images, self.image_size, self.value_range), torch.full((len(rows),), -1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, value_range={self.value_range!r})")


class MappedImageDataset(Dataset):
    """Wrap a dataset yielding ``(uint8 (C, H, W) tensor, target)``; apply :func:`finish_image`.

    Used for CelebA, whose images are files decoded one at a time. Targets that
    are not ints (CelebA gives none) become -1.
    """

    def __init__(
        self,
        base: Dataset,
        *,
        name: str,
        split: str,
        image_size: int | Sequence[int] | None,
        value_range: str,
        channels: int,
        crop_square: bool = False,
    ) -> None:
        self.base = base
        self.name = name
        self.split = split
        self.value_range = check_value_range(value_range)
        self.image_size = None if image_size is None else as_hw(image_size, "image_size")
        self.crop_square = crop_square
        self.offline = False
        if self.image_size is None:
            raise ValueError("MappedImageDataset needs an image_size (its files may differ in size)")
        self.image_shape = (channels, *self.image_size)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, target = self.base[index]
        label = int(target) if isinstance(target, (int, np.integer)) else -1
        return finish_image(image, self.image_size, self.value_range, self.crop_square), label

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, value_range={self.value_range!r})")

"""Where images to evaluate come from: streams of batches ``(B, C, H, W)`` float32 in [0, 1].

An :class:`ImageSource` has a ``name`` (what the JSON report calls it), the
number ``n`` of images it yields, and can be iterated (again) for batches.
:func:`open_source` picks one from a command-line string:

* a kit checkpoint (``checkpoint.pt`` written by ``python -m gan_utils train``):
  samples drawn from its generator chunk by chunk, so only one batch is in
  memory (chunk ``i`` uses seed ``seed + i``; conditional models cycle the labels
  ``0..K-1``);
* an ``.npz`` with ``images`` (N, C, H, W) float in [0, 1] (what ``python -m
  gan_utils sample`` writes);
* a dataset name for :func:`gan_utils.data.load_dataset` (``mnist``, ``stl10``,
  ``celeba64``, ``npy:<path>``), optionally with a split: ``mnist:test``; a random
  subset (seeded) when ``n`` is smaller than the split.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["ImageSource", "checkpoint_source", "dataset_source", "npz_source", "open_source", "tensor_source"]


@dataclass
class ImageSource:
    """A re-iterable stream of image batches in [0, 1].

    Attributes:
        name: a description for reports (path, dataset name).
        n: number of images the stream yields.
        make_batches: returns a fresh iterator of batches.
        info: JSON-serialisable details (recipe, step, dataset, ...).
    """

    name: str
    n: int
    make_batches: Callable[[], Iterator[Tensor]]
    info: dict[str, Any]

    def __iter__(self) -> Iterator[Tensor]:
        return self.make_batches()


def _check_n(n: int | None, what: str) -> None:
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"{what} must be a positive number of images, got {n!r}")


def tensor_source(images: Tensor | np.ndarray, batch_size: int = 500, name: str = "tensor") -> ImageSource:
    """Batches of an in-memory image tensor ``(N, C, H, W)`` in [0, 1]."""
    images = torch.as_tensor(images)
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")

    def batches() -> Iterator[Tensor]:
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size].float()

    return ImageSource(name, int(images.shape[0]), batches, {"kind": "tensor"})


def npz_source(path: str | Path, n: int | None = None, batch_size: int = 500, key: str = "images") -> ImageSource:
    """The first ``n`` (default all) images of an ``.npz`` file's ``images`` array (N, C, H, W) in [0, 1]."""
    _check_n(n, "n")
    path = Path(path)
    with np.load(path) as data:
        if key not in data.files:
            raise ValueError(f"{path} has no {key!r} array (it holds {data.files}); expected the .npz that "
                             "'python -m gan_utils sample' writes")
        images = data[key]
    if images.ndim != 4:
        raise ValueError(f"{path}: {key} must have shape (N, C, H, W), got {images.shape}")
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(f"asked for {n} images but {path} holds only {images.shape[0]}")
        images = images[:n]
    src = tensor_source(torch.from_numpy(np.ascontiguousarray(images)), batch_size, name=str(path))
    src.info = {"kind": "npz", "path": str(path)}
    return src


def dataset_source(name: str, split: str = "train", n: int | None = None, root: str | Path | None = None,
                   batch_size: int = 500, seed: int = 0, image_size: int | None = None) -> ImageSource:
    """Images of a kit dataset (:func:`gan_utils.data.load_dataset`) in [0, 1]; a seeded random subset of ``n``."""
    from gan_utils.data import load_dataset

    _check_n(n, "n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline-fallback notice: the dataset's name and info say it
        ds = load_dataset(name, split=split, root=root, image_size=image_size, value_range="unit")
    total = len(ds)
    if n is not None and n > total:
        raise ValueError(f"asked for {n} reference images but {getattr(ds, 'name', name)} ({split}) has {total}")
    count = total if n is None else n
    index = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count] if count < total else None

    def batches() -> Iterator[Tensor]:
        rows = index if index is not None else torch.arange(total)
        for start in range(0, count, batch_size):
            idx = rows[start : start + batch_size]
            if callable(getattr(ds, "batch", None)):
                yield ds.batch(idx.tolist())[0].float()
            else:
                yield torch.stack([ds[int(i)][0] for i in idx]).float()

    info = {"kind": "dataset", "dataset": str(getattr(ds, "name", name)), "split": split,
            "offline_fallback": bool(getattr(ds, "offline", False))}
    return ImageSource(f"{getattr(ds, 'name', name)}:{split}", count, batches, info)


def checkpoint_source(path: str | Path, n: int, seed: int = 0, batch_size: int = 500,
                      device: str | torch.device = "cpu", use_ema: bool = True) -> ImageSource:
    """``n`` samples from a kit GAN checkpoint's generator, drawn ``batch_size`` at a time."""
    from gan_utils.recipes import load_checkpoint_models

    _check_n(n, "n")
    recipe, models, payload = load_checkpoint_models(path, device=device, use_ema=use_ema)
    if "generator" not in models or recipe.trainer_kind != "gan":
        raise ValueError(f"{path} is a {recipe.trainer_kind!r} checkpoint of recipe {recipe.name!r}; sample metrics "
                         "need a GAN generator (write samples to an .npz and evaluate that instead)")
    meta = {**payload.get("meta", {}), "config": payload.get("config") or {}}

    def batches() -> Iterator[Tensor]:
        for i, start in enumerate(range(0, n, batch_size)):
            size = min(batch_size, n - start)
            yield recipe.sample(models, size, seed=seed + i, device=device, meta=meta)["images"]

    info = {"kind": "checkpoint", "path": str(path), "recipe": recipe.name, "step": int(payload.get("step", 0)),
            "dataset": meta.get("dataset"), "seed": seed}
    return ImageSource(str(path), n, batches, info)


def _is_checkpoint(path: Path) -> bool:
    return path.suffix in (".pt", ".pth", ".ckpt")


def open_source(spec: str, n: int | None = None, *, default_n: int = 5000, seed: int = 0, batch_size: int = 500,
                device: str | torch.device = "cpu", root: str | Path | None = None, split: str = "train",
                image_size: int | None = None) -> ImageSource:
    """An :class:`ImageSource` for a checkpoint path, an ``.npz`` path or a dataset name (see the module docstring).

    ``n`` caps the images (checkpoints draw ``n``, default ``default_n``).
    """
    path = Path(spec).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"no such .npz file: {path}")
        return npz_source(path, n, batch_size)
    if _is_checkpoint(path) or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"no such checkpoint: {path}")
        return checkpoint_source(path, n or default_n, seed=seed, batch_size=batch_size, device=device)
    name, _, sub = spec.partition(":") if not spec.startswith("npy:") else (spec, "", "")
    if spec.startswith("npy:") and spec.count(":") > 1 and spec.rsplit(":", 1)[1] in ("train", "test"):
        name, sub = spec.rsplit(":", 1)
    return dataset_source(name, sub or split, n, root=root, batch_size=batch_size, seed=seed, image_size=image_size)

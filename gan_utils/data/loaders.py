"""``make_loader``: a DataLoader with the settings the course wants by default.

>>> loader = make_loader(load_dataset("mnist"), batch_size=128, seed=0)
>>> images, labels = next(iter(loader))   # (128, 1, 28, 28) float32, (128,) int64
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def _seed_worker(worker_id: int) -> None:
    # Each worker's numpy/random streams follow torch's per-worker seed (itself
    # derived from the loader's generator), so augmentations are reproducible.
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    drop_last: bool = True,
    seed: int | None = None,
) -> DataLoader:
    """Wrap ``dataset`` in a ``DataLoader``.

    Args:
        dataset: any map-style dataset (e.g. from :func:`load_dataset`).
        batch_size: images per batch (positive).
        shuffle: reshuffle every epoch.
        device: where batches will be used; pinned host memory is switched on when
            this is a CUDA device (or None/"auto" and CUDA is available). Batches
            are not moved: call ``.to(device, non_blocking=True)`` in the loop.
        num_workers: background worker processes (0 = load in the main process);
            workers are kept alive between epochs.
        drop_last: drop the last incomplete batch (keeps BatchNorm statistics and
            loss scales even). Raises when it would leave no batch at all.
        seed: seeds the shuffling order (a private ``torch.Generator``), so two
            loaders with the same seed give the same batches; None uses torch's
            global RNG (seeded by ``gan_utils.seed_everything``).

    Returns:
        ``torch.utils.data.DataLoader`` yielding ``(images (B, C, H, W), labels (B,))``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    n = len(dataset)  # type: ignore[arg-type]
    if drop_last and n < batch_size:
        raise ValueError(
            f"batch_size {batch_size} is larger than the dataset ({n} items) and drop_last=True "
            "would give no batches: use a smaller batch_size or drop_last=False"
        )
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=_wants_pinning(device),
        generator=generator,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )


def _wants_pinning(device: str | torch.device | None) -> bool:
    if not torch.cuda.is_available():
        return False
    if device is None or (isinstance(device, str) and device == "auto"):
        return True
    return torch.device(device).type == "cuda"

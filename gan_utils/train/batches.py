"""An endless, resumable stream of training batches.

Data order is a pure function of ``(seed, epoch)``: each epoch uses the
permutation ``torch.randperm(n)`` of a generator seeded from both, cut into
*global* batches of ``batch_size * world_size`` indices; rank ``r`` takes the
``r``-th slice of each. The stream's only state is how many batches it has
handed out, so a resumed run sees exactly the batches the uninterrupted run
would have seen, and two ranks with batch ``B`` see together what one process
with batch ``2B`` sees.

Datasets with a ``batch(indices)`` method (the kit's in-memory sets) and
``TensorDataset`` are indexed a whole batch at a time; other datasets go
through a ``DataLoader`` with a batch sampler. Any other iterable (a ready
``DataLoader``) is cycled as given; then exact resumption needs a
deterministic loader, and a resumed run skips the batches already used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["BatchStream", "epoch_permutation"]

_MIX = 0x9E3779B97F4A7C15


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``range(n)`` used in ``epoch`` (int64, CPU)."""
    g = torch.Generator().manual_seed((seed * _MIX + epoch * 1_000_003 + 1) % (2**63 - 1))
    return torch.randperm(n, generator=g)


class _FixedBatches(torch.utils.data.Sampler[list[int]]):
    def __init__(self, batches: Sequence[list[int]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class BatchStream:
    """Yield batches forever; ``position`` counts the batches handed out so far.

    Args:
        data: a map-style ``Dataset`` (seeded shuffling, exact resume) or any
            iterable of batches (cycled).
        batch_size: items per batch on this rank.
        seed: seeds the per-epoch permutations.
        rank, world_size: this process's slice of each global batch.
        num_workers, pin_memory: passed to the ``DataLoader`` (generic datasets only).
    """

    def __init__(
        self,
        data: Dataset | Iterable,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.data = data
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.position = 0
        self._iter: Iterator | None = None
        self.map_style = isinstance(data, Dataset) and hasattr(data, "__getitem__") and hasattr(data, "__len__")
        if not self.map_style and not isinstance(data, Iterable):
            raise TypeError(f"data must be a Dataset or an iterable of batches, got {type(data).__name__}")
        if self.map_style:
            n, global_batch = len(data), self.batch_size * self.world_size  # type: ignore[arg-type]
            if n < global_batch:
                raise ValueError(
                    f"the dataset has {n} items, fewer than one global batch of {global_batch} "
                    f"(batch_size {self.batch_size} x {self.world_size} processes): lower batch_size"
                )
            self.batches_per_epoch = n // global_batch

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._iter is None:
            self._iter = self._open(self.position)
        try:
            batch = next(self._iter)
        except StopIteration:
            self._iter = self._open(self.position)
            batch = next(self._iter)
        self.position += 1
        return batch

    # -- state -----------------------------------------------------------------
    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["position"])
        self._iter = None

    # -- internals ---------------------------------------------------------------
    def _open(self, position: int) -> Iterator:
        if not self.map_style:
            return self._open_iterable(position)
        epoch, start = divmod(position, self.batches_per_epoch)
        perm = epoch_permutation(len(self.data), self.seed, epoch)  # type: ignore[arg-type]
        global_batch = self.batch_size * self.world_size
        lo = self.rank * self.batch_size
        batches = [
            perm[b * global_batch + lo : b * global_batch + lo + self.batch_size]
            for b in range(start, self.batches_per_epoch)
        ]
        data = self.data
        if hasattr(data, "batch") and callable(data.batch):
            return (data.batch(idx) for idx in batches)
        if isinstance(data, TensorDataset):
            return (tuple(t[idx] for t in data.tensors) for idx in batches)
        loader = DataLoader(
            data,
            batch_sampler=_FixedBatches([idx.tolist() for idx in batches]),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        return iter(loader)

    def _open_iterable(self, position: int) -> Iterator:
        per_epoch = len(self.data) if hasattr(self.data, "__len__") else None  # type: ignore[arg-type]
        epoch, skip = divmod(position, per_epoch) if per_epoch else (0, position)
        sampler = getattr(self.data, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        it = iter(self.data)
        for _ in range(skip):
            next(it)
        return it

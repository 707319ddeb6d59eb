"""Data-parallel training across processes with ``torchrun``.

The same command runs single-process or distributed::

    python -m gan_utils train dcgan --dataset stl10 --steps 1000 --out out/dcgan
    torchrun --nproc_per_node=2 -m gan_utils train dcgan --dataset stl10 --steps 1000 --out out/dcgan

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`init_distributed`
reads them and starts the process group (NCCL on GPUs, gloo on CPUs). The
trainers then wrap the networks in ``DistributedDataParallel``, give each rank
its slice of every global batch, and keep file output (grids, checkpoints,
JSON, the progress bar) on rank 0.

How the GAN steps use DDP (see ``GANTrainer``): the discriminator step calls
the DDP-wrapped discriminator on real and fake batches; penalties (WGAN-GP,
R1) call the plain module, so their double backward never runs DDP's hooks
by itself; the single ``backward()`` of the whole discriminator loss then
fires each parameter's hook once and DDP averages the summed gradient across
ranks. The generator step calls the plain discriminator with its parameters
frozen, so only the generator's gradients are reduced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from gan_utils.device import select_device

__all__ = [
    "DistContext",
    "all_agree",
    "barrier",
    "cleanup_distributed",
    "current_context",
    "device_for",
    "init_distributed",
    "wrap_ddp",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: ``rank`` of ``world_size`` (``local_rank`` on its node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes files and shows progress."""
        return self.rank == 0


def current_context() -> DistContext:
    """The context of an already initialised process group (single-process otherwise)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=str(dist.get_backend()),
        )
    return DistContext()


def init_distributed(device: str = "auto") -> DistContext:
    """Start the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    Uses NCCL when CUDA is available and ``device`` is not ``"cpu"``, else gloo.
    Returns a single-process context when not launched distributed, and the
    existing context when a group is already running.
    """
    if dist.is_available() and dist.is_initialized():
        return current_context()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world_size} but {var} is not set: launch with torchrun --nproc_per_node=N")
    local_rank = int(os.environ["LOCAL_RANK"])
    use_cuda = torch.cuda.is_available() and device != "cpu"
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)


def cleanup_distributed() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(ctx: DistContext, requested: str = "auto") -> torch.device:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` under NCCL, else ``select_device``."""
    if ctx.enabled and ctx.backend == "nccl":
        return torch.device("cuda", ctx.local_rank)
    return select_device(requested)


def wrap_ddp(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(module)`` when distributed, ``module`` itself otherwise."""
    if not ctx.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    device_ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def all_agree(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (a collective: all ranks must call it)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if ctx.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    """Wait for all ranks (no-op single-process)."""
    if ctx.enabled:
        dist.barrier()

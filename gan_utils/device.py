"""Device selection, seeding and determinism.

>>> from gan_utils.device import select_device, seed_everything
>>> device = select_device("auto")   # cuda > mps > cpu
>>> seed_everything(0)
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

_KNOWN = ("auto", "cpu", "cuda", "mps")


def select_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a ``torch.device``.

    ``"auto"`` (or ``None``) picks CUDA when available, then Apple MPS, then CPU.
    Any other string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is honoured
    as given, with a clear error when that device is not present here.
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'auto' or 'cuda:0', got {type(device).__name__}")
    kind = device.split(":", 1)[0]
    if kind not in _KNOWN:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(_KNOWN)} (optionally 'cuda:N')")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available on this machine; use 'auto' or 'cpu'")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError(f"device {device!r} was requested but MPS is not available on this machine; use 'auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed python, numpy and torch (all CUDA devices too).

    With ``deterministic=True`` also switch on deterministic algorithms (see
    :func:`set_deterministic`). Returns a CPU ``torch.Generator`` seeded with
    ``seed`` for callers that want an explicit stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        set_deterministic(True)
    return torch.Generator().manual_seed(seed)


def set_deterministic(enabled: bool = True) -> None:
    """Deterministic algorithms on/off; TF32 off while deterministic.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` as cuBLAS requires for reproducible matmuls.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cuda.matmul.allow_tf32 = not enabled
    torch.backends.cudnn.allow_tf32 = not enabled


@contextmanager
def deterministic_mode() -> Iterator[None]:
    """Context manager: deterministic algorithms and no TF32 inside, previous state after."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    set_deterministic(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0])
        torch.backends.cudnn.deterministic = saved[1]
        torch.backends.cudnn.benchmark = saved[2]
        torch.backends.cuda.matmul.allow_tf32 = saved[3]
        torch.backends.cudnn.allow_tf32 = saved[4]

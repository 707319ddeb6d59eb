"""Checkpoints: atomic writes, everything needed to resume bit-exactly.

A checkpoint is one ``torch.save`` file holding a dict::

    {"format": "gan_utils.checkpoint/1", "step": int, "config": dict, "meta": dict,
     "models": {name: state_dict}, "optimizers": {...}, "scalers": {...},
     "ema": {...} | None, "rng": {"python", "numpy", "torch", "cuda"}, "extra": {...}}

``meta`` carries what is needed to rebuild the networks without the training
code (for recipes: ``{"recipe": name, "model_kwargs": {...}, ...}``).

Files are written to a temporary file in the destination folder and moved into
place with ``os.replace``, so a reader never sees a half-written checkpoint even
if training is killed mid-save. Checkpoints contain pickled Python objects
(RNG states, configs): load only files you trust.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["FORMAT", "atomic_save", "capture_rng_state", "load_checkpoint", "restore_rng_state", "save_checkpoint"]

FORMAT = "gan_utils.checkpoint/1"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` through a temp file + ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def capture_rng_state() -> dict[str, Any]:
    """States of the python, numpy, torch CPU and (if initialised) CUDA generators."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _state_dicts(objects: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: obj.state_dict() for name, obj in (objects or {}).items()}


def save_checkpoint(
    path: str | Path,
    *,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    scalers: Mapping[str, Any] | None = None,
    ema: Any | None = None,
    step: int = 0,
    config: Any | None = None,
    meta: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    include_rng: bool = True,
) -> Path:
    """Write a checkpoint atomically and return its path.

    Args:
        models / optimizers / scalers: name -> object with ``state_dict()``.
        ema: an object with ``state_dict()`` (e.g. :class:`gan_utils.train.EMA`) or ``None``.
        config: a config dataclass (stored via ``to_dict()``) or a plain dict.
        meta: JSON-like description used to rebuild the models (recipe name, kwargs).
        extra: anything else the trainer needs to resume (data position, noise generator...).
    """
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    payload = {
        "format": FORMAT,
        "torch_version": torch.__version__,
        "step": int(step),
        "config": config,
        "meta": dict(meta or {}),
        "models": _state_dicts(models),
        "optimizers": _state_dicts(optimizers),
        "scalers": _state_dicts(scalers),
        "ema": None if ema is None else ema.state_dict(),
        "rng": capture_rng_state() if include_rng else None,
        "extra": dict(extra or {}),
    }
    return atomic_save(payload, path)


def _load_into(kind: str, targets: Mapping[str, Any] | None, stored: Mapping[str, Any], path: Path) -> None:
    for name, target in (targets or {}).items():
        if name not in stored:
            raise KeyError(f"checkpoint {path} has no {kind} named {name!r}; it holds {sorted(stored)}")
        target.load_state_dict(stored[name])


def load_checkpoint(
    path: str | Path,
    *,
    models: Mapping[str, nn.Module] | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    scalers: Mapping[str, Any] | None = None,
    ema: Any | None = None,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint, load it into the given objects and return the whole dict.

    Only the objects passed are loaded (so ``load_checkpoint(p, models={"generator": G})``
    restores just the generator). ``restore_rng=True`` also restores the global
    python / numpy / torch generators, as needed for a bit-exact resume.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a gan_utils checkpoint (expected format {FORMAT!r}, found {found!r})")
    _load_into("model", models, payload["models"], path)
    _load_into("optimizer", optimizers, payload["optimizers"], path)
    _load_into("scaler", scalers, payload["scalers"], path)
    if ema is not None:
        if payload["ema"] is None:
            raise KeyError(f"checkpoint {path} has no EMA state (it was trained with ema_decay=None)")
        ema.load_state_dict(payload["ema"])
    if restore_rng:
        if payload["rng"] is None:
            raise KeyError(f"checkpoint {path} was saved without RNG states")
        restore_rng_state(payload["rng"])
    return payload

"""What every trainer shares: devices, AMP, data stream, logging, cadences, checkpoints.

:class:`TrainerBase` runs the loop; subclasses implement :meth:`TrainerBase.train_step`
(one optimisation step, returning 0-d tensors to log) and, optionally,
:meth:`TrainerBase.make_samples` (images for the fixed-sample grid).

Logged values stay on the device as tensors and are copied to the host in one
transfer every ``log_every`` steps, so a step never waits for the GPU.

Callbacks (:mod:`gan_utils.train.callbacks`) are objects with any of
``on_step``, ``on_log``, ``on_sample`` and ``on_end``.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset, default_collate

from gan_utils.train.batches import BatchStream, epoch_permutation
from gan_utils.train.callbacks import Callback, call_callback, progress_bar
from gan_utils.train.checkpoint import load_checkpoint, save_checkpoint
from gan_utils.train.config import BaseTrainConfig
from gan_utils.train.distributed import (
    DistContext,
    all_agree,
    barrier,
    current_context,
    device_for,
    wrap_ddp,
)

__all__ = ["Callback", "TrainerBase"]  # Callback re-exported for convenience

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainerBase:
    """Shared training loop. See the module docstring; subclasses set :attr:`log_keys`.

    Attributes:
        step: optimisation steps done so far.
        history: ``{"step": [...], key: [...]}`` one value per step for each of :attr:`log_keys`.
        samples: ``[(step, images), ...]`` fixed-sample batches (CPU tensors) taken during training.
        meta: JSON-like description stored in checkpoints (recipe name, model kwargs...).
    """

    log_keys: tuple[str, ...] = ()
    sample_value_range: str = "tanh"
    checkpoint_name = "checkpoint.pt"

    def __init__(
        self,
        config: BaseTrainConfig,
        data: Any,
        *,
        callbacks: Sequence[Any] = (),
        meta: dict[str, Any] | None = None,
        dist: DistContext | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.dist = dist if dist is not None else current_context()
        self.device = device_for(self.dist, config.device)
        self.callbacks = list(callbacks)
        self.meta = dict(meta or {})
        self.step = 0
        self.history: dict[str, list[float]] = {"step": [], **{k: [] for k in self.log_keys}}
        self.samples: list[tuple[int, torch.Tensor]] = []
        self.evaluations: list[dict[str, float]] = []
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self._pending: list[tuple[int, tuple[torch.Tensor, ...]]] = []
        self.stream = None if data is None else BatchStream(
            data,
            config.batch_size,
            seed=config.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            num_workers=config.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        # Noise of the trainer (latents, fake labels, penalty interpolation) comes from
        # its own generator: identical on every rank, saved in checkpoints.
        self.noise = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
        self.noise.manual_seed(config.seed)
        if config.deterministic:
            from gan_utils.device import set_deterministic

            set_deterministic(True)

    # -- hooks for subclasses --------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step; returns 0-d tensors keyed by :attr:`log_keys`."""
        raise NotImplementedError

    def make_samples(self) -> torch.Tensor | None:
        """Images ``(N, C, H, W)`` for the fixed-sample grid (``None``: no grids)."""
        return None

    def grid_nrow(self) -> int | None:
        """Images per row of the saved grid (``None``: square)."""
        return None

    def log_extras(self) -> dict[str, float]:
        """Extra values computed at log time on rank 0 (e.g. an evaluation); merged into ``on_log``."""
        return {}

    def modules(self) -> dict[str, nn.Module]:
        """Networks saved in checkpoints (plain modules, not DDP/compiled wrappers)."""
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def scalers(self) -> dict[str, Any]:
        return {}

    ema: Any = None

    # -- helpers for subclasses -----------------------------------------------------------
    def prepare_module(self, module: nn.Module) -> nn.Module:
        """Move to the device (and NHWC memory format when ``channels_last``)."""
        module = module.to(self.device)
        if self.config.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def wrap(self, module: nn.Module, ddp: bool = True) -> Callable[..., Any]:
        """The callable used in training: DDP-wrapped (when distributed) and/or compiled."""
        fn: nn.Module = wrap_ddp(module, self.dist, self.device) if ddp else module
        if self.config.compile:
            fn = torch.compile(fn)
        return fn

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for ``amp="fp16"``."""
        return torch.amp.GradScaler(self.device.type, enabled=self.config.amp == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the configured AMP mode (a null context when off)."""
        if self.config.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_AMP_DTYPES[self.config.amp])

    def randn(self, *shape: int) -> torch.Tensor:
        """Standard-normal noise from the trainer's generator, on the device."""
        return torch.randn(*shape, generator=self.noise, device=self.noise.device).to(self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) noise from the trainer's generator, on the device."""
        return torch.rand(*shape, generator=self.noise, device=self.noise.device).to(self.device)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        """Integers in ``[0, high)`` from the trainer's generator, on the device."""
        return torch.randint(high, shape, generator=self.noise, device=self.noise.device).to(self.device)

    def rank_slice(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's part of a tensor drawn for the whole global batch (dim 0)."""
        if not self.dist.enabled:
            return x
        n = x.shape[0] // self.dist.world_size
        return x[self.dist.rank * n : (self.dist.rank + 1) * n]

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Move a batch tensor to the device (NHWC for 4-D images when ``channels_last``)."""
        x = x.to(self.device, non_blocking=True)
        if self.config.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(images, labels or None)`` on the device from the data stream."""
        if self.stream is None:
            raise RuntimeError("this trainer was built without data; pass a dataset or loader")
        return self._split_batch(next(self.stream))

    def fixed_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` items picked once from the data (seeded; the stream is not advanced)."""
        if self.stream is None:
            raise RuntimeError("this trainer was built without data; pass a dataset or loader")
        data = self.stream.data
        if self.stream.map_style:
            idx = epoch_permutation(len(data), self.config.seed + 7, 0)[:n]
            if hasattr(data, "batch") and callable(data.batch):
                batch = data.batch(idx)
            elif isinstance(data, TensorDataset):
                batch = tuple(t[idx] for t in data.tensors)
            else:
                batch = default_collate([data[int(i)] for i in idx])
        else:
            batch = next(iter(data))
        images, labels = self._split_batch(batch)
        return images[:n], None if labels is None else labels[:n]

    def _split_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(batch, torch.Tensor):
            return self.to_device(batch), None
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
            return self.to_device(batch[0]), None if labels is None else labels.to(self.device, non_blocking=True)
        raise TypeError(f"expected batches of images or (images, labels), got {type(batch).__name__}")

    # -- the loop ----------------------------------------------------------------------------
    def train(self, until: int | None = None) -> dict[str, list[float]]:
        """Train until ``step == until`` (default ``config.steps``) or the time budget runs out.

        Can be called again to continue (e.g. ``trainer.train(until=2000)``).
        Returns :attr:`history`.
        """
        cfg = self.config
        total = cfg.steps if until is None else int(until)
        main = self.dist.is_main
        if main and self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            cfg.to_json(self.out_dir / "config.json")
            if self.meta:
                (self.out_dir / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str) + "\n")
        for m in self.modules().values():
            m.train()
        bar = progress_bar(total, self.step, enabled=cfg.progress and main, desc=type(self).__name__)
        start = time.perf_counter()
        stopped_early = False
        try:
            while self.step < total:
                logs = self.train_step()
                self.step += 1
                self._pending.append((self.step, tuple(logs[k] for k in self.log_keys)))
                bar.update(1)
                for cb in self.callbacks:
                    call_callback(cb, "on_step", self, self.step)
                at_log = self.step % cfg.log_every == 0
                if at_log:
                    self._log(bar)
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.take_samples()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self.save()
                if cfg.max_seconds is not None and (at_log or not self.dist.enabled):
                    over = time.perf_counter() - start >= cfg.max_seconds
                    if all_agree(over, self.dist, self.device):
                        stopped_early = self.step < total
                        break
        finally:
            bar.close()
        self._log(None)
        if not self.samples or self.samples[-1][0] != self.step:
            self.take_samples()
        if self.out_dir is not None and (not cfg.checkpoint_every or self.step % cfg.checkpoint_every):
            self.save()
        if main and self.out_dir is not None:
            self.write_history()
        if stopped_early and main and cfg.progress:
            print(f"time budget of {cfg.max_seconds:g} s reached after {self.step} steps")
        for cb in self.callbacks:
            call_callback(cb, "on_end", self, self.history)
        return self.history

    def _log(self, bar: Any) -> dict[str, float]:
        """Move pending logged values to the host (one transfer) and call ``on_log``."""
        if not self._pending:
            return {}
        rows, n, k = self._pending, len(self._pending), len(self.log_keys)
        flat = torch.stack([t.detach().float().reshape(()) for _, row in rows for t in row])
        values = flat.cpu().view(n, k).tolist()
        steps = [s for s, _ in rows]
        self._pending = []
        self.history["step"].extend(steps)
        for j, key in enumerate(self.log_keys):
            self.history[key].extend(v[j] for v in values)
        for s, v in zip(steps, values, strict=True):
            # grad norms may be inf on steps an fp16 GradScaler skips; losses may not
            bad = [key for key, x in zip(self.log_keys, v, strict=True) if key.startswith("loss") and not math.isfinite(x)]
            if bad:
                raise FloatingPointError(
                    f"{', '.join(bad)} became non-finite at step {s}; lower the learning rates, "
                    "check the data range, or turn AMP off"
                )
        logs = dict(zip(self.log_keys, values[-1], strict=True))
        if self.dist.is_main:
            extras = self.log_extras()
            if extras:
                self.evaluations.append({"step": steps[-1], **extras})
                logs.update(extras)
        if bar is not None:
            bar.set_postfix({key: f"{x:.3g}" for key, x in logs.items()}, refresh=False)
        for cb in self.callbacks:
            call_callback(cb, "on_log", self, steps[-1], logs)
        return logs

    # -- samples, files ------------------------------------------------------------------------
    @torch.no_grad()
    def take_samples(self) -> torch.Tensor | None:
        """Draw the fixed-sample batch now: keep it in :attr:`samples`, save a PNG (rank 0)."""
        if not self.dist.is_main:
            return None
        images = self.make_samples()
        if images is None:
            return None
        images = images.detach().float().cpu().contiguous()
        self.samples.append((self.step, images))
        if self.out_dir is not None:
            from gan_utils.plotting import save_grid

            save_grid(images, self.out_dir / "samples" / f"step_{self.step:06d}.png",
                      nrow=self.grid_nrow(), value_range=self.sample_value_range)
        for cb in self.callbacks:
            call_callback(cb, "on_sample", self, self.step, images)
        return images

    def write_history(self) -> None:
        """``history.json``, ``losses.png`` (and ``evaluations.json``) into ``out_dir``."""
        assert self.out_dir is not None
        (self.out_dir / "history.json").write_text(json.dumps(self.history) + "\n")
        if self.evaluations:
            (self.out_dir / "evaluations.json").write_text(json.dumps(self.evaluations, indent=1) + "\n")
        curves = {k: v for k, v in self.history.items() if k.startswith("loss") and v}
        if curves:
            import matplotlib.pyplot as plt

            from gan_utils.plotting import plot_losses

            fig = plot_losses(curves, self.out_dir / "losses.png", steps=self.history["step"],
                              smooth_window=max(1, len(self.history["step"]) // 50))
            plt.close(fig)

    # -- checkpoints --------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Trainer state beyond models/optimisers (subclasses extend)."""
        return {
            "noise": self.noise.get_state(),
            "stream": None if self.stream is None else self.stream.state_dict(),
            "history": self.history,
            "evaluations": self.evaluations,
        }

    def load_extra_state(self, extra: dict[str, Any]) -> None:
        self.noise.set_state(extra["noise"].cpu())
        if self.stream is not None and extra.get("stream") is not None:
            self.stream.load_state_dict(extra["stream"])
        self.history = {k: list(v) for k, v in extra["history"].items()}
        self.evaluations = list(extra.get("evaluations", []))
        self._pending = []

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only; default ``out_dir/checkpoint.pt``)."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("no path given and config.out_dir is None")
            path = self.out_dir / self.checkpoint_name
        self._log(None)
        written = None
        if self.dist.is_main:
            written = save_checkpoint(
                path, models=self.modules(), optimizers=self.optimizers(), scalers=self.scalers(),
                ema=self.ema, step=self.step, config=self.config, meta=self.meta, extra=self.extra_state(),
            )
        barrier(self.dist)
        return written

    def load(self, path: str | Path, restore_rng: bool = True) -> dict[str, Any]:
        """Resume from a checkpoint written by :meth:`save` (models, optimisers, RNG, data position)."""
        payload = load_checkpoint(
            path, models=self.modules(), optimizers=self.optimizers(), scalers=self.scalers(),
            ema=self.ema, map_location=self.device, restore_rng=restore_rng,
        )
        self.step = int(payload["step"])
        self.load_extra_state(payload["extra"])
        self.samples = []
        return payload


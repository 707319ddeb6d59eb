"""Command line of the course kit: ``python -m gan_utils <command> ...``.

Commands:
  demo    train a small conditional GAN on the offline MNIST sample and write
          a 6x6 sample grid and a loss curve (what ``make demo`` runs)
  train   train a recipe (cgan_mnist, dcgan, wgan_gp, vae, ae_moments, sr)
  sample  draw images from a checkpoint into an .npz file
  eval    sample-quality metrics (FID, KID, IS, ...) of a checkpoint or .npz,
          as one JSON line tagged with the feature extractor; for a VAE
          checkpoint the test NLL and bits per dim, for an SR one MSE / LPIPS
  data    show which dataset a name resolves to (real or offline fallback)
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gan_utils",
        description="Course kit on deep generative models: training, sampling and data tools.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'python -m gan_utils <command> --help' for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True

    from gan_utils import demo

    demo.register(sub)
    try:
        from gan_utils.train import cli as train_cli
    except ImportError as err:  # keep `demo`/`data` usable while a part is missing
        _missing(sub, "train", f"training is unavailable: {err}")
        _missing(sub, "sample", f"sampling is unavailable: {err}")
    else:
        train_cli.register(sub)
    try:
        from gan_utils.metrics import cli as metrics_cli
    except ImportError as err:
        _missing(sub, "eval", f"evaluation is unavailable: {err}")
    else:
        metrics_cli.register(sub)
    _register_data(sub)
    return parser


def _missing(sub, name: str, reason: str) -> None:
    p = sub.add_parser(name, help=reason)
    p.set_defaults(func=lambda args: (print(reason, file=sys.stderr), 2)[1])


def _register_data(sub) -> None:
    p = sub.add_parser("data", help="resolve a dataset name and print what it holds")
    p.add_argument("name", help="mnist, stl10, celeba64 or npy:<path>")
    p.add_argument("--split", default="train")
    p.add_argument("--root", default=None, help="data root (default: $GAN_UTILS_DATA or ~/.cache/gan_utils/data)")
    p.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from gan_utils.data import load_dataset

    ds = load_dataset(args.name, split=args.split, root=args.root)
    image, label = ds[0]
    print(f"{ds.name}: {len(ds)} images of shape {tuple(image.shape)}, "
          f"range [{image.min():.2f}, {image.max():.2f}], first label {label}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

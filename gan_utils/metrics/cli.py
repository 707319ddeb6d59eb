"""The ``eval`` command of ``python -m gan_utils``: sample-quality metrics as one JSON line.

    python -m gan_utils eval out/cgan/checkpoint.pt --metrics fid,kid,is --ref mnist
    python -m gan_utils eval samples.npz --metrics fid,is --ref ref.npz --extractor inception --weights ~/inception_v3_google-0cc3c7bd.pth
    python -m gan_utils eval out/cgan/checkpoint.pt --metrics fid --ref mnist --save-ref-stats mnist_lenet.npz
    python -m gan_utils eval out/cgan/checkpoint.pt --metrics fid --ref mnist_lenet.npz

``CHECKPOINT_OR_NPZ`` is a kit checkpoint (``--n`` samples drawn from its
generator, 5,000 by default, streamed in batches), an ``.npz`` with ``images``
(N, C, H, W) in [0, 1] (``python -m gan_utils sample`` writes one), or a dataset
name (``mnist:test``, to score real data itself). ``--ref`` is a dataset name
(``mnist`` = its ``train`` split; ``mnist:test``), an ``.npz`` of images, or an
``.npz`` of FID statistics written by ``--save-ref-stats``.

Metrics: ``fid``, ``kid``, ``is``, ``mode_score``, ``mmd``, ``swd`` (sliced
Wasserstein), ``pr`` (precision / recall). Every number's key carries the
extractor (``"fid@lenet"``) and the line has an ``"extractor"`` field. The JSON
line is printed and written to ``<CHECKPOINT_OR_NPZ>.eval.json`` (or ``--out``).

Extractors: ``lenet`` (the kit's MNIST classifier, offline; trained and cached
on first use, ~1 min on 2 cores), ``inception`` (torchvision's ImageNet
Inception-v3) and ``fid-inception`` (the TF-2015 FID network); the Inception
ones need a local weights file: ``--weights PATH`` or the default location
described in :mod:`gan_utils.metrics.extractors`. Nothing is downloaded.

Model checkpoints are recognised by their recipe and scored on the ``test``
split of their dataset instead (``--metrics`` and ``--ref`` do not apply):

    python -m gan_utils eval out/vae/checkpoint.pt --k 2000
    python -m gan_utils eval out/sr/checkpoint.pt --weights ~/alexnet-owt-7be5be79.pth

* VAE (``trainer_kind == "vae"``, ``model_kind == "vae"``): ``{"nll_nats", "bpd",
  "k", ...}``, the importance-sampled NLL with ``--k`` samples (default 2000) on
  ``--n`` test images (default all); ``bpd`` is ``null`` with a ``bpd_reason`` for
  a Bernoulli decoder (:mod:`gan_utils.metrics.likelihood_eval`; ``--binarize``
  scores binarized images).
* SR (``trainer_kind == "sr"``): ``{"mse", "lpips", "mse_bilinear", "lpips_bilinear", ...}``
  averaged over ``--n`` test images (default all, at most 1000); ``lpips`` is
  ``null`` with an ``lpips_reason`` when the AlexNet weights are not on this machine
  (``--weights PATH``, ``$GAN_UTILS_WEIGHTS`` or ``$TORCH_HOME/hub/checkpoints``;
  :mod:`gan_utils.metrics.sr_eval`).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path
from typing import Any

__all__ = ["model_checkpoint_kind", "register", "run_eval", "run_model_eval"]


def register(subparsers: Any) -> None:
    """Add the ``eval`` sub-command to an argparse ``subparsers`` object."""
    from gan_utils.metrics.evaluate import METRICS
    from gan_utils.metrics.extractors import EXTRACTORS

    p = subparsers.add_parser(
        "eval", help="sample-quality metrics (FID, KID, IS, ...) of a checkpoint or .npz as one JSON line "
                     "(VAE checkpoints: test NLL and bits per dim; SR checkpoints: MSE and LPIPS)",
        description="Compute sample-quality metrics through one feature extractor and print one JSON line "
                    "(also written to <CHECKPOINT_OR_NPZ>.eval.json). VAE checkpoints print nll_nats, bpd and k "
                    "(importance sampling with --k samples on the test split); SR checkpoints print mse, lpips and "
                    "mse_bilinear (averaged over --n test images).")
    p.add_argument("source", metavar="CHECKPOINT_OR_NPZ", help="kit checkpoint, .npz of images in [0, 1], or dataset name")
    p.add_argument("--metrics", default=None, help=f"comma-separated, from: {', '.join(METRICS)} (default fid,kid,is; "
                                                  "not for VAE / SR checkpoints, which report their own)")
    p.add_argument("--ref", default=None, help="reference: dataset name (mnist, mnist:test, ...), .npz of images, or .npz of FID statistics")
    p.add_argument("--extractor", default="lenet", choices=EXTRACTORS, help="feature network (default lenet)")
    p.add_argument("--weights", default=None, help="weights file of the extractor (Inception: required unless in the default place; "
                                                  "SR checkpoints: the AlexNet of LPIPS, alexnet-owt-7be5be79.pth)")
    p.add_argument("--n", type=int, default=None, help="images to evaluate (checkpoints: samples drawn, default 5000; .npz: first N; "
                                                       "VAE / SR checkpoints: test images, default all / all up to 1000)")
    p.add_argument("--n-ref", type=int, default=None, help="reference images (default: all of the split / file)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed, reference subset and KID subsets")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--batch-size", type=int, default=None, help="images per extractor pass")
    p.add_argument("--data-root", default=None, help="dataset folder (default $GAN_UTILS_DATA or ~/.cache/gan_utils/data)")
    p.add_argument("--splits", type=int, default=10, help="IS / Mode Score splits")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--k", type=int, default=None, help="neighbours of the precision/recall manifolds (default 3); "
                                                       "VAE checkpoints: importance samples per test image (default 2000)")
    p.add_argument("--binarize", action="store_true", help="VAE checkpoints with a Bernoulli decoder: score binarized "
                                                           "test images (x > 0.5) instead of the grey levels")
    p.add_argument("--out", default=None, help="where to write the JSON line (default <CHECKPOINT_OR_NPZ>.eval.json)")
    p.add_argument("--save-ref-stats", default=None, metavar="NPZ", help="also save the reference's FID statistics here")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=run_eval)


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    return value


def _default_out(source: str) -> Path | None:
    path = Path(source).expanduser()
    return path.with_name(path.name + ".eval.json") if path.is_file() else None


def model_checkpoint_kind(source: str) -> str | None:
    """``"vae"`` or ``"sr"`` for a kit checkpoint of a VAE / super-resolution recipe, else ``None``.

    Read from the recipe name in the checkpoint's ``meta`` (an autoencoder, ``model_kind == "ae"``,
    has no likelihood and is ``None``: its samples are scored like a GAN's).
    """
    from gan_utils.recipes import get_recipe
    from gan_utils.train.checkpoint import load_checkpoint

    path = Path(source).expanduser()
    if path.suffix == ".npz" or not path.is_file():
        return None
    try:
        payload = load_checkpoint(path)
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError):
        return None  # not a kit checkpoint: open_source says what it is not
    meta, config = payload.get("meta") or {}, payload.get("config") or {}
    if meta.get("recipe") is None:
        return None
    kind = get_recipe(meta["recipe"]).trainer_kind
    if kind == "vae":
        return "vae" if config.get("model_kind", "vae") == "vae" else None
    return "sr" if kind == "sr" else None


def run_model_eval(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The JSON line of a VAE (``kind="vae"``) or SR checkpoint (see the module docstring)."""
    from gan_utils.device import select_device

    options = {"--metrics": args.metrics, "--ref": args.ref, "--save-ref-stats": args.save_ref_stats}
    if kind == "vae":
        options["--weights"] = args.weights
    else:
        options.update({"--k": args.k, "--binarize": args.binarize or None})
    unused = [flag for flag, value in options.items() if value is not None]
    if unused:
        raise ValueError(f"{args.source} is {'a VAE' if kind == 'vae' else 'an SR'} checkpoint, scored on its test split "
                         f"({'nll_nats, bpd' if kind == 'vae' else 'mse, lpips, mse_bilinear'}); "
                         f"{', '.join(unused)} do not apply to it")
    device = select_device(args.device)
    if kind == "vae":
        from gan_utils.metrics.likelihood_eval import DEFAULT_K, evaluate_vae_checkpoint

        k = DEFAULT_K if args.k is None else args.k
        return evaluate_vae_checkpoint(args.source, k=k, n=args.n, seed=args.seed, device=device,
                                       batch_size=args.batch_size or 100, root=args.data_root,
                                       binarize=args.binarize, progress=not args.no_progress)
    from gan_utils.metrics.sr_eval import evaluate_sr_checkpoint

    return evaluate_sr_checkpoint(args.source, n=args.n, seed=args.seed, device=device,
                                  batch_size=args.batch_size or 64, root=args.data_root, lpips_trunk=args.weights,
                                  progress=not args.no_progress)


def _write_line(line: dict[str, Any], args: argparse.Namespace) -> None:
    text = json.dumps({k: _json_float(v) for k, v in line.items()}, sort_keys=False)
    print(text)
    out = Path(args.out) if args.out else _default_out(args.source)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"wrote {out}", file=sys.stderr)


def run_eval(args: argparse.Namespace) -> int:
    """``eval`` command: print one JSON line of tagged metrics and write it beside the source. Returns 0."""
    kind = model_checkpoint_kind(args.source)
    if kind is not None:
        _write_line(run_model_eval(args, kind), args)
        return 0
    from gan_utils.device import select_device
    from gan_utils.metrics.evaluate import (
        evaluate_samples,
        is_reference_statistics,
        load_reference_statistics,
        parse_metrics,
        reference_statistics,
        save_reference_statistics,
    )
    from gan_utils.metrics.extractors import load_extractor
    from gan_utils.metrics.sources import open_source

    metrics = parse_metrics(args.metrics or "fid,kid,is")
    device = select_device(args.device)
    batch = args.batch_size or 500
    samples = open_source(args.source, args.n, seed=args.seed, batch_size=batch, device=device, root=args.data_root)
    if args.extractor == "lenet" and args.weights is None:
        from gan_utils.metrics.extractors import LeNetExtractor
        from gan_utils.metrics.mnist_classifier import load_mnist_classifier

        clf = load_mnist_classifier(root=args.data_root, train_if_missing=False)
        if clf is None:
            print("training the LeNet feature network on real MNIST once (~1 min on 2 cores); it is cached for later runs",
                  file=sys.stderr)
            clf = load_mnist_classifier(root=args.data_root, progress=not args.no_progress)
        extractor = LeNetExtractor(clf, device=device, batch_size=batch)
    else:
        extractor = load_extractor(args.extractor, args.weights, device=device, batch_size=args.batch_size)

    ref = None
    if args.ref is not None:
        if is_reference_statistics(args.ref):
            ref = load_reference_statistics(args.ref)
        else:
            ref = open_source(args.ref, args.n_ref, seed=args.seed, batch_size=batch, device=device, root=args.data_root)
    if args.save_ref_stats:
        if ref is None or not hasattr(ref, "make_batches"):
            raise ValueError("--save-ref-stats needs --ref images (a dataset name or an .npz of images)")
        saved = save_reference_statistics(args.save_ref_stats, reference_statistics(ref, extractor, not args.no_progress))
        print(f"wrote FID statistics of {ref.name} ({args.extractor}) to {saved}", file=sys.stderr)

    result = evaluate_samples(samples, extractor, metrics, ref, is_splits=args.splits, kid_subsets=args.kid_subsets,
                              kid_subset_size=args.kid_subset_size, pr_k=3 if args.k is None else args.k, seed=args.seed,
                              progress=not args.no_progress)
    line = {"source": samples.name, **result, "extractor_info": extractor.info, "source_info": samples.info}
    if ref is not None and hasattr(ref, "info"):
        line["ref_info"] = ref.info
    _write_line(line, args)
    return 0

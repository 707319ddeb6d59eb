"""Throughput of the kit's streaming FID path vs torchmetrics' ``FrechetInceptionDistance``.

Both paths see the same images through the same feature network, in one
process, with the same batch size; repeats alternate (kit, torchmetrics, kit,
...). Each path's time covers everything from the first batch to the number:
the forward passes, the float64 running sums, and the final Frechet distance.

* kit: :func:`gan_utils.metrics.accumulate_features` (shifted float64 sums of
  ``x`` and ``x x^T`` on the extractor's device) for real and fake, then
  :func:`gan_utils.metrics.frechet_distance` with ``method="eigh"`` (two
  symmetric eigen-decompositions), as ``evaluate_samples`` does;
* torchmetrics: ``FrechetInceptionDistance(feature=<the same network>)``,
  ``update(real=True/False)`` per batch and ``compute()`` (``eigvals``).

Two feature networks:

* ``--extractor lenet``: the kit's MNIST classifier (random weights unless
  ``--weights``) on 1x28x28 images: 128-d features, the network is cheap, so the
  statistics dominate;
* ``--extractor identity``: the images *are* 2048-d features (``(N, 2048, 1, 1)``),
  which measures the accumulation and the 2048-d Frechet distance alone, the
  part that differs between the two implementations when Inception runs.

Reported: images (feature vectors) per second of each, on the wall clock and on
the process CPU clock, their ratio (kit / torchmetrics; above 1 the kit is
faster), and the two FID values (they must agree).

    python benchmarks/bench_metrics.py --n 20000 --repeats 3
    python benchmarks/bench_metrics.py --extractor identity --n 10000 --repeats 3
    python benchmarks/bench_metrics.py --device cuda --n 50000 --batch-size 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import Tensor, nn

from gan_utils.metrics import (
    FeatureExtractor,
    LeNetExtractor,
    MnistClassifier,
    accumulate_features,
    frechet_distance,
    load_extractor,
    tensor_source,
)


class IdentityExtractor(FeatureExtractor):
    """Images ``(N, D, 1, 1)`` in [0, 1] are their own ``D``-d features (one dummy class)."""

    name, num_classes = "identity", 1

    def __init__(self, dim: int, device: torch.device, batch_size: int) -> None:
        self.feature_dim = dim
        super().__init__(nn.Identity(), device, batch_size)

    def _check_shape(self, images: Tensor) -> None:
        if tuple(images.shape[1:]) != (self.feature_dim, 1, 1):
            raise ValueError(f"expected (N, {self.feature_dim}, 1, 1), got {tuple(images.shape)}")

    def _forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        f = batch.flatten(1)
        return f, f[:, :1]


class AsFeatureModule(nn.Module):
    """The extractor's features as a torchmetrics feature module (float64 out, ``num_features`` set)."""

    def __init__(self, extractor: FeatureExtractor) -> None:
        super().__init__()
        self.extractor, self.num_features = extractor, extractor.feature_dim

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return self.extractor._forward(x.to(self.extractor.device, torch.float32))[0].double()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def kit_fid(real: Tensor, fake: Tensor, ext: FeatureExtractor, batch_size: int) -> float:
    r = accumulate_features(tensor_source(real, batch_size), ext, progress=False)
    f = accumulate_features(tensor_source(fake, batch_size), ext, progress=False)
    # method="eigh": what evaluate_samples (and so `python -m gan_utils eval`) uses
    return frechet_distance(f.moments.mean, f.moments.covariance, r.moments.mean, r.moments.covariance, method="eigh")


def torchmetrics_fid(real: Tensor, fake: Tensor, ext: FeatureExtractor, batch_size: int) -> float:
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=AsFeatureModule(ext)).to(ext.device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, images.shape[0], batch_size):
            metric.update(images[start:start + batch_size].to(ext.device), real=is_real)
    return float(metric.compute())


def make_data(args: argparse.Namespace, device: torch.device) -> tuple[Tensor, Tensor, FeatureExtractor]:
    g = torch.Generator().manual_seed(args.seed)
    if args.extractor == "identity":
        ext = IdentityExtractor(args.dim, device, args.batch_size)
        shape = (args.n, args.dim, 1, 1)
    else:
        if args.weights:
            ext = load_extractor("lenet", args.weights, device=device, batch_size=args.batch_size)
        else:
            torch.manual_seed(args.seed)
            ext = LeNetExtractor(MnistClassifier(), device=device, batch_size=args.batch_size)
        shape = (args.n, 1, 28, 28)
    real = torch.rand(shape, generator=g)
    fake = (torch.rand(shape, generator=g) * 0.9).clamp(0, 1)
    return real, fake, ext


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    real, fake, ext = make_data(args, device)
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in ("kit", "torchmetrics")}
    values: dict[str, float] = {}
    fns = {"kit": kit_fid, "torchmetrics": torchmetrics_fid}
    for r in range(args.repeats + 1):  # the first round warms up and is dropped
        for name in ("kit", "torchmetrics") if r % 2 == 0 else ("torchmetrics", "kit"):
            _sync(device)
            start = _clock()
            values[name] = fns[name](real, fake, ext, args.batch_size)
            _sync(device)
            end = _clock()
            if r > 0:
                times[name]["wall"].append(end[0] - start[0])
                times[name]["cpu"].append(end[1] - start[1])
    total = 2 * args.n
    out = {"device": str(device), "threads": torch.get_num_threads(), "extractor": ext.name,
           "feature_dim": ext.feature_dim, "n_per_side": args.n, "batch_size": args.batch_size,
           "repeats": args.repeats, "fid_kit": values["kit"], "fid_torchmetrics": values["torchmetrics"],
           "fid_rel_diff": abs(values["kit"] - values["torchmetrics"]) / max(abs(values["torchmetrics"]), 1e-300)}
    for clock in ("wall", "cpu"):
        kit_s, tm_s = statistics.median(times["kit"][clock]), statistics.median(times["torchmetrics"][clock])
        out[clock] = {"kit_seconds": kit_s, "torchmetrics_seconds": tm_s,
                      "kit_features_per_s": total / kit_s, "torchmetrics_features_per_s": total / tm_s,
                      "ratio_kit_over_torchmetrics_throughput": tm_s / kit_s}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--extractor", default="lenet", choices=("lenet", "identity"))
    p.add_argument("--weights", default=None, help="LeNet weights file (default: random weights; speed is the same)")
    p.add_argument("--dim", type=int, default=2048, help="feature dimension of the identity extractor")
    p.add_argument("--n", type=int, default=10000, help="images per side (real and fake)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (after one warm-up round)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    res = run(args)
    w, c = res["wall"], res["cpu"]
    print(f"{res['extractor']} ({res['feature_dim']}-d), {res['n_per_side']} per side, batch {res['batch_size']}, "
          f"{res['device']}, {res['threads']} threads, {res['repeats']} repeats")
    print(f"  wall: kit {w['kit_features_per_s']:.0f} / torchmetrics {w['torchmetrics_features_per_s']:.0f} "
          f"features/s = x{w['ratio_kit_over_torchmetrics_throughput']:.3f}")
    print(f"  cpu:  kit {c['kit_features_per_s']:.0f} / torchmetrics {c['torchmetrics_features_per_s']:.0f} "
          f"features/s = x{c['ratio_kit_over_torchmetrics_throughput']:.3f}")
    print(f"  FID kit {res['fid_kit']:.10g}, torchmetrics {res['fid_torchmetrics']:.10g} "
          f"(relative difference {res['fid_rel_diff']:.2e})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

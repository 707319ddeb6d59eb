"""Step time of the ``sr`` recipe (SRTrainer) vs a plain hand-written PyTorch loop on the same U-Net.

Both train the recipe's networks (``SRUNetGenerator`` + ``PatchDiscriminator``,
identical initial weights) with the recipe's settings: batch 32 of 64x64
images, inputs degraded 64 -> 16 -> 64 (antialiased bilinear down, bilinear
up), D loss BCE(real, 1) + BCE(fake, 0), G loss MSE + non-saturating BCE 1:1,
Adam 2e-4 (0.5, 0.999) for both. Same in-memory data, one process, steps
alternating: after every kit step (timed from the previous callback to this
one, so all of the trainer's per-step bookkeeping counts) a callback runs and
times one plain step (the :class:`Interleave` of ``bench_trainer.py``). Medians
of both and their ratio (kit / plain; below 1 the kit is faster) on the wall
clock and on the process CPU clock.

The plain loop is written the way the PyTorch DCGAN example writes its step: D
on real (backward), D on ``G(x_lr).detach()`` (backward), D step; then G's loss
through D on the same output plus the MSE (backward), G step; ``.item()`` on the
D outputs as the example logs them.

    python benchmarks/bench_sr.py --threads 1 --steps 20 --repeats 3       # CPU
    python benchmarks/bench_sr.py --device cuda --steps 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from bench_trainer import Interleave, clock_summary
from torch import nn
from torch.utils.data import TensorDataset

from gan_utils.recipes import get_recipe

RATIO_TARGET = 1.05


class PlainSR:
    """The super-resolution GAN step, written out by hand in plain PyTorch."""

    def __init__(self, G: nn.Module, D: nn.Module, data: torch.Tensor, batch_size: int, low_size: int,
                 device: torch.device, seed: int = 0) -> None:
        self.G, self.D, self.data, self.b, self.low, self.device = G, D, data, batch_size, low_size, device
        self.opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion, self.mse = nn.BCEWithLogitsLoss(), nn.MSELoss()
        self.g = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(len(data), generator=self.g), 0

    def step(self) -> None:
        if self.pos + self.b > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.data), generator=self.g), 0
        real = self.data[self.perm[self.pos:self.pos + self.b]].to(self.device, non_blocking=True)
        self.pos += self.b
        with torch.no_grad():  # the generator's input: 64 -> 16 -> 64
            low = F.interpolate(real, size=self.low, mode="bilinear", align_corners=False, antialias=True)
            degraded = F.interpolate(low, size=real.shape[-2:], mode="bilinear", align_corners=False)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(x_lr)))
        self.D.zero_grad()
        output = self.D(real)
        err_real = self.criterion(output, torch.ones_like(output))
        err_real.backward()
        _d_x = output.mean().item()
        fake = self.G(degraded)
        output = self.D(fake.detach())
        err_fake = self.criterion(output, torch.zeros_like(output))
        err_fake.backward()
        _d_g_z1 = output.mean().item()
        self.opt_d.step()
        # (2) update G: maximize log(D(G(x_lr))) and minimise the MSE to x
        self.G.zero_grad()
        output = self.D(fake)
        err_g = self.criterion(output, torch.ones_like(output)) + self.mse(fake, real)
        err_g.backward()
        _d_g_z2 = output.mean().item()
        self.opt_g.step()


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    n = max(4 * args.batch_size, 256)
    images = torch.rand(n, 3, args.image_size, args.image_size) * 2 - 1
    recipe = get_recipe("sr")
    timer = Interleave(None, device, args.warmup)  # the plain loop is attached below, once its models exist
    trainer = recipe.build(TensorDataset(images), model={"base": args.base}, steps=args.steps + args.warmup,
                           batch_size=args.batch_size, device=args.device, progress=False, log_every=50,
                           seed=args.seed, low_size=args.low_size, callbacks=[timer])
    models = recipe.build_models(**trainer.meta["model_kwargs"])
    models["generator"].load_state_dict(trainer.generator.state_dict())
    models["discriminator"].load_state_dict(trainer.discriminator.state_dict())
    timer.plain = PlainSR(models["generator"].to(device), models["discriminator"].to(device), images,
                          args.batch_size, args.low_size, device, seed=args.seed)
    trainer.train()
    out = {"device": str(device), "threads": torch.get_num_threads(), "batch_size": args.batch_size,
           "image_size": args.image_size, "base": args.base, "low_size": args.low_size,
           "steps_timed": len(timer.kit["wall"])}
    out.update(clock_summary(timer))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32, help="the recipe's 32")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--low-size", type=int, default=16)
    p.add_argument("--base", type=int, default=32, help="U-Net / discriminator width (the recipe's 32)")
    p.add_argument("--steps", type=int, default=20, help="timed steps of each")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="independent runs (fresh models each)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    results = []
    for r in range(args.repeats):
        res = run(argparse.Namespace(**{**vars(args), "seed": args.seed + r}))
        results.append(res)
        w, c = res["wall"], res["cpu"]
        print(f"repeat {r}: wall kit {w['kit_ms_median']:.1f} / plain {w['plain_ms_median']:.1f} ms/step "
              f"= {w['ratio_kit_over_plain']:.3f}; cpu kit {c['kit_ms_median']:.1f} / plain "
              f"{c['plain_ms_median']:.1f} ms/step = {c['ratio_kit_over_plain']:.3f} ({res['device']}, "
              f"{res['threads']} threads, batch {res['batch_size']}, {res['image_size']}px, base {res['base']})")
    summary = {clock: statistics.median(r[clock]["ratio_kit_over_plain"] for r in results) for clock in ("wall", "cpu")}
    verdict = "met" if summary["cpu"] <= RATIO_TARGET else "NOT met"
    print(f"median ratio kit/plain over {len(results)} repeat(s): wall {summary['wall']:.3f}, cpu {summary['cpu']:.3f} "
          f"(target <= {RATIO_TARGET:.2f}: {verdict})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"repeats": results, "median_ratio": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Step time of the kit's GANTrainer vs a plain hand-written DCGAN loop.

Both train the same DCGAN (the kit's ``DCGANGenerator`` / ``DCGANDiscriminator``,
identical initial weights) on the same in-memory batch size and data, in one
process. Steps alternate: after every trainer step (timed from the previous
callback to this one, so all of the trainer's per-step bookkeeping counts) a
callback runs and times one step of the plain loop. The report gives median
milliseconds per step of each and their ratio (trainer / plain; below 1 means
the kit is faster), on the wall clock and on the process CPU clock (the latter
is the steadier number on a machine shared with other jobs).

The plain loop is the PyTorch DCGAN example's: D on real (backward), D on
``G(z).detach()`` (backward), D step; then G's loss through D on the same fakes
(backward), G step; ``.item()`` on the D outputs as the example logs them.

    python benchmarks/bench_trainer.py                       # CPU defaults
    python benchmarks/bench_trainer.py --device cuda --width 128 --batch-size 128 --steps 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from gan_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gan_utils.train import Callback, GANTrainConfig, GANTrainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainDCGAN:
    """The PyTorch-examples DCGAN step, written out by hand."""

    def __init__(self, G: nn.Module, D: nn.Module, data: torch.Tensor, batch_size: int, z_dim: int,
                 device: torch.device, seed: int = 0) -> None:
        self.G, self.D, self.data, self.b, self.z_dim, self.device = G, D, data, batch_size, z_dim, device
        self.opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.criterion = nn.BCEWithLogitsLoss()
        self.g = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(len(data), generator=self.g), 0

    def step(self) -> None:
        if self.pos + self.b > len(self.perm):
            self.perm, self.pos = torch.randperm(len(self.data), generator=self.g), 0
        real = self.data[self.perm[self.pos:self.pos + self.b]].to(self.device, non_blocking=True)
        self.pos += self.b
        b = real.shape[0]
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.D.zero_grad()
        label = torch.full((b,), 1.0, device=self.device)
        output = self.D(real)
        err_real = self.criterion(output, label)
        err_real.backward()
        _d_x = output.mean().item()
        noise = torch.randn(b, self.z_dim, device=self.device)
        fake = self.G(noise)
        label.fill_(0.0)
        output = self.D(fake.detach())
        err_fake = self.criterion(output, label)
        err_fake.backward()
        _d_g_z1 = output.mean().item()
        self.opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        self.G.zero_grad()
        label.fill_(1.0)
        output = self.D(fake)
        err_g = self.criterion(output, label)
        err_g.backward()
        _d_g_z2 = output.mean().item()
        self.opt_g.step()


class Interleave(Callback):
    """Times each trainer step (between callbacks) and runs + times one plain step after it.

    Two clocks: wall time (``perf_counter``) and process CPU time
    (``process_time``, all threads), which other processes on a shared machine
    disturb much less.
    """

    def __init__(self, plain: PlainDCGAN, device: torch.device, warmup: int) -> None:
        self.plain, self.device, self.warmup = plain, device, warmup
        self.kit: dict[str, list[float]] = {"wall": [], "cpu": []}
        self.ref: dict[str, list[float]] = {"wall": [], "cpu": []}
        self.last: tuple[float, float] | None = None

    @staticmethod
    def _now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def _record(self, into: dict[str, list[float]], start: tuple[float, float], end: tuple[float, float]) -> None:
        into["wall"].append(1e3 * (end[0] - start[0]))
        into["cpu"].append(1e3 * (end[1] - start[1]))

    def on_step(self, trainer: GANTrainer, step: int) -> None:
        _sync(self.device)
        now = self._now()
        if self.last is not None and step > self.warmup:
            self._record(self.kit, self.last, now)
        start = self._now()
        self.plain.step()
        _sync(self.device)
        if step > self.warmup:
            self._record(self.ref, start, self._now())
        self.last = self._now()


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    kw = dict(width=args.width, image_size=args.image_size)
    G, D = dcgan_init(DCGANGenerator(z_dim=100, out_channels=3, **kw)), dcgan_init(DCGANDiscriminator(in_channels=3, **kw))
    G2, D2 = DCGANGenerator(z_dim=100, out_channels=3, **kw), DCGANDiscriminator(in_channels=3, **kw)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    n = max(4 * args.batch_size, 512)
    images = torch.rand(n, 3, args.image_size, args.image_size) * 2 - 1
    plain = PlainDCGAN(G2.to(device), D2.to(device), images, args.batch_size, 100, device, seed=args.seed)
    timer = Interleave(plain, device, args.warmup)
    cfg = GANTrainConfig(batch_size=args.batch_size, steps=args.steps + args.warmup, device=args.device,
                         progress=False, log_every=50, seed=args.seed, amp=args.amp,
                         channels_last=args.channels_last, z_dim=100)
    trainer = GANTrainer(G, D, cfg, torch.utils.data.TensorDataset(images), callbacks=[timer])
    trainer.train()
    out = {"device": str(device), "threads": torch.get_num_threads(), "batch_size": args.batch_size,
           "image_size": args.image_size, "width": args.width, "steps_timed": len(timer.kit["wall"]),
           "amp": args.amp}
    out.update(clock_summary(timer))
    return out


def clock_summary(timer) -> dict:
    """Per clock (wall, cpu): the medians of the kit's and the plain loop's step times, their ratio
    and the quartiles (``timer`` has ``kit`` and ``ref`` dicts of per-step milliseconds)."""
    out = {}
    for clock in ("wall", "cpu"):
        kit, ref = statistics.median(timer.kit[clock]), statistics.median(timer.ref[clock])
        out[clock] = {"kit_ms_median": kit, "plain_ms_median": ref, "ratio_kit_over_plain": kit / ref,
                      "kit_ms_quartiles": statistics.quantiles(timer.kit[clock], n=4),
                      "plain_ms_quartiles": statistics.quantiles(timer.ref[clock], n=4)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--width", type=int, default=32, help="DCGAN width (128 = Penn Table 2)")
    p.add_argument("--steps", type=int, default=30, help="timed steps of each")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1, help="independent runs (fresh models each)")
    p.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"), help="trainer AMP (plain loop stays fp32)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    results = []
    for r in range(args.repeats):
        args_r = argparse.Namespace(**{**vars(args), "seed": args.seed + r})
        res = run(args_r)
        results.append(res)
        w, c = res["wall"], res["cpu"]
        print(f"repeat {r}: wall kit {w['kit_ms_median']:.1f} / plain {w['plain_ms_median']:.1f} ms/step "
              f"= {w['ratio_kit_over_plain']:.3f}; cpu kit {c['kit_ms_median']:.1f} / plain "
              f"{c['plain_ms_median']:.1f} ms/step = {c['ratio_kit_over_plain']:.3f} ({res['device']}, "
              f"{res['threads']} threads, batch {res['batch_size']}, {res['image_size']}px, width {res['width']})")
    summary = {clock: statistics.median(r[clock]["ratio_kit_over_plain"] for r in results) for clock in ("wall", "cpu")}
    print(f"median ratio kit/plain over {len(results)} repeat(s): wall {summary['wall']:.3f}, cpu {summary['cpu']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"repeats": results, "median_ratio": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

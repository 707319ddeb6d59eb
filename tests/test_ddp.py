"""DDP on gloo with two processes equals one process on the same global batch.

The worker half of this file runs under ``torchrun`` (``python -m
torch.distributed.run --standalone --nproc_per_node=2 tests/test_ddp.py OUT``); the
test half launches it and compares the parameters with a single-process run
that sees the same data and noise (batch ``2B`` instead of ``2 x B``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

PER_RANK_BATCH = 4
STEPS = 3
KINDS = {
    "bce": dict(loss="nonsaturating"),
    "gp": dict(loss="wgan", gp_weight=10.0, n_critic=2),
    "r1_ema": dict(loss="hinge", r1_gamma=1.0, ema_decay=0.9),
}


class TinyG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.z_dim = 4
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2 * 4 * 4), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 2, 4, 4)


class TinyD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def make_run(kind: str, batch_size: int, dist=None):
    from gan_utils.train import GANTrainConfig, GANTrainer

    data = TensorDataset(torch.rand(64, 2, 4, 4, generator=torch.Generator().manual_seed(77)) * 2 - 1)
    # rank 1 starts from other weights: DDP must broadcast rank 0's before anything copies them
    torch.manual_seed(1234 + (dist.rank if dist is not None else 0))
    G, D = TinyG(), TinyD()
    cfg = GANTrainConfig(batch_size=batch_size, steps=STEPS, lr_g=1e-3, lr_d=1e-3, device="cpu",
                         progress=False, log_every=1, seed=5, **KINDS[kind])
    return GANTrainer(G, D, cfg, data, dist=dist)


def _params(trainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v.detach().clone() for k, v in trainer.generator.state_dict().items()}
    out.update({f"D.{k}": v.detach().clone() for k, v in trainer.discriminator.state_dict().items()})
    if trainer.ema is not None:
        out.update({f"EMA.{k}": v.detach().clone() for k, v in trainer.ema.module.state_dict().items()})
    return out


def _worker(out: str) -> None:
    torch.set_num_threads(1)
    from gan_utils.train.distributed import cleanup_distributed, init_distributed

    ctx = init_distributed("cpu")
    assert ctx.world_size == 2 and ctx.backend == "gloo", ctx
    results = {}
    for kind in KINDS:
        trainer = make_run(kind, PER_RANK_BATCH, dist=ctx)
        assert isinstance(trainer.d_train, nn.parallel.DistributedDataParallel)
        assert isinstance(trainer.g_train, nn.parallel.DistributedDataParallel)
        trainer.train()
        results[kind] = _params(trainer)
    torch.save(results, f"{out}.rank{ctx.rank}")
    cleanup_distributed()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Parameters after training each kind under torchrun, one dict per rank (one launch for all)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    out = tmp_path_factory.mktemp("ddp") / "params"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(out)]
    # own process group, so a hung worker is ended with its launcher
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail("torchrun did not finish in 180 s:\n" + log[-3000:])
    assert proc.returncode == 0, log[-4000:]
    return [torch.load(f"{out}.rank{r}", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_ddp_two_processes_match_single_process(ddp_results: list[dict], kind: str) -> None:
    single = make_run(kind, 2 * PER_RANK_BATCH)
    single.train()
    expected = _params(single)
    ranks = [res[kind] for res in ddp_results]
    for name, ref in expected.items():
        for r, got in enumerate(ranks):
            torch.testing.assert_close(got[name], ref, rtol=1e-4, atol=2e-5,
                                       msg=lambda m, n=name, r=r: f"rank {r}, {n}: {m}")
    # the ranks' own parameters are identical (DDP keeps them in sync)
    for name in expected:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    # and the run really trained: parameters moved from the initial values
    fresh = _params(make_run(kind, 2 * PER_RANK_BATCH))
    assert any(not torch.equal(fresh[k], expected[k]) for k in expected if k.startswith("G."))


if __name__ == "__main__":
    _worker(sys.argv[1])

"""Checkpoints: atomic writes and bit-exact resume on CPU (~10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from test_train_helpers import CondD, CondG, ItemDataset, TinyD, TinyG, image_data, same, snapshot

from gan_utils.train import GANTrainConfig, GANTrainer, load_checkpoint, save_checkpoint
from gan_utils.train.checkpoint import atomic_save

N_STEPS = 8

CASES = {
    # batch-norm G (buffers), EMA, in-memory tensors
    "bce_ema_bn": dict(config=dict(ema_decay=0.9), G=lambda: TinyG(batchnorm=True), D=TinyD, data="tensor"),
    # gradient penalty draws interpolation noise; two critic steps; DataLoader path
    "wgan_gp": dict(config=dict(loss="wgan", gp_weight=10.0, n_critic=2, reuse_fake=False), G=TinyG, D=TinyD,
                    data="items"),
    # conditional models, R1
    "conditional_r1": dict(config=dict(r1_gamma=1.0), G=CondG, D=CondD, data="tensor"),
}


def build(case: str, seed: int, out_dir: Path | None = None) -> GANTrainer:
    spec = CASES[case]
    torch.manual_seed(seed)  # fresh objects get different initial weights
    data = image_data(n=40, num_classes=3)  # 5 batches per epoch: resuming crosses epochs
    if spec["data"] == "items":
        data = ItemDataset(*data.tensors)
    cfg = GANTrainConfig(batch_size=8, steps=N_STEPS, progress=False, device="cpu", log_every=3, seed=3,
                         out_dir=None if out_dir is None else str(out_dir), **spec["config"])
    return GANTrainer(spec["G"](), spec["D"](), cfg, data)


def state(trainer: GANTrainer) -> dict[str, torch.Tensor]:
    out = {f"G.{k}": v for k, v in trainer.generator.state_dict().items()}
    out.update({f"D.{k}": v for k, v in trainer.discriminator.state_dict().items()})
    if trainer.ema is not None:
        out.update({f"EMA.{k}": v for k, v in trainer.ema.module.state_dict().items()})
    for name, opt in (("optG", trainer.opt_g), ("optD", trainer.opt_d)):
        for i, s in opt.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": v for k, v in s.items() if isinstance(v, torch.Tensor)})
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_resume_is_bit_exact(case: str, tmp_path: Path) -> None:
    straight = build(case, seed=0)
    straight.train()

    first = build(case, seed=0)
    first.train(until=N_STEPS // 2)
    path = first.save(tmp_path / "half.pt")
    torch.manual_seed(999)  # disturb the global RNG: the checkpoint must restore it
    torch.rand(10)

    resumed = build(case, seed=123)
    assert not same(snapshot(resumed.generator), snapshot(first.generator))  # really fresh weights
    resumed.load(path)
    assert resumed.step == N_STEPS // 2
    resumed.train()

    expected, got = state(straight), state(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), f"{key} differs after resume"
    assert resumed.history == straight.history
    assert resumed.stream.position == straight.stream.position


def test_checkpoint_contents_and_partial_loading(tmp_path: Path) -> None:
    trainer = build("bce_ema_bn", seed=0, out_dir=tmp_path)
    trainer.meta = {"recipe": "dcgan", "model_kwargs": {"z_dim": 8}}
    trainer.train(until=2)
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert payload["format"] == "gan_utils.checkpoint/1" and payload["step"] == 2
    assert payload["config"]["config_kind"] == "gan" and payload["config"]["ema_decay"] == 0.9
    assert payload["meta"]["recipe"] == "dcgan"
    assert set(payload["models"]) == {"generator", "discriminator"}
    assert set(payload["rng"]) == {"python", "numpy", "torch", "cuda"}
    G = TinyG(batchnorm=True)
    load_checkpoint(tmp_path / "checkpoint.pt", models={"generator": G})
    for k, v in G.state_dict().items():
        assert torch.equal(v, trainer.generator.state_dict()[k])
    with pytest.raises(KeyError, match="no model named 'critic'"):
        load_checkpoint(tmp_path / "checkpoint.pt", models={"critic": TinyD()})


def test_load_rejects_foreign_files(tmp_path: Path) -> None:
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gan_utils checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    save_checkpoint(target, models={"g": TinyG()}, step=1)
    before = target.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"x": Unpicklable()}, target)
    assert target.read_bytes() == before  # the old checkpoint is untouched
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # and no temp file is left behind

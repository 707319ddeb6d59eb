"""``python -m gan_utils train`` / ``sample`` end to end on tiny budgets (~20 s)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_helpers import CondD, CondG
from torch.utils.data import TensorDataset

import gan_utils.recipes as recipes
from gan_utils.recipes.base import Recipe
from gan_utils.train.cli import build_parser


def cli(*argv: str) -> int:
    args = build_parser().parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture()
def npy_images(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npy"
    np.save(path, rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8))
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_train_then_sample_dcgan(npy_images: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = cli("train", "dcgan", "--dataset", f"npy:{npy_images}", "--image-size", "16", "--steps", "3",
               "--out", out, "--device", "cpu", "--seed", "1", "--batch-size", "8", "--model", "width=4",
               "--sample-every", "2", "--set", "ema_decay=0.5", "--set", "betas=[0.0,0.9]", "--no-progress")
    assert code == 0
    assert "dcgan: 3 steps" in capsys.readouterr().out
    for name in ("checkpoint.pt", "config.json", "meta.json", "history.json", "losses.png",
                 "samples/step_000002.png", "samples/step_000003.png"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert (config["steps"], config["batch_size"], config["seed"], config["ema_decay"], config["betas"]) == (
        3, 8, 1, 0.5, [0.0, 0.9])
    assert len(json.loads((out / "history.json").read_text())["loss_d"]) == 3

    npz = tmp_path / "s.npz"
    assert cli("sample", out / "checkpoint.pt", "--n", "5", "--out", npz, "--device", "cpu") == 0
    with np.load(npz) as f:
        assert sorted(f.files) == ["images"]
        images = f["images"]
    assert images.shape == (5, 3, 16, 16) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0
    # same seed, same samples; --no-ema gives the raw generator
    cli("sample", out / "checkpoint.pt", "--n", "5", "--out", tmp_path / "t.npz", "--device", "cpu")
    cli("sample", out / "checkpoint.pt", "--n", "5", "--out", tmp_path / "u.npz", "--device", "cpu", "--no-ema")
    assert np.array_equal(np.load(tmp_path / "t.npz")["images"], images)
    assert not np.array_equal(np.load(tmp_path / "u.npz")["images"], images)
    with pytest.raises(ValueError, match="unconditional"):
        cli("sample", out / "checkpoint.pt", "--n", "2", "--labels", "1", "--out", tmp_path / "v.npz")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_resume_continues_from_a_checkpoint(npy_images: Path, tmp_path: Path) -> None:
    common = ["--dataset", f"npy:{npy_images}", "--image-size", "16", "--device", "cpu", "--batch-size", "8",
              "--model", "width=4", "--no-progress"]
    cli("train", "dcgan", *common, "--steps", "2", "--out", tmp_path / "a")
    cli("train", "dcgan", *common, "--steps", "4", "--out", tmp_path / "b", "--resume", tmp_path / "a/checkpoint.pt")
    history = json.loads((tmp_path / "b/history.json").read_text())
    assert history["step"] == [1, 2, 3, 4]
    assert torch.load(tmp_path / "b/checkpoint.pt", weights_only=False)["step"] == 4


class TinyConditionalRecipe(Recipe):
    name = "tiny_cond"
    trainer_kind = "gan"

    def model_kwargs(self, dataset, **overrides):
        return {"num_classes": 3, **overrides}

    def build_models(self, num_classes):
        return {"generator": CondG(num_classes), "discriminator": CondD(num_classes)}


def test_sample_labels_for_a_conditional_checkpoint(tmp_path: Path, monkeypatch) -> None:
    module = types.ModuleType("gan_utils.recipes.tiny_cond")
    module.RECIPE = TinyConditionalRecipe()
    monkeypatch.setitem(sys.modules, "gan_utils.recipes.tiny_cond", module)
    monkeypatch.setattr(recipes, "RECIPE_NAMES", (*recipes.RECIPE_NAMES, "tiny_cond"))
    data = TensorDataset(torch.rand(16, 1, 8, 8) * 2 - 1, torch.randint(3, (16,)))
    trainer = module.RECIPE.build(data, steps=2, batch_size=8, out_dir=str(tmp_path / "run"), progress=False,
                                  device="cpu")
    trainer.train()
    npz = tmp_path / "c.npz"
    assert cli("sample", tmp_path / "run/checkpoint.pt", "--n", "5", "--labels", "2,0", "--out", npz) == 0
    with np.load(npz) as f:
        assert f["images"].shape == (5, 1, 8, 8) and f["images"].dtype == np.float32
        assert 0.0 <= f["images"].min() and f["images"].max() <= 1.0
        assert f["labels"].tolist() == [2, 0, 2, 0, 2] and f["labels"].dtype == np.int64
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        cli("sample", tmp_path / "run/checkpoint.pt", "--n", "2", "--labels", "7", "--out", npz)


@pytest.mark.skipif(importlib.util.find_spec("gan_utils.recipes.cgan_mnist") is None,
                    reason="cgan_mnist recipe not present")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cgan_mnist_train_and_sample_with_labels(tmp_path: Path) -> None:
    out = tmp_path / "cgan"
    assert cli("train", "cgan_mnist", "--steps", "2", "--batch-size", "8", "--out", out, "--device", "cpu",
               "--no-progress") == 0
    npz = tmp_path / "d.npz"
    assert cli("sample", out / "checkpoint.pt", "--n", "4", "--labels", "3,7", "--out", npz) == 0
    with np.load(npz) as f:
        assert f["images"].shape[0] == 4 and f["labels"].tolist() == [3, 7, 3, 7]
        assert 0.0 <= f["images"].min() and f["images"].max() <= 1.0


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        cli("train", "nope", "--steps", "1", "--out", tmp_path)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "dcgan", "--set", "no_equals_sign"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sample", "x.pt", "--labels", "a,b", "--out", "y.npz"])
    with pytest.raises(FileNotFoundError):
        cli("sample", tmp_path / "missing.pt", "--n", "2", "--out", tmp_path / "x.npz")


def test_module_entry_point_has_train_and_sample() -> None:
    proc = subprocess.run([sys.executable, "-m", "gan_utils", "sample", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--labels" in proc.stdout, proc.stderr

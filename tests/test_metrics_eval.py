"""``python -m gan_utils eval`` end to end: a tiny kit checkpoint and .npz files, LeNet offline and an
Inception weights file built locally; plus the image sources and PSNR / SSIM / bits per dim."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_utils.__main__ import build_parser, main
from gan_utils.metrics import (
    MnistClassifier,
    classifier_path,
    compute_features,
    feature_statistics,
    frechet_distance,
    load_mnist_tensors,
    open_source,
    psnr,
    ssim,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _json_line(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line, got:\n{out}"
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step cgan_mnist checkpoint and a random-init LeNet weights file."""
    root = tmp_path_factory.mktemp("eval")
    assert main(["train", "cgan_mnist", "--steps", "2", "--batch-size", "8", "--out", str(root / "cgan"),
                 "--device", "cpu", "--no-progress"]) == 0
    torch.manual_seed(0)
    clf = MnistClassifier().eval()
    torch.save({"state_dict": clf.state_dict(), "info": json.dumps({"dataset": "random-init"})}, root / "lenet.pt")
    return root


def test_eval_is_a_registered_command() -> None:
    parser = build_parser()
    args = parser.parse_args(["eval", "x.npz", "--metrics", "fid"])
    assert args.command == "eval" and args.extractor == "lenet"


def test_eval_checkpoint_with_lenet_prints_and_writes_tagged_json(run: Path, capsys) -> None:
    ckpt = run / "cgan" / "checkpoint.pt"
    code = main(["eval", str(ckpt), "--metrics", "fid,kid,is,mode_score,mmd,swd,pr", "--ref", "mnist:test",
                 "--weights", str(run / "lenet.pt"), "--n", "200", "--kid-subset-size", "100", "--no-progress"])
    assert code == 0
    line = _json_line(capsys.readouterr().out)
    assert line["extractor"] == "lenet" and line["n"] == 200
    assert line["n_ref"] == load_mnist_tensors("test")[1].shape[0]  # all of the split
    assert line["source_info"]["recipe"] == "cgan_mnist" and line["ref"].endswith(":test")
    for key in ("fid", "kid", "kid_std", "is", "is_std", "mode_score", "mode_score_std", "mmd", "swd",
                "precision", "recall"):
        assert math.isfinite(line[f"{key}@lenet"]), key
    numbers = [k for k, v in line.items() if isinstance(v, float)]
    assert all(k.endswith("@lenet") for k in numbers), numbers  # no untagged score
    assert 1.0 <= line["is@lenet"] <= 10.0 and 0.0 <= line["precision@lenet"] <= 1.0
    written = ckpt.with_name("checkpoint.pt.eval.json")
    assert json.loads(written.read_text()) == line


def test_eval_npz_fid_matches_an_independent_computation(run: Path, capsys, tmp_path: Path) -> None:
    npz = tmp_path / "s.npz"
    assert main(["sample", str(run / "cgan" / "checkpoint.pt"), "--n", "120", "--out", str(npz)]) == 0
    ref_npz = tmp_path / "ref.npz"
    real = load_mnist_tensors("test")[0][:150]
    np.savez(ref_npz, images=((real + 1) / 2).numpy())
    capsys.readouterr()
    assert main(["eval", str(npz), "--metrics", "fid", "--ref", str(ref_npz), "--weights", str(run / "lenet.pt"),
                 "--no-progress", "--batch-size", "32"]) == 0
    line = _json_line(capsys.readouterr().out)
    # reference: the classifier's features on [-1, 1] images, numpy mean/cov, the Frechet formula
    blob = torch.load(run / "lenet.pt", weights_only=True)
    clf = MnistClassifier()
    clf.load_state_dict(blob["state_dict"])
    with np.load(npz) as f:
        fake = torch.from_numpy(f["images"])
    mu_f, s_f = feature_statistics(compute_features(fake * 2 - 1, clf))
    mu_r, s_r = feature_statistics(compute_features(real, clf))
    assert line["fid@lenet"] == pytest.approx(frechet_distance(mu_f, s_f, mu_r, s_r), rel=1e-5)
    assert line["n"] == 120 and line["n_ref"] == 150
    assert (tmp_path / "s.npz.eval.json").is_file()

    # saved reference statistics give the same FID; statistics of another extractor are refused
    stats = tmp_path / "stats.npz"
    assert main(["eval", str(npz), "--metrics", "fid", "--ref", str(ref_npz), "--weights", str(run / "lenet.pt"),
                 "--save-ref-stats", str(stats), "--no-progress", "--out", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    assert main(["eval", str(npz), "--metrics", "fid", "--ref", str(stats), "--weights", str(run / "lenet.pt"),
                 "--no-progress", "--n", "120"]) == 0
    again = _json_line(capsys.readouterr().out)
    assert again["fid@lenet"] == pytest.approx(line["fid@lenet"], rel=1e-9)
    with np.load(stats) as f:
        np.savez(stats, **{**{k: f[k] for k in f.files}, "extractor": "inception"})
    assert main(["eval", str(npz), "--metrics", "fid", "--ref", str(stats), "--weights", str(run / "lenet.pt"),
                 "--no-progress"]) == 2
    assert "computed with the 'inception' extractor" in capsys.readouterr().err


def test_eval_default_lenet_comes_from_the_documented_cache(run: Path, capsys, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "w"))
    _, y, name = load_mnist_tensors("train")
    cached = classifier_path(name, int(y.shape[0]))
    cached.parent.mkdir(parents=True)
    cached.write_bytes((run / "lenet.pt").read_bytes())
    src = tmp_path / "real.npz"
    np.savez(src, images=((load_mnist_tensors("test")[0][:40] + 1) / 2).numpy())
    assert main(["eval", str(src), "--metrics", "is", "--no-progress"]) == 0  # no --ref needed for IS
    line = _json_line(capsys.readouterr().out)
    assert set(line) >= {"is@lenet", "is_std@lenet"} and "fid@lenet" not in line
    assert line["extractor_info"]["dataset"] == "random-init"


def test_eval_with_a_local_inception_weights_file(run: Path, capsys, tmp_path: Path) -> None:
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    weights = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), weights)
    ckpt = run / "cgan" / "checkpoint.pt"
    # two samples, IS only: each 299x299 Inception pass costs about a second on 2 CPU cores
    assert main(["eval", str(ckpt), "--metrics", "is", "--n", "2", "--extractor", "inception",
                 "--weights", str(weights), "--splits", "1", "--no-progress", "--out", str(tmp_path / "inc.json")]) == 0
    line = _json_line(capsys.readouterr().out)
    assert line["extractor"] == "inception" and line["n"] == 2
    assert 1.0 <= line["is@inception"] <= 2.0 and line["source_info"]["recipe"] == "cgan_mnist"
    assert not any(k.endswith("@lenet") for k in line) and line["extractor_info"]["weights"] == str(weights)


def test_eval_errors_are_clear(run: Path, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    ckpt = str(run / "cgan" / "checkpoint.pt")
    assert main(["eval", ckpt, "--metrics", "fid", "--ref", "mnist", "--extractor", "inception", "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "inception_v3_google-0cc3c7bd.pth" in err and "download.pytorch.org" in err
    assert main(["eval", ckpt, "--metrics", "fidd", "--weights", str(run / "lenet.pt")]) == 2
    assert "unknown metric 'fidd'" in capsys.readouterr().err
    assert main(["eval", ckpt, "--metrics", "fid", "--weights", str(run / "lenet.pt"), "--n", "4"]) == 2
    assert "--ref" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "none.npz"), "--metrics", "is"]) == 2
    assert "no such .npz" in capsys.readouterr().err


def test_open_source_kinds(run: Path, tmp_path: Path) -> None:
    ckpt = open_source(str(run / "cgan" / "checkpoint.pt"), 25, batch_size=10)
    batches = list(ckpt)
    assert [b.shape[0] for b in batches] == [10, 10, 5] and ckpt.n == 25
    assert all(0.0 <= float(b.min()) and float(b.max()) <= 1.0 for b in batches)
    torch.testing.assert_close(torch.cat(list(ckpt)), torch.cat(batches))  # re-iterable, same samples
    data = open_source("mnist:test", 30, seed=1)
    first = torch.cat(list(data))
    assert first.shape == (30, 1, 28, 28) and 0.0 <= float(first.min()) and data.info["split"] == "test"
    assert not torch.equal(first, torch.cat(list(open_source("mnist:test", 30, seed=2))))
    np.savez(tmp_path / "bad.npz", pictures=np.zeros((2, 1, 4, 4)))
    with pytest.raises(ValueError, match="no 'images' array"):
        open_source(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="asked for 5000"):
        open_source("mnist:test", 5000)


# ---------------------------------------------------------------- PSNR / SSIM / bits per dim

def test_psnr_and_ssim_against_closed_forms() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64) * 0.8 + 0.1
    noisy = target + 0.05 * torch.sign(torch.randn(3, 1, 16, 16, generator=g, dtype=torch.float64))  # |error| = 0.05
    assert psnr(noisy, target) == pytest.approx(10 * math.log10(1 / 0.05**2), rel=1e-6)
    assert psnr(noisy * 255, target * 255, data_range=255.0) == pytest.approx(psnr(noisy, target), rel=1e-9)
    assert psnr(target, target) == math.inf
    assert ssim(target, target) == pytest.approx(1.0)
    assert ssim(noisy, target) < 0.99
    per_image = ssim(noisy, target, reduction="none")
    assert per_image.shape == (3,) and ssim(noisy, target) == pytest.approx(float(per_image.mean()))
    # a constant shift c of a flat image: SSIM's luminance term (2 mu mu' + C1) / (mu^2 + mu'^2 + C1)
    a, b = torch.full((1, 1, 9, 9), 0.3), torch.full((1, 1, 9, 9), 0.5)
    c1 = (0.01 * 1.0) ** 2
    assert ssim(b, a) == pytest.approx((2 * 0.3 * 0.5 + c1) / (0.3**2 + 0.5**2 + c1), rel=1e-6)


def test_psnr_ssim_input_checks() -> None:
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, x[:1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        psnr(x * 2 - 1, x)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5))
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)


def test_bits_per_dim_is_the_likelihood_modules() -> None:
    import gan_utils.losses.likelihood as likelihood
    import gan_utils.metrics as metrics

    assert metrics.bits_per_dim is likelihood.bits_per_dim

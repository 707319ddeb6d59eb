"""``eval`` of VAE and SR checkpoints: importance-sampled NLL and bits per dim against closed forms, SR MSE /
LPIPS against independent computations, and the one-JSON-line command on tiny checkpoints (~30 s)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import alexnet

from gan_utils.__main__ import main
from gan_utils.data import load_dataset
from gan_utils.metrics import LPIPS, evaluate_sr, evaluate_vae_checkpoint, evaluate_vae_likelihood
from gan_utils.metrics.likelihood_eval import importance_sampled_log_likelihood
from gan_utils.recipes import load_checkpoint_models

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LN256, LN2 = math.log(256.0), math.log(2.0)


def _json_line(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("{"), f"expected exactly one JSON line, got:\n{out}"
    return json.loads(lines[0])


# ---------------------------------------------------------------- closed-form models

class LinearGaussianVAE(nn.Module):
    """``z ~ N(0, I_d)``, ``x | z ~ N(W z + b, I_D)``, so ``p(x) = N(b, W W^T + I)`` exactly.

    The encoder is the exact posterior ``N(S W^T (x - b), S)``, ``S = (I + W^T W)^-1``
    (diagonal because W's columns are orthogonal), optionally spoilt: mean shifted by
    ``shift`` and variance multiplied by ``scale``.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, shift: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.W, self.b, self.shift, self.scale = W, b, shift, scale
        self.latent_dim, self.image_shape = W.shape[1], (1, 2, 2)
        self.post_cov = torch.linalg.inv(torch.eye(W.shape[1]) + W.T @ W)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = (x.reshape(x.shape[0], -1) - self.b) @ self.W @ self.post_cov + self.shift
        return mu, torch.log(torch.diagonal(self.post_cov) * self.scale).expand_as(mu)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.W.T + self.b).reshape(*z.shape[:-1], *self.image_shape)

    decode_logits = decode


def linear_gaussian(seed: int = 0) -> tuple[LinearGaussianVAE, torch.distributions.MultivariateNormal]:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(4, 2, generator=g, dtype=torch.float64))
    W = (q * torch.tensor([1.5, 0.7], dtype=torch.float64)).float()
    b = (0.3 + 0.4 * torch.rand(4, generator=g)).float()
    exact = torch.distributions.MultivariateNormal(b.double(), W.double() @ W.double().T + torch.eye(4, dtype=torch.float64))
    return LinearGaussianVAE(W, b), exact


def test_importance_sampling_is_exact_with_the_true_posterior_and_converges_otherwise() -> None:
    model, exact = linear_gaussian()
    x = exact.sample((300,)).float().reshape(300, 1, 2, 2)
    log_px = exact.log_prob(x.reshape(300, -1).double())
    for k in (1, 7):  # the weights p(x, z) / q(z | x) equal p(x) for every z
        est = importance_sampled_log_likelihood(model, x, k, "gaussian", generator=torch.Generator().manual_seed(k))
        torch.testing.assert_close(est.double(), log_px, atol=1e-4, rtol=0)
    spoilt = LinearGaussianVAE(model.W, model.b, shift=0.8, scale=2.5)
    gaps = []  # estimated NLL - exact NLL, nats per image, averaged over the 300 points
    for k in (1, 8, 64, 512):
        est = importance_sampled_log_likelihood(spoilt, x, k, "gaussian", chunk_size=100,
                                                generator=torch.Generator().manual_seed(k))
        gaps.append(float((log_px - est.double()).mean()))
    assert gaps[0] > 1.0, gaps  # the ELBO is a poor bound for this posterior
    assert gaps[0] > gaps[1] > gaps[2] > -0.01 and gaps[3] > -0.01, gaps  # IWAE bound: monotone in K, below log p
    assert abs(gaps[3]) < 0.02, gaps  # ... and close to log p(x) at K = 512


def test_bits_per_dim_follow_the_dequantization_recipe_by_hand() -> None:
    model, exact = linear_gaussian(1)
    g = torch.Generator().manual_seed(3)
    levels = torch.randint(0, 256, (50, 1, 2, 2), generator=g).float()
    images = levels / 255.0  # what load_dataset gives for 8-bit data
    result = evaluate_vae_likelihood(model, [images], k=3, likelihood="gaussian", seed=11)
    # by hand: y = (x + u) / 256 with u ~ U[0, 1) seeded as documented, exact log N(y; b, W W^T + I)
    u = torch.rand(levels.shape, generator=torch.Generator().manual_seed(11))
    y = (levels + u) / 256.0
    nll = -float(exact.log_prob(y.reshape(50, -1).double()).mean())
    d = 4
    assert result.nll_nats == pytest.approx(nll, abs=1e-4)
    assert result.bpd == pytest.approx((nll + d * LN256) / (d * LN2), abs=1e-5)
    assert (result.k, result.n, result.num_dims, result.likelihood) == (3, 50, 4, "gaussian")
    assert result.bpd_reason is None and "bpd_reason" not in result.as_dict()
    # a decoder that is no density (Bernoulli) gets no bpd, whatever the data
    bern = evaluate_vae_likelihood(ConstantBernoulli(), [images], k=2, likelihood="bernoulli")
    assert bern.bpd is None and "Bernoulli" in bern.bpd_reason and "likelihood=gaussian" in bern.bpd_reason


class ConstantBernoulli(nn.Module):
    """Decoder logits ``l`` that ignore ``z``, encoder = the prior: ``L_K(x) = log p(x)`` for every K."""

    latent_dim, image_shape = 3, (1, 2, 2)

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.tensor([-1.0, 0.5, 2.0, 0.0]).reshape(1, 2, 2)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(x.shape[0], self.latent_dim)
        return zeros, zeros.clone()

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*z.shape[:-1], *self.image_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))


@pytest.mark.parametrize("binarize", [False, True])
def test_bernoulli_nll_is_the_exact_log_likelihood_of_the_targets(binarize: bool) -> None:
    images = torch.rand(20, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    result = evaluate_vae_likelihood(ConstantBernoulli(), [images[:8], images[8:]], k=5, likelihood="bernoulli",
                                     binarize=binarize)
    x = (images > 0.5).float() if binarize else images
    p = torch.sigmoid(ConstantBernoulli().logits)
    log_px = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=(1, 2, 3))
    assert result.nll_nats == pytest.approx(-float(log_px.mean()), rel=1e-5)
    assert result.n == 20 and result.targets == ("binarized (x > 0.5)" if binarize else "grey levels in [0, 1]")
    with pytest.raises(ValueError, match="binarize applies to Bernoulli"):
        evaluate_vae_likelihood(linear_gaussian()[0], [images], k=1, likelihood="gaussian", binarize=True)


def test_sr_eval_of_an_identity_generator_is_the_bilinear_baseline() -> None:
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    result = evaluate_sr(nn.Identity(), [images[:4], images[4:]], low_size=8, lpips=None, lpips_reason="none here")
    low = F.interpolate(images, size=8, mode="bilinear", align_corners=False, antialias=True)
    up = F.interpolate(low, size=32, mode="bilinear", align_corners=False)
    assert result.mse == pytest.approx(float(((up - images) ** 2).mean()), rel=1e-5)
    assert result.mse == pytest.approx(result.mse_bilinear, rel=1e-6)
    assert result.lpips is None and result.lpips_reason == "none here" and result.n == 6


# ---------------------------------------------------------------- the command on tiny checkpoints

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3-step VAEs (Bernoulli, Gaussian) on offline MNIST and a 2-step 32x32 SR run on offline STL-10 patches."""
    root = tmp_path_factory.mktemp("runs")
    common = ["--device", "cpu", "--no-progress", "--batch-size", "16"]
    assert main(["train", "vae", "--steps", "3", "--out", str(root / "vae"), "--model", "hidden=32", *common]) == 0
    assert main(["train", "vae", "--steps", "3", "--out", str(root / "vae_gauss"), "--model", "hidden=32",
                 "--set", "likelihood=gaussian", *common]) == 0
    assert main(["train", "sr", "--steps", "2", "--out", str(root / "sr"), "--image-size", "32", "--model", "base=4",
                 "--model", "n_levels=3", "--model", "d_layers=3", "--set", "low_size=8", *common]) == 0
    return root


def test_vae_checkpoint_prints_one_json_line_without_bpd_for_bernoulli(runs: Path, capsys) -> None:
    ckpt = runs / "vae" / "checkpoint.pt"
    capsys.readouterr()
    assert main(["eval", str(ckpt), "--k", "4", "--n", "10", "--no-progress"]) == 0
    line = _json_line(capsys.readouterr().out)
    assert {"nll_nats", "bpd", "k", "n", "bpd_reason"} <= set(line) and line["recipe"] == "vae"
    assert line["bpd"] is None and "Bernoulli" in line["bpd_reason"]
    assert (line["k"], line["n"], line["num_dims"], line["data"]["split"]) == (4, 10, 784, "test")
    assert 0 < line["nll_nats"] < 784 * math.log(2) * 2  # a 3-step model: finite, worse than nothing much
    assert json.loads((runs / "vae" / "checkpoint.pt.eval.json").read_text()) == line
    assert line == evaluate_vae_checkpoint(ckpt, k=4, n=10)  # the command is the library function
    assert main(["eval", str(ckpt), "--k", "4", "--n", "10", "--binarize", "--no-progress",
                 "--out", str(runs / "b.json")]) == 0
    binarized = _json_line(capsys.readouterr().out)
    assert binarized["targets"].startswith("binarized") and binarized["nll_nats"] != line["nll_nats"]
    assert main(["eval", str(ckpt), "--n", "1", "--no-progress", "--out", str(runs / "k.json")]) == 0
    assert _json_line(capsys.readouterr().out)["k"] == 2000  # the handout's K by default


def test_gaussian_vae_checkpoint_reports_bits_per_dim(runs: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["eval", str(runs / "vae_gauss" / "checkpoint.pt"), "--k", "4", "--n", "10", "--no-progress"]) == 0
    line = _json_line(capsys.readouterr().out)
    assert line["likelihood"] == "gaussian" and "bpd_reason" not in line and line["targets"].startswith("dequantized")
    d = 784
    assert line["bpd"] == pytest.approx((line["nll_nats"] + d * LN256) / (d * LN2), rel=1e-12)
    assert line["bpd"] > 8.0  # a unit-variance Gaussian spends more than a byte per pixel
    assert main(["eval", str(runs / "vae_gauss" / "checkpoint.pt"), "--metrics", "fid"]) == 2
    assert "--metrics do not apply" in capsys.readouterr().err
    assert main(["eval", str(runs / "vae_gauss" / "checkpoint.pt"), "--k", "0"]) == 2
    assert "k must be a positive number" in capsys.readouterr().err


def _sr_reference(runs: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All 512 test patches (32x32), the bilinear 32 -> 8 -> 32 inputs and the generator's outputs, in [0, 1]."""
    targets = load_dataset("stl10", split="test", image_size=32, value_range="unit").batch()[0]
    low = F.interpolate(targets, size=8, mode="bilinear", align_corners=False, antialias=True)
    up = F.interpolate(low, size=32, mode="bilinear", align_corners=False)
    _, models, _ = load_checkpoint_models(runs / "sr" / "checkpoint.pt")
    with torch.no_grad():
        out = ((models["generator"](2 * up - 1) + 1) / 2).clamp(0, 1)
    return targets, up, out


def test_sr_checkpoint_mse_and_null_lpips_without_weights(runs: Path, capsys, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    capsys.readouterr()
    assert main(["eval", str(runs / "sr" / "checkpoint.pt"), "--no-progress"]) == 0
    line = _json_line(capsys.readouterr().out)
    assert list(line)[3:6] == ["mse", "lpips", "mse_bilinear"] and line["n"] == 512 and line["low_size"] == 8
    targets, up, out = _sr_reference(runs)
    assert line["mse_bilinear"] == pytest.approx(float(((up - targets) ** 2).mean()), rel=1e-5)
    assert line["mse"] == pytest.approx(float(((out - targets) ** 2).mean()), rel=1e-4)
    # no AlexNet file here: no number (a randomly initialised backbone is never used), and the way to get one
    assert line["lpips"] is None and line["lpips_bilinear"] is None and "lpips_info" not in line
    reason = line["lpips_reason"]
    assert "alexnet-owt-7be5be79.pth" in reason and str(tmp_path / "th") in reason and "--weights" in reason


def test_sr_checkpoint_lpips_from_a_local_weights_file(runs: Path, capsys, tmp_path: Path) -> None:
    pytest.importorskip("lpips")  # the linear heads ship with it
    torch.manual_seed(0)
    trunk = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(alexnet(weights=None).state_dict(), trunk)  # a stand-in file: only the code path is under test
    capsys.readouterr()
    assert main(["eval", str(runs / "sr" / "checkpoint.pt"), "--weights", str(trunk), "--n", "40",
                 "--no-progress", "--out", str(tmp_path / "sr.json")]) == 0
    line = _json_line(capsys.readouterr().out)
    assert line["n"] == 40 and "lpips_reason" not in line and line["lpips_info"]["trunk"] == str(trunk)
    targets, up, out = _sr_reference(runs)
    idx = torch.randperm(512, generator=torch.Generator().manual_seed(0))[:40]  # the seeded subset of --n
    metric = LPIPS(trunk=trunk)
    with torch.no_grad():
        assert line["lpips"] == pytest.approx(float(metric(out[idx], targets[idx]).mean()), rel=1e-4)
        assert line["lpips_bilinear"] == pytest.approx(float(metric(up[idx], targets[idx]).mean()), rel=1e-4)
    assert main(["eval", str(runs / "sr" / "checkpoint.pt"), "--weights", str(tmp_path / "none.pth")]) == 2
    assert "no such file" in capsys.readouterr().err

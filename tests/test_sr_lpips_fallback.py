"""The labelled random-trunk LPIPS path: it runs the whole code path offline and is never reported as LPIPS."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import alexnet

from gan_utils.metrics import LPIPS, evaluate_sr, load_lpips

pytest.importorskip("lpips")  # the linear heads ship with it


@pytest.fixture()
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    return tmp_path


def test_random_trunk_is_seeded_labelled_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = LPIPS(random_trunk_seed=0)
    after = torch.rand(3)
    torch.testing.assert_close(before, after)  # building it did not consume the caller's random numbers
    b, c = LPIPS(random_trunk_seed=0), LPIPS(random_trunk_seed=1)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    torch.testing.assert_close(a(x, y), b(x, y))
    assert not torch.allclose(a(x, y), c(x, y), rtol=1e-3, atol=0)
    assert a.calibrated is False and a.info["calibrated"] is False and "NOT LPIPS" in a.info["trunk"]


def test_random_trunk_equals_loading_the_same_weights_from_a_file(tmp_path: Path) -> None:
    """Same trunk either way: the random path runs exactly the real metric's code."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = alexnet(weights=None).state_dict()
    torch.save(state, tmp_path / "alexnet-owt-7be5be79.pth")
    real = LPIPS(trunk=tmp_path / "alexnet-owt-7be5be79.pth")
    fake = LPIPS(random_trunk_seed=0)
    x, y = torch.rand(3, 3, 40, 40), torch.rand(3, 3, 40, 40)
    torch.testing.assert_close(fake(x, y), real(x, y))
    assert real.calibrated is True and real.info["calibrated"] is True


def test_random_trunk_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        LPIPS(trunk=tmp_path / "x.pth", random_trunk_seed=0)
    with pytest.raises(TypeError, match="must be an int"):
        LPIPS(random_trunk_seed=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback must be"):
        load_lpips(fallback="random")


def test_load_lpips_falls_back_only_when_asked(no_weights: Path) -> None:
    module, reason = load_lpips()
    assert module is None and "alexnet-owt-7be5be79.pth" in reason
    module, reason = load_lpips(fallback="random-trunk")
    assert module is not None and module.calibrated is False
    assert "alexnet-owt-7be5be79.pth" in reason and "not LPIPS" in reason
    module, _ = load_lpips(trunk=no_weights / "missing.pth", fallback="random-trunk")
    assert module is None  # an explicit path that is wrong is an error to report, not something to paper over


def test_evaluate_sr_files_uncalibrated_numbers_apart_from_lpips(no_weights: Path) -> None:
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    module, reason = load_lpips(fallback="random-trunk")
    result = evaluate_sr(nn.Identity(), [images[:3], images[3:]], low_size=8, lpips=module, lpips_reason=reason)
    assert result.lpips is None and result.lpips_bilinear is None and result.lpips_reason == reason
    assert result.lpips_uncalibrated is not None and result.lpips_uncalibrated > 0
    assert result.lpips_uncalibrated == pytest.approx(result.lpips_uncalibrated_bilinear)  # identity = the baseline
    out = result.as_dict()
    assert out["lpips"] is None and "lpips_uncalibrated" in out and "lpips_reason" in out
    # without a reason given, the result still says why lpips is None
    assert "uncalibrated" in evaluate_sr(nn.Identity(), [images], low_size=8, lpips=module).lpips_reason
    calibrated = evaluate_sr(nn.Identity(), [images], low_size=8, lpips=None, lpips_reason="none")
    assert "lpips_uncalibrated" not in calibrated.as_dict()

"""LPIPS from local weights against the lpips package on the same (random) AlexNet trunk."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torchvision.models import alexnet

from gan_utils.metrics import LPIPS

lpips = pytest.importorskip("lpips")


@pytest.fixture(scope="module")
def reference_and_trunk(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """lpips' LPIPS with a random trunk, and that trunk saved as a torchvision AlexNet state dict."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notes for lpips' pretrained= calls
        ref = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    state = alexnet(weights=None).state_dict()
    for stage in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        state.update({f"features.{k}": v for k, v in stage.state_dict().items()})
    path = tmp_path_factory.mktemp("w") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return ref, path


def test_lpips_matches_the_lpips_package(reference_and_trunk) -> None:
    ref, path = reference_and_trunk
    metric = LPIPS(trunk=path)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 48, 40, generator=g)
    y = (x + 0.2 * torch.randn(3, 3, 48, 40, generator=g)).clamp(0, 1)
    ours = metric(x, y)
    with torch.no_grad():
        theirs = ref(x, y, normalize=True).flatten()
    assert ours.shape == (3,)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    assert torch.all(metric(x, x) == 0)
    grey = x[:, :1]
    torch.testing.assert_close(metric(grey, y[:, :1]), metric(grey.expand(-1, 3, -1, -1), y[:, :1].expand(-1, 3, -1, -1)))


def test_lpips_is_differentiable_and_checks_inputs(reference_and_trunk) -> None:
    metric = LPIPS(trunk=reference_and_trunk[1])
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    metric(x, torch.rand(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="at least 32x32"):
        metric(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        metric(torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="same shape"):
        metric(torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32))


def test_lpips_without_weight_files_says_where_to_get_them(reference_and_trunk, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(FileNotFoundError, match="(?s)alexnet-owt-7be5be79.pth.*download.pytorch.org.*--weights"):
        LPIPS()
    with pytest.raises(FileNotFoundError, match="no LPIPS heads file"):
        LPIPS(trunk=reference_and_trunk[1], heads=tmp_path / "none.pth")

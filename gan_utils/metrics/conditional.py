"""Does a conditional generator draw the class it is asked for?

A classifier trained on real data only (the kit's :class:`MnistClassifier`)
labels generated images; the fraction labelled as the requested class is the
*classifier accuracy* of the generator (a.k.a. "classification accuracy
score" in reverse). It measures conditioning, not diversity: a generator that
draws one perfect digit per class scores 100 %, so report it with a
distribution metric such as :func:`gan_utils.metrics.frechet_classifier_distance`.

>>> acc = classifier_accuracy(G, load_mnist_classifier(), balanced_labels(1000))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["balanced_labels", "classifier_accuracy", "generate_conditional", "per_class_accuracy"]


def balanced_labels(n: int, num_classes: int = 10) -> torch.Tensor:
    """``n`` labels ``0, 1, ..., K-1, 0, 1, ...`` (equal counts when ``K`` divides ``n``)."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate_conditional(
    generator: nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    z_dim: int | None = None,
    seed: int = 0,
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One image per label from ``generator(z, labels)``, ``z ~ N(0, I)`` seeded by ``seed``.

    Modules run in eval mode (restored afterwards). Returns ``(N, C, H, W)``
    float32 on the CPU, in the generator's own range ([-1, 1] for tanh models).
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.dim() != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    z_dim = z_dim or getattr(generator, "z_dim", None)
    if not z_dim:
        raise ValueError("z_dim is unknown: pass z_dim= or give the generator a z_dim attribute")
    module = generator if isinstance(generator, nn.Module) else None
    if module is not None and device is None:
        device = next(module.parameters()).device
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    z = torch.randn(labels.shape[0], z_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    try:
        for start in range(0, labels.shape[0], batch_size):
            zb, yb = z[start : start + batch_size], labels[start : start + batch_size]
            if device is not None:
                zb, yb = zb.to(device), yb.to(device)
            out.append(generator(zb, yb).float().cpu())
    finally:
        if module is not None:
            module.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def _predict(classifier: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    try:
        return torch.cat([classifier(images[s : s + batch_size].to(device)).argmax(1).cpu()
                          for s in range(0, images.shape[0], batch_size)])
    finally:
        classifier.train(was_training)


def per_class_accuracy(
    generator: nn.Module,
    classifier: nn.Module,
    labels: torch.Tensor,
    seed: int = 0,
    batch_size: int = 500,
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """``(accuracy, per-class accuracy (K,), predictions (N,))``; see :func:`classifier_accuracy`.

    Classes that do not occur in ``labels`` get NaN.
    """
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    images = generate_conditional(generator, labels, seed=seed, batch_size=batch_size)
    pred = _predict(classifier, images, batch_size)
    correct = (pred == labels).float()
    k = int(getattr(classifier, "num_classes", int(labels.max()) + 1))
    counts = torch.bincount(labels, minlength=k).float()
    hits = torch.bincount(labels, weights=correct, minlength=k)
    per_class = torch.where(counts > 0, hits / counts.clamp_min(1), torch.full_like(hits, float("nan")))
    return float(correct.mean()), per_class, pred


def classifier_accuracy(
    generator: nn.Module,
    classifier: nn.Module,
    labels: torch.Tensor | int,
    seed: int = 0,
    batch_size: int = 500,
) -> float:
    """Fraction of conditional samples that ``classifier`` labels as the requested class.

    Args:
        generator: ``G(z, labels) -> images`` with a ``z_dim`` attribute, output
            in the range the classifier expects ([-1, 1] for the kit's MNIST classifier).
        classifier: ``images -> logits (N, K)``, trained on real data only.
        labels: requested classes ``(N,)`` long, or an int ``n`` for
            :func:`balanced_labels` ``(n)`` (e.g. 1000 = 100 per digit).
        seed: seeds the latents, so two generators can be compared on the same ``z``.

    Returns:
        Accuracy in [0, 1].
    """
    if isinstance(labels, int):
        labels = balanced_labels(labels, int(getattr(generator, "num_classes", 10)))
    return per_class_accuracy(generator, classifier, labels, seed=seed, batch_size=batch_size)[0]

"""The mode-seeking regulariser of MSGAN (Mao et al., 2019) for (conditional) generators.

For pairs of fakes made for the same label from different latents, G is pushed
to keep ``mean|G(z1, y) - G(z2, y)| / mean|z1 - z2|`` large, so that it does
not learn to ignore ``z``:

>>> z, labels = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
>>> fake = torch.randn(4, 1, 5, 5)
>>> mode_seeking_term(fake, z, labels).shape
torch.Size([])
"""

from __future__ import annotations

import torch

__all__ = ["mode_seeking_term", "same_label_pairs"]


def same_label_pairs(labels: torch.Tensor | None, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint index pairs ``(first, second)`` of samples that share a label.

    Within each label the samples are paired in order (a class with an odd count
    leaves one out). ``labels=None`` (unconditional) pairs ``(0, 1), (2, 3), ...``
    of ``n`` samples. Returns two int64 tensors of equal length.
    """
    if labels is None:
        if n is None:
            raise ValueError("give labels or n")
        idx = torch.arange(n - n % 2)
        return idx[0::2], idx[1::2]
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    rank = torch.arange(labels.numel(), device=labels.device) - torch.searchsorted(sorted_labels, sorted_labels)
    has_next = torch.zeros_like(rank, dtype=torch.bool)
    has_next[:-1] = sorted_labels[1:] == sorted_labels[:-1]
    starts = torch.nonzero((rank % 2 == 0) & has_next).squeeze(1)
    return order[starts], order[starts + 1]


def mode_seeking_term(fake: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None, eps: float = 1e-5) -> torch.Tensor:
    """``1 / (mean over same-label pairs of  mean|x1 - x2| / mean|z1 - z2|  + eps)``.

    Args:
        fake: generated images ``(N, ...)``.
        z: the latents they were made from ``(N, ...)``.
        labels: their labels ``(N,)`` or ``None`` (then consecutive samples are paired).

    Minimising it keeps images apart when their latents are apart. Returns a
    0-d tensor (0 when the batch has no same-label pair).
    """
    first, second = same_label_pairs(labels, fake.shape[0])
    if first.numel() == 0:
        return fake.new_zeros(())
    image_gap = (fake[first] - fake[second]).abs().flatten(1).mean(1)
    latent_gap = (z[first] - z[second]).abs().flatten(1).mean(1)
    return 1.0 / ((image_gap / latent_gap).mean() + eps)

"""Input checks shared by the loss modules: clear messages for the usual slips."""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_tensor(name: str, x: object, *, min_dim: int = 0) -> Tensor:
    """Return ``x`` if it is a non-empty floating-point tensor with ``>= min_dim`` dims."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(
            f"{name} must be a floating-point tensor (float16/32/64 or bfloat16), got dtype "
            f"{x.dtype}; convert with .float() (labels or uint8 images are not logits)"
        )
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dims, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(x.shape)}): a loss needs at least one value"
        )
    return x


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise if two tensors differ in shape (silent broadcasting is a classic bug)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}; reshape one of them (e.g. logits.view(-1) for (N, 1) outputs)"
        )


def check_same_trailing_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise unless the tensors agree on every dim except the batch dim."""
    if a.dim() != b.dim() or a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape apart from the batch size, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}; reshape one of them (e.g. .view(-1))"
        )


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce(x: Tensor, reduction: str) -> Tensor:
    """Apply ``"mean"`` (over all elements), ``"sum"`` or ``"none"``."""
    check_reduction(reduction)
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def per_sample_sum(x: Tensor) -> Tensor:
    """Sum a ``(N, ...)`` tensor over all non-batch dims, giving ``(N,)``."""
    return x.reshape(x.shape[0], -1).sum(dim=1) if x.dim() > 1 else x

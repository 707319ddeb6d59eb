"""Quick mode vs full mode for the course notebooks.

One environment variable selects how much work a notebook does:

- ``GAN_COURSE_MODE=quick``: offline data, tiny step counts, CPU-friendly; what CI
  and the autograder run (under two minutes per notebook on two CPU cores).
- ``GAN_COURSE_MODE=full``: the real dataset and the hyper-parameters of the
  handouts, meant for a GPU.

When the variable is unset the mode is ``full`` on a machine with CUDA and ``quick``
otherwise. In a notebook::

    from gan_utils.mode import course_mode, pick
    MODE = course_mode()
    steps = pick(quick=200, full=20_000)
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch

ENV_VAR = "GAN_COURSE_MODE"
MODES = ("quick", "full")
T = TypeVar("T")


def course_mode() -> str:
    """Return ``"quick"`` or ``"full"`` from ``$GAN_COURSE_MODE`` (see module doc)."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR}={value!r} is not a mode: expected one of {', '.join(MODES)}")
    return value


def is_quick() -> bool:
    return course_mode() == "quick"


def pick(quick: T, full: T) -> T:
    """Return ``quick`` in quick mode and ``full`` in full mode."""
    return quick if is_quick() else full

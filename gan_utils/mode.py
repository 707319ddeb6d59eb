"""Three run modes for the course notebooks: quick, cpu and full.

One environment variable selects how much work a notebook does:

- ``GAN_COURSE_MODE=quick``: offline data, tiny step counts; what CI and the
  autograder run (seconds per notebook on two CPU cores). Results are noise and the
  notebooks say so.
- ``GAN_COURSE_MODE=cpu``: a laptop without a GPU. Each notebook finishes in at most
  about 10 minutes on two cores, with settings scaled down from the handout's (each
  notebook says what it scaled) but results good enough to answer its questions.
- ``GAN_COURSE_MODE=full``: the real dataset and the hyper-parameters of the
  handouts, meant for a GPU.

When the variable is unset the mode is ``full`` on a machine with CUDA and ``cpu``
otherwise; the grader always sets ``quick``. In a notebook::

    from gan_utils.mode import course_mode, pick
    MODE = course_mode()
    steps = pick(quick=200, cpu=3_000, full=20_000)

A ``pick`` without a ``cpu=`` value falls back to the ``quick`` one in cpu mode.
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch

ENV_VAR = "GAN_COURSE_MODE"
MODES = ("quick", "cpu", "full")
T = TypeVar("T")
_UNSET: object = object()


def course_mode() -> str:
    """Return ``"quick"``, ``"cpu"`` or ``"full"`` from ``$GAN_COURSE_MODE`` (see module doc)."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "cpu"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR}={value!r} is not a mode: expected one of {', '.join(MODES)}")
    return value


def is_quick() -> bool:
    """True in quick mode (the grader and CI)."""
    return course_mode() == "quick"


def pick(quick: T, full: T, cpu: T = _UNSET) -> T:  # type: ignore[assignment]
    """The value for the current mode: ``quick``, ``cpu`` (``quick`` when not given) or ``full``."""
    mode = course_mode()
    if mode == "full":
        return full
    if mode == "cpu" and cpu is not _UNSET:
        return cpu
    return quick

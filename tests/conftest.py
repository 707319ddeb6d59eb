"""Shared pytest set-up: headless plotting, bounded threads, a per-test seed."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GAN_COURSE_MODE", "quick")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed_each_test():
    torch.manual_seed(0)
    yield

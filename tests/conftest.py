"""Shared pytest set-up of the kit's tests: headless plotting, bounded threads, a per-test seed
(the grouping of tests over pytest-xdist workers is in the repository's ``conftest.py``)."""

from __future__ import annotations

import os

import pytest
import torch

# MPLBACKEND=Agg and GAN_COURSE_MODE=quick are set by the repository's conftest.py, loaded first.

# One thread per worker when pytest-xdist runs several (they share the cores).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(autouse=True)
def _seed_each_test():
    torch.manual_seed(0)
    yield

"""Shared pytest set-up: headless plotting, bounded threads, a per-test seed, and the grouping
that ``make test`` (``pytest -n 2 --dist loadgroup``) uses to spread the suite over two workers."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GAN_COURSE_MODE", "quick")

import pytest  # noqa: E402
import torch  # noqa: E402

# One thread per worker when pytest-xdist runs several (they share the cores).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group tests for ``--dist loadgroup``: a test file runs on one worker (its module fixtures,
    such as a PostgreSQL or Jupyter server, start once), except the assignment harness, where each
    assignment's tests form a group (they share one graded corpus per assignment)."""
    for item in items:
        group = item.path.name
        callspec = getattr(item, "callspec", None)
        if group == "test_assignments.py" and callspec is not None and "name" in callspec.params:
            group = f"test_assignments.py::{callspec.params['name']}"
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _seed_each_test():
    torch.manual_seed(0)
    yield

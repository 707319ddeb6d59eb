"""pytest set-up for the whole repository: ``tests/`` and the solution notebooks that nbval runs
(``make test`` is ``pytest -n 2 --dist loadgroup tests --nbval-lax solutions``).

Notebooks run in quick mode with a headless matplotlib unless the caller chose otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GAN_COURSE_MODE", "quick")


ROOT = Path(__file__).resolve().parent
# longest first, so that a name that is a prefix of another never captures its tests
ASSIGNMENTS = sorted((p.parent.name for p in ROOT.glob("solutions/*/*.ipynb") if p.stem == p.parent.name),
                     key=len, reverse=True)


def test_group(nodeid: str) -> str:
    """The unit of work of ``make test``'s two workers: a test file runs on one worker (its module
    fixtures, such as a PostgreSQL or Jupyter server, start once, and a notebook's cells share its
    nbval kernel), except the assignment harness, where each assignment's tests form a unit of their
    own (they share that assignment's graded corpus)."""
    path, _, rest = nodeid.partition("::")
    if path.endswith("test_assignments.py") and "[" in rest:
        param = rest[rest.index("[") + 1: rest.rindex("]")]
        for name in ASSIGNMENTS:
            if param == name or param.startswith(name + "-"):
                return f"{path}::{name}"
    return path


HARNESS_RUN = "tests/test_assignments.py::test_solution_gets_every_automatic_point_with_a_clean_run"


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only a harness run that will happen serves
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One execution serves both: nbval does not run ``solutions/<a>/<a>.ipynb`` again when this
    session also runs the harness's graded solution of ``<a>``, which executes the same code cells
    top to bottom in quick mode (that test checks that they are the same cells and that none of them
    raised or wrote to stderr). ``pytest --nbval-lax solutions`` on its own still runs every notebook."""
    graded = {item.callspec.params["name"] for item in items
              if item.nodeid.startswith(HARNESS_RUN + "[") and hasattr(item, "callspec")}
    served = {ROOT / "solutions" / name / f"{name}.ipynb" for name in graded}
    deselected = [item for item in items if type(item).__module__.startswith("nbval") and Path(item.path) in served]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        dropped = set(deselected)
        items[:] = [item for item in items if item not in dropped]


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pytest-xdist is in requirements.lock; without it the suite runs in one process
    pass
else:

    class _KitScheduling(LoadScopeScheduling):
        """pytest-xdist's scope scheduling with :func:`test_group` as the scope (largest units first)."""

        def _split_scope(self, nodeid: str) -> str:
            return test_group(nodeid)

    def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN201 - xdist's hook
        """``--dist loadgroup`` groups by :func:`test_group` (xdist's own marker-based groups do not
        reach the scheduler with pytest 9, whose node ids ignore xdist's ``@group`` suffix)."""
        if config.getvalue("dist") == "loadgroup":
            return _KitScheduling(config, log)
        return None

"""The committed student notebook is exactly what ``nbgrader generate_assignment``
makes of the instructor notebook, and ``python -m autograder validate`` passes the
solution and fails the blank release. Budget: about 1 minute (two kernels).
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from autograder.grading.options import REPO_ROOT
from autograder.grading.release import assignments, comparable, generate

RELEASED = REPO_ROOT / "notebooks" / "example" / "example.ipynb"
SOURCE = REPO_ROOT / "solutions" / "example" / "example.ipynb"


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def test_example_is_an_assignment():
    assert "example" in assignments()


def test_committed_release_matches_generation(tmp_path):
    paths = generate("example", release_root=tmp_path)
    assert [p.name for p in paths] == ["example.ipynb"]
    fresh = nbformat.read(paths[0], as_version=4)
    committed = nbformat.read(RELEASED, as_version=4)
    assert comparable(committed) == comparable(fresh), "run `python -m autograder release example` and commit the result"
    assert nbformat.read(RELEASED, as_version=4) == committed  # generation never touches the committed file


def test_release_has_no_solutions_hidden_tests_or_outputs():
    text = RELEASED.read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "F.softplus(-fake_logits)" not in text and "hidden_cases" not in text
    nb = nbformat.read(RELEASED, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata}
    assert meta["test_generator_loss"]["points"] == 3 and meta["test_generator_loss"]["locked"]
    assert meta["saturation_answer"]["points"] == 2 and meta["saturation_answer"]["solution"]
    assert all(m["schema_version"] == 3 for m in meta.values())


def _validate(path, out):
    cmd = [sys.executable, "-m", "autograder", "validate", str(path), "--assignment", "example", "--out", str(out),
           "--cell-timeout", "60", "--timeout", "120", "--memory-mb", "2048"]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)


@pytest.mark.parametrize("which, code", [("solution", 0), ("blank", 1)])
def test_validate(which, code, tmp_path):
    path = SOURCE if which == "solution" else RELEASED
    proc = _validate(path, tmp_path / "out")
    assert proc.returncode == code, proc.stdout + proc.stderr[-2000:]
    assert "test_generator_loss" in proc.stdout
    if which == "solution":
        assert "[PASS  ] example/test_generator_loss: 3 / 3" in proc.stdout
        assert "status: ok" in proc.stdout
    else:
        assert "NotImplementedError" in proc.stdout
    assert list((tmp_path / "out" / "feedback").rglob("*.html"))

"""``make demo``'s instructor pipeline on the shipped sample class (quick version).

The demo runs once (module fixture) for the ``example`` assignment without training:
release, grading of the four sample students with two workers into a course folder,
the course table, feedback. Then every student's grade is checked, the printed table
against the course gradebook, and a second run for being fast and changing nothing.
Budget: about a minute and a half on two cores (two gradings of four kernels, the
second one skipping everything).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.demo import CourseTable, Entry, course_table, table_from_gradebook
from autograder.grading.options import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "make_sample_class.py"
SAMPLE = REPO_ROOT / "course" / "sample_class"


def _script():
    """scripts/make_sample_class.py as a module (registered first: it defines dataclasses)."""
    if "make_sample_class" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_sample_class", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["make_sample_class"]


def _demo(out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "autograder", "demo", "--out", str(out), "--assignments", "example", "--skip-training",
           *extra]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    return proc, time.monotonic() - t0


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "run.json"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc, seconds = _demo(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grading" / "example" / "grades.csv", newline="") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    return out, proc.stdout, seconds, grades


def test_shipped_sample_class_equals_a_fresh_generation():
    assert _script().stale(SAMPLE) == [], "run: python scripts/make_sample_class.py"


def test_sample_students_differ_only_where_they_should():
    script = _script()
    for a in script.ASSIGNMENTS:
        release = nbformat.read(REPO_ROOT / "notebooks" / a / f"{a}.ipynb", as_version=4)
        subs = {s.name: nbformat.read(SAMPLE / s.name / a / f"{a}.ipynb", as_version=4) for s in script.STUDENTS}
        assert subs["blank"] == release
        for nb in subs.values():  # locked cells are never touched, and no outputs are shipped
            assert [c.source for c in nb.cells if not c.metadata.get("nbgrader", {}).get("solution")] == \
                   [c.source for c in release.cells if not c.metadata.get("nbgrader", {}).get("solution")]
            assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        changed = [c.metadata.nbgrader.grade_id for c, d in zip(subs["partial"].cells, subs["full_marks"].cells, strict=True)
                   if c.source != d.source]
        module = __import__(f"autograder.assignments.{a}", fromlist=["SLIPS"])
        slip = next(s for s in module.SLIPS if s.name == script.PARTIAL_SLIP[a])
        assert set(changed) == set(slip.cells)
        assert "BEGIN SOLUTION" not in nbformat.writes(subs["full_marks"])


def test_every_sample_student_gets_the_expected_grade(demo):
    _, _, _, grades = demo
    assert sorted(grades) == ["blank", "full_marks", "hostile", "partial"]
    full, partial, blank, hostile = (grades[s] for s in ("full_marks", "partial", "blank", "hostile"))
    assert full["status"] == "ok" and float(full["auto_score"]) == float(full["auto_max_score"]) > 0
    assert full["needs_manual"] == "yes", "the written answer waits for a human"
    assert partial["status"] == "ok" and float(partial["auto_score"]) < float(partial["auto_max_score"])
    assert "expected" in partial["message"]
    assert blank["status"] == "ok" and float(blank["score"]) == 0
    assert hostile["status"] == "kernel_died" and float(hostile["score"]) == 0
    assert "kernel exited" in hostile["message"]


def test_progress_lines_table_and_feedback(demo):
    out, stdout, _, grades = demo
    steps = [line for line in stdout.splitlines() if line[:2] in ("1 ", "2 ", "3 ", "4 ", "5 ")]
    assert [s.split()[0] for s in steps] == ["1", "2", "3", "4", "5"], stdout
    assert all(s.rstrip().endswith(" s]") for s in steps if not s.startswith("5 ")), steps
    assert "notebooks/ unchanged" in steps[0]
    assert "4 graded" in steps[1]
    table = stdout[stdout.index("student "):]
    for student, row in grades.items():
        line = next(line for line in table.splitlines() if line.startswith(student + " "))
        assert f"{float(row['score']):g}/{float(row['max_score']):g} {row['status']}" in line
    assert "hostile / example: kernel_died" in stdout
    page = out / "grading" / "example" / "feedback" / "full_marks" / "example" / "example.html"
    assert page.is_file() and str(page) in steps[3]


def test_table_comes_from_the_course_gradebook(demo):
    out, stdout, _, grades = demo
    db = f"sqlite:///{out / 'course' / 'gradebook.db'}"
    assert f"from course gradebook {out / 'course' / 'gradebook.db'}" in stdout
    book = table_from_gradebook(db)
    assert book.assignments == ["example"]
    assert {s: (e.score, e.max_score) for (s, _), e in book.entries.items()} == {
        s: (float(r["score"]), float(r["max_score"])) for s, r in grades.items()}


def test_gradebook_command(demo, capsys):
    from autograder.__main__ import main

    out, _, _, _ = demo
    assert main(["gradebook", "--course-root", str(out / "course"), "--grades", str(out / "grading" / "example")]) == 0
    text = capsys.readouterr().out
    assert "kernel_died" in text and "full_marks" in text
    missing = out / "no_course"
    assert main(["gradebook", "--course-root", str(missing)]) == 2
    assert "no gradebook" in capsys.readouterr().err
    assert not missing.exists(), "reading must not create an empty gradebook"


def test_second_run_is_fast_and_changes_nothing(demo):
    out, _, first, _ = demo
    before = _hashes(out)
    proc, seconds = _demo(out)
    assert proc.returncode == 0, proc.stderr
    assert "0 graded, 4 already graded" in proc.stdout
    assert "up to date since the last run" in proc.stdout
    assert _hashes(out) == before
    assert seconds < first


def test_table_without_a_gradebook_uses_grades_csv(demo, tmp_path):
    out, _, _, grades = demo
    table = course_table(f"sqlite:///{tmp_path / 'none.db'}", [out / "grading" / "example"])
    assert table.source.startswith("grades.csv")
    assert {s for s, _ in table.entries} == set(grades)
    assert not (tmp_path / "none.db").exists()


def test_render_marks_missing_and_waiting_cells():
    table = CourseTable("test", {("ann", "a1"): Entry(3, 5, "ok", needs_manual=True), ("bob", "a2"): Entry(0, 40, "timeout")},
                        ["a1", "a2"])
    lines = table.render().splitlines()
    assert lines[0].split() == ["student", "a1", "a2"]
    assert lines[2].split() == ["ann", "3/5", "ok", "*", "-"]
    assert lines[3].split() == ["bob", "-", "0/40", "timeout"]
    assert "written answers wait" in lines[-1]

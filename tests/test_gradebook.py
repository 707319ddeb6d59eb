"""The course gradebook (autograder/grading/gradebook.py) and the grading loop through formgrader.

Unit tests merge submissions that nbgrader itself autograded (``NbGraderAPI`` on the
``example`` assignment in a temporary course, once per module) into course gradebooks
on SQLite and on a throw-away PostgreSQL server (tests/pg_server.py). Manual scores are
entered the way formgrader's API handlers enter them. The whole loop runs the
command line: ``grade`` two students, a manual score and comment through a real
``jupyter server`` with formgrader, then ``export`` and ``feedback``.
Budget: about 100 s on an idle 2-core machine (kernels, nbgrader and the server start).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from pg_server import fresh_database, postgres_url  # noqa: F401 - postgres_url is a fixture

from autograder.grading import feedback, gradebook
from autograder.grading.options import REPO_ROOT, load_course_config, venv_path_env
from autograder.grading.results import write_reports, write_result
from autograder.grading.submission import hidden_test_lines

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own add_submission

RELEASE = REPO_ROOT / "notebooks" / "example" / "example.ipynb"
SOURCE = REPO_ROOT / "solutions" / "example" / "example.ipynb"
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"
CORRECT = "return F.softplus(-fake_logits).mean()"
WRONG = "return F.softplus(fake_logits).mean()"
ANSWER = "The minimax gradient vanishes as D(G(z)) -> 0; the non-saturating one does not."
A = "example"
OK = {"status": "ok", "message": ""}


def student_notebook(body: str | None, written: str | None) -> nbformat.NotebookNode:
    nb = nbformat.read(RELEASE, as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "generator_loss_answer" and body is not None:
            cell.source = cell.source.replace(STUB, body)
        if gid == "saturation_answer" and written is not None:
            cell.source = written
    return nb


def course_config(root: Path, db_url: str, source: str = "source"):
    cfg = load_course_config()
    cd = cfg.CourseDirectory
    cd.root, cd.db_url, cd.source_directory, cd.release_directory = str(root), db_url, source, "release"
    cfg.Execute.timeout = 20
    return cfg


class Graded(NamedTuple):
    template: str  # URL of the gradebook nbgrader filled
    snapshots: dict[str, dict]
    files: dict[str, dict[str, bytes]]  # per student, keys relative to the course folder


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    """alice (correct, written answer) and bob (blank), autograded by nbgrader itself."""
    os.environ.update(venv_path_env())
    root = tmp_path_factory.mktemp("nbgrader-course")
    (root / "source" / A).mkdir(parents=True)
    shutil.copy(SOURCE, root / "source" / A)
    url = f"sqlite:///{root / 'gradebook.db'}"
    cfg = course_config(root, url)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    assert api.generate_assignment(A, force=True, create=True)["success"]
    work = {"alice": (CORRECT, ANSWER), "bob": (None, None)}
    snapshots, files = {}, {}
    for student, (body, written) in work.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        nbformat.write(student_notebook(body, written), folder / f"{A}.ipynb")
        (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.123456 UTC")
        res = api.autograde(A, student, force=True, create=True)
        assert res["success"], res.get("error")
        with Gradebook(url) as gb:
            snapshots[student] = gradebook.snapshot_submission(gb, A, student)
        files[student] = {f"{sub}/{student}/{A}/{p.name}": p.read_bytes()
                          for sub in ("submitted", "autograded") for p in (root / sub / student / A).iterdir()}
    return Graded(url, snapshots, files)


class Course(NamedTuple):
    root: Path
    url: str
    another: Any  # () -> the URL of one more empty gradebook of the same kind


@pytest.fixture(params=["sqlite", "postgresql"])
def course(request, tmp_path) -> Course:
    """An empty course folder and gradebook URL (no database yet on SQLite, an empty one on PostgreSQL)."""
    if request.param == "sqlite":
        def another() -> str:
            return f"sqlite:///{tmp_path / uuid.uuid4().hex / 'gradebook.db'}"
    else:
        server = request.getfixturevalue("postgres_url")

        def another() -> str:
            return fresh_database(server, f"t_{uuid.uuid4().hex[:12]}")
    return Course(tmp_path / "course", another(), another)


def merge(course: Course, graded: Graded, student: str, snapshot: dict | None | str = "same",
          files: dict[str, bytes] | None = None, result: dict | None = None) -> None:
    gradebook.ensure_assignment(course.url, graded.template, A)
    gradebook.merge_submission(course.url, course.root, A, student,
                               graded.snapshots[student] if snapshot == "same" else snapshot,
                               graded.files[student] if files is None else files, result or OK)


def dump(url: str, ids: bool = False) -> dict[str, Any]:
    """Everything nbgrader keeps about the assignment and its submissions (ids optional)."""
    with Gradebook(url) as gb:
        a = gb.find_assignment(A)
        out: dict[str, Any] = {"cells": {}, "submissions": {}}
        for nb in a.notebooks:
            for c in [*nb._base_cells, *nb.source_cells]:
                info = {k: v for k, v in c.to_dict().items() if ids or k != "id"}
                out["cells"][f"{nb.name}/{type(c).__name__}/{c.name}"] = info
        for sub in a.submissions:
            row = {"timestamp": str(sub.timestamp), **({"id": sub.id} if ids else {})}
            for snb in sub.notebooks:
                row[snb.name] = {
                    "flagged": snb.flagged, "penalty": snb.late_submission_penalty,
                    "grades": {g.name: (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                               + ((g.id,) if ids else ()) for g in snb.grades},
                    "comments": {c.name: (c.auto_comment, c.manual_comment) + ((c.id,) if ids else ())
                                 for c in snb.comments},
                }
            out["submissions"][sub.student_id] = row
    return out


def put_grade(url: str, student: str, cell: str, manual_score: float | None, comment: str | None = None,
              extra_credit: float | None = None) -> None:
    """What formgrader's GradeHandler.put and CommentHandler.put do (nbgrader/server_extensions/formgrader)."""
    with Gradebook(url) as gb:
        grade = gb.find_grade_by_id(gb.find_grade(cell, A, A, student).id)
        grade.manual_score, grade.extra_credit = manual_score, extra_credit
        grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
        gb.db.commit()
        if comment is not None:
            row = gb.find_comment_by_id(gb.find_comment(cell, A, A, student).id)
            row.manual_comment = comment
            gb.db.commit()


def formgrader_view(course: Course) -> dict[str, tuple[bool, float]]:
    """student -> (autograded, score) as formgrader's submission list computes it (NbGraderAPI)."""
    cfg = course_config(course.root, course.url)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    return {s["student"]: (s["autograded"], s["score"]) for s in api.get_submissions(A)}


# -- snapshot and assignment -----------------------------------------------------------------------------
def test_snapshot_holds_what_autograde_wrote(graded):
    alice, bob = graded.snapshots["alice"], graded.snapshots["bob"]
    assert json.loads(json.dumps(alice)) == alice
    grades = alice["notebooks"][A]["grades"]
    assert grades["test_generator_loss"] == {"auto_score": 3.0, "max_score": 3.0, "needs_manual_grade": False,
                                             "cell_type": "code"}
    assert grades["saturation_answer"]["auto_score"] is None and grades["saturation_answer"]["needs_manual_grade"]
    assert bob["notebooks"][A]["comments"]["saturation_answer"]["auto_comment"] == "No response."
    assert bob["notebooks"][A]["grades"]["test_generator_loss"]["auto_score"] == 0.0
    assert alice["timestamp"] == "2026-12-01T10:00:00.123456"


def test_ensure_assignment_copies_the_template_once(course, graded):
    gradebook.ensure_assignment(course.url, graded.template, A)
    first = dump(course.url, ids=True)
    gradebook.ensure_assignment(course.url, graded.template, A)
    assert dump(course.url, ids=True) == first
    template = dump(graded.template)["cells"]
    assert dump(course.url)["cells"] == template
    assert template[f"{A}/GradeCell/test_generator_loss"]["max_score"] == 3.0
    assert template[f"{A}/SourceCell/test_generator_loss"]["checksum"]


def _template_variant(graded: Graded, tmp_path: Path, name: str, edit) -> str:
    path = tmp_path / f"{name}.db"
    shutil.copy(graded.template.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    with Gradebook(url) as gb:
        edit(gb)
    return url


def test_ensure_assignment_updates_as_generate_assignment_does(course, graded, tmp_path):
    def more_points(gb):
        gb.update_or_create_grade_cell("test_generator_loss", A, A, max_score=4.0)
        gb.update_or_create_source_cell("setup", A, A, source="import math  # v2", checksum="v2")

    def new_cell(gb):
        gb.add_grade_cell("test_extra", A, A, max_score=1.0, cell_type="code")
        gb.add_source_cell("test_extra", A, A, cell_type="code", locked=True, source="assert True", checksum="x")

    v2, v3 = _template_variant(graded, tmp_path, "v2", more_points), _template_variant(graded, tmp_path, "v3", new_cell)
    merge(course, graded, "alice")
    before = dump(course.url, ids=True)
    gradebook.ensure_assignment(course.url, v2, A)  # same cells: points and sources follow, rows keep their ids
    after = dump(course.url, ids=True)
    assert after["cells"][f"{A}/GradeCell/test_generator_loss"]["max_score"] == 4.0
    assert after["cells"][f"{A}/SourceCell/setup"]["source"] == "import math  # v2"
    assert {k: v["id"] for k, v in after["cells"].items()} == {k: v["id"] for k, v in before["cells"].items()}
    assert after["submissions"] == before["submissions"]
    with pytest.raises(gradebook.GradebookError, match="submission"):  # nbgrader refuses new cells then
        gradebook.ensure_assignment(course.url, v3, A)
    assert dump(course.url, ids=True) == after

    empty = course.another()  # no submissions: cells may come and go
    gradebook.ensure_assignment(empty, v3, A)
    ids = {k: v["id"] for k, v in dump(empty, ids=True)["cells"].items()}
    assert f"{A}/GradeCell/test_extra" in ids
    gradebook.ensure_assignment(empty, graded.template, A)
    again = {k: v["id"] for k, v in dump(empty, ids=True)["cells"].items()}
    assert again == {k: v for k, v in ids.items() if "test_extra" not in k}


# -- merging -------------------------------------------------------------------------------------------
def test_merge_is_idempotent_and_formgrader_lists_it(course, graded):
    merge(course, graded, "alice")
    merge(course, graded, "bob")
    first = dump(course.url, ids=True)
    stamps = {p: p.stat().st_mtime_ns for p in course.root.rglob("*") if p.is_file() and p.suffix != ".db"}
    merge(course, graded, "alice")
    merge(course, graded, "bob")
    assert dump(course.url, ids=True) == first
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert first["submissions"]["alice"][A]["grades"]["test_generator_loss"][:4] == (3.0, None, None, False)
    assert first["submissions"]["alice"][A]["grades"]["saturation_answer"][:4] == (None, None, None, True)
    assert first["submissions"]["alice"]["timestamp"] == "2026-12-01 10:00:00.123456"
    assert formgrader_view(course) == {"alice": (True, 3.0), "bob": (True, 0.0)}
    assert (course.root / "autograded" / "alice" / A / f"{A}.ipynb").read_bytes() == \
        graded.files["alice"][f"autograded/alice/{A}/{A}.ipynb"]


def changed(graded: Graded, student: str, text: str) -> dict[str, bytes]:
    """The student's files with another written answer (as handed in and as autograded)."""
    files = dict(graded.files[student])
    for key in (f"submitted/{student}/{A}/{A}.ipynb", f"autograded/{student}/{A}/{A}.ipynb"):
        files[key] = files[key].replace(ANSWER.encode(), text.encode())
        assert files[key] != graded.files[student][key]
    return files


def test_manual_scores_survive_regrades(course, graded):
    merge(course, graded, "alice")
    put_grade(course.url, "alice", "saturation_answer", 1.5, "Clear argument, no formula.")
    put_grade(course.url, "alice", "test_generator_loss", 2.0)  # an override of an automatic score
    assert gradebook.manual_grades(course.url) == {("alice", A, "saturation_answer"): (1.5, "Clear argument, no formula."),
                                                   ("alice", A, "test_generator_loss"): (2.0, "")}
    merge(course, graded, "alice")  # the same submission again: nothing to review
    grades = dump(course.url)["submissions"]["alice"][A]["grades"]
    assert grades["saturation_answer"] == (None, 1.5, None, False) and grades["test_generator_loss"] == (3.0, 2.0, None, False)

    merge(course, graded, "alice", files=changed(graded, "alice", "A new answer."))  # a changed hand-in
    after = dump(course.url)["submissions"]["alice"][A]
    assert after["grades"]["saturation_answer"] == (None, 1.5, None, True)  # kept, marked for review (as nbgrader)
    assert after["grades"]["test_generator_loss"] == (3.0, 2.0, None, True)
    assert after["comments"]["saturation_answer"] == (None, "Clear argument, no formula.")

    put_grade(course.url, "alice", "saturation_answer", 1.5)  # the grader confirms both
    put_grade(course.url, "alice", "test_generator_loss", 2.0)
    snap = copy.deepcopy(graded.snapshots["alice"])
    snap["notebooks"][A]["grades"]["test_generator_loss"]["auto_score"] = 0.0  # the tests changed
    merge(course, graded, "alice", snapshot=snap, files=changed(graded, "alice", "A new answer."))
    grades = dump(course.url)["submissions"]["alice"][A]["grades"]
    assert grades["test_generator_loss"] == (0.0, 2.0, None, True) and grades["saturation_answer"] == (None, 1.5, None, False)
    assert gradebook.manual_grades(course.url, A)[("alice", A, "saturation_answer")][0] == 1.5
    assert gradebook.manual_grades(course.url, "other") == {}


@pytest.mark.parametrize(("course", "where"), [("sqlite", "files"), ("sqlite", "transaction"),
                                               ("postgresql", "transaction")], indirect=["course"])
def test_interrupted_merge_loses_nothing(course, graded, monkeypatch, where):
    merge(course, graded, "alice")
    put_grade(course.url, "alice", "saturation_answer", 2.0, "Exactly.")
    before = dump(course.url, ids=True)
    new_files = changed(graded, "alice", "Second thoughts.")
    if where == "files":
        real, calls = gradebook._atomic_write, []

        def power_cut(path, data):
            calls.append(path)
            if len(calls) == 2:
                raise KeyboardInterrupt("power cut")
            real(path, data)

        monkeypatch.setattr(gradebook, "_atomic_write", power_cut)
    else:
        real_nb = gradebook._merge_notebook

        def power_cut(*args, **kwargs):
            real_nb(*args, **kwargs)
            raise KeyboardInterrupt("power cut")

        monkeypatch.setattr(gradebook, "_merge_notebook", power_cut)
    with pytest.raises(KeyboardInterrupt):
        merge(course, graded, "alice", files=new_files)
    assert dump(course.url, ids=True) == before  # nothing half-done in the database
    monkeypatch.undo()
    merge(course, graded, "alice", files=new_files)  # the re-run finishes the job
    done = dump(course.url, ids=True)
    assert done["submissions"]["alice"][A]["grades"]["saturation_answer"][1:4] == (2.0, None, True)
    assert done["submissions"]["alice"][A]["comments"]["saturation_answer"][:2] == (None, "Exactly.")
    assert (course.root / "submitted" / "alice" / A / f"{A}.ipynb").read_bytes() == new_files[f"submitted/alice/{A}/{A}.ipynb"]
    assert not [p for p in course.root.rglob("*.tmp")]
    merge(course, graded, "alice", files=new_files)
    assert dump(course.url, ids=True) == done


def test_failed_submission_is_recorded_and_flagged(course, graded):
    broken = {f"submitted/carol/{A}/{A}.ipynb": b'{"cells": [', f"feedback/carol/{A}/grading.html": b"<p>x</p>"}
    result = {"status": "corrupt_notebook", "message": "example.ipynb is not valid JSON (line 1)"}
    merge(course, graded, "carol", snapshot=None, files=broken, result=result)
    merge(course, graded, "dave", snapshot=None, files={}, result={"status": "error", "message": "worker died"})
    merge(course, graded, "alice")
    state = dump(course.url)["submissions"]
    carol = state["carol"][A]
    assert carol["flagged"] and all(g[0] == 0.0 and not g[3] for g in carol["grades"].values())
    assert all("corrupt_notebook" in c[0] and "not valid JSON" in c[0] for c in carol["comments"].values())
    assert state["dave"][A]["flagged"] and not state["alice"][A]["flagged"]
    placeholder = nbformat.read(course.root / "autograded" / "carol" / A / f"{A}.ipynb", as_version=4)
    assert "not valid JSON" in placeholder.cells[0].source
    ids = {c.metadata["nbgrader"]["grade_id"] for c in placeholder.cells if "nbgrader" in c.metadata}
    assert {"test_generator_loss", "saturation_answer"} <= ids
    assert not (course.root / "feedback").exists()
    assert formgrader_view(course) == {"alice": (True, 3.0), "carol": (True, 0.0), "dave": (True, 0.0)}

    with Gradebook(course.url) as gb:  # a grader looked and cleared the flag (FlagSubmissionHandler)
        gb.find_submission_notebook(A, A, "carol").flagged = False
        gb.db.commit()
    merge(course, graded, "carol", snapshot=None, files=broken, result=result)  # the same broken hand-in again
    assert not dump(course.url)["submissions"]["carol"][A]["flagged"]
    put_grade(course.url, "carol", "saturation_answer", 1.0, "Graded from the file you emailed.")
    snap = copy.deepcopy(graded.snapshots["bob"])  # carol hands in a readable notebook: graded normally
    snap["student"] = "carol"
    files = {k.replace("/bob/", "/carol/"): v for k, v in graded.files["bob"].items()}
    merge(course, graded, "carol", snapshot=snap, files=files)
    carol = dump(course.url)["submissions"]["carol"][A]
    assert not carol["flagged"] and carol["comments"]["generator_loss_answer"] == ("No response.", None)
    assert carol["grades"]["saturation_answer"] == (0.0, 1.0, None, True)


@pytest.mark.parametrize("course", ["sqlite"], indirect=True)
def test_collected_work_is_never_replaced(course, graded):
    folder = course.root / "submitted" / "alice" / A
    folder.mkdir(parents=True)
    (folder / f"{A}.ipynb").write_bytes(b"a newer hand-in")
    (folder / "timestamp.txt").write_text("yesterday-ish")
    files = dict(graded.files["alice"])
    files[f"submitted/alice/{A}/timestamp.txt"] = b"not a time"
    merge(course, graded, "alice", files=files)
    assert (folder / f"{A}.ipynb").read_bytes() == b"a newer hand-in"
    assert not (folder / "timestamp.txt").exists() and (folder / "timestamp.txt.invalid").read_text() == "yesterday-ish"
    assert dump(course.url)["submissions"]["alice"]["timestamp"] == "None"
    assert formgrader_view(course) == {"alice": (True, 3.0)}  # formgrader still works
    with pytest.raises(ValueError, match="not under"):
        gradebook.merge_submission(course.url, course.root, A, "alice", graded.snapshots["alice"],
                                   {f"autograded/bob/{A}/x.ipynb": b"{}"}, OK)
    with pytest.raises(ValueError, match="snapshot is of"):
        gradebook.merge_submission(course.url, course.root, A, "bob", graded.snapshots["alice"], {}, OK)


def test_reading_a_missing_gradebook_creates_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'none' / 'gradebook.db'}"
    assert gradebook.manual_grades(url) == {} and not (tmp_path / "none").exists()
    with pytest.raises(gradebook.GradebookError, match="ensure_assignment"):
        gradebook.merge_submission(url, tmp_path, A, "alice", None, {}, OK)


@pytest.mark.parametrize("course", ["sqlite"], indirect=True)
def test_feedback_never_writes_a_page_with_hidden_tests(course, graded, tmp_path, monkeypatch):
    from nbgrader.preprocessors import NbGraderPreprocessor

    merge(course, graded, "alice")
    merge(course, graded, "bob")
    put_grade(course.url, "alice", "saturation_answer", 2.0, "Well argued.")
    out = tmp_path / "out"
    (out / "feedback" / "alice" / A).mkdir(parents=True)
    (out / "feedback" / "alice" / A / f"{A}.as_submitted.html").write_text("kept")
    run = gradebook.regenerate_feedback(course.url, course.root, A, out, ["alice", "nobody"])
    assert list(run.written) == ["alice"] and run.problems == [f"nobody: no graded submission of {A!r} in the "
                                                                 "course gradebook and folder"]
    page = (out / "feedback" / "alice" / A / f"{A}.html").read_text(encoding="utf-8")
    assert "Well argued." in page and (out / "feedback" / "alice" / A / f"{A}.as_submitted.html").read_text() == "kept"

    class NoRedaction(NbGraderPreprocessor):  # a broken redaction step: the pages would show the hidden tests
        def preprocess(self, nb, resources):
            return nb, resources

    monkeypatch.setattr(feedback, "RedactHiddenTests", NoRedaction)
    run = gradebook.regenerate_feedback(course.url, course.root, A, out)
    assert run.written == {} and len(run.problems) == 2 and all("hidden test" in p for p in run.problems)
    assert (out / "feedback" / "alice" / A / f"{A}.html").read_text(encoding="utf-8") == page  # the safe page stays
    assert not (out / "feedback" / "bob").exists()


def _result(student: str, auto: float) -> dict[str, Any]:
    tests = [{"notebook": A, "cell": "test_generator_loss", "kind": "auto", "score": auto, "max_score": 3.0,
              "needs_manual": False, "outcome": "passed" if auto else "failed", "message": "" if auto else "AssertionError"},
             {"notebook": A, "cell": "saturation_answer", "kind": "manual", "score": 0.0, "max_score": 2.0,
              "needs_manual": True, "outcome": "needs_manual", "message": ""}]
    return {"student_id": student, "assignment": A, "status": "ok", "message": "", "score": auto, "max_score": 5.0,
            "auto_score": auto, "auto_max_score": 3.0, "needs_manual": True, "flags": [], "tests": tests,
            "seconds": 1.0, "graded_at": "now", "fingerprint": "x"}


def test_export_takes_formgrader_and_csv_scores(graded, tmp_path):
    course = Course(tmp_path / "course", f"sqlite:///{tmp_path / 'course' / 'gradebook.db'}", None)
    out = tmp_path / "out"
    for student, auto in (("alice", 3.0), ("bob", 0.0)):
        merge(course, graded, student)
        write_result(out, _result(student, auto))
    put_grade(course.url, "alice", "saturation_answer", 1.5, "Good.")
    put_grade(course.url, "bob", "test_generator_loss", None, extra_credit=0.5)  # extra credit on a failed test
    (out / "manual_scores.csv").write_text("student_id,assignment,cell,max_score,score,comment\n"
                                           "bob,example,saturation_answer,2,1,from the CSV\n")
    results = {r["student_id"]: r for r in write_reports(out, course.url)}
    assert results["alice"]["score"] == 4.5 and not results["alice"]["needs_manual"]
    assert results["bob"]["score"] == 1.5 and not results["bob"]["needs_manual"]
    with open(out / "tests.csv", newline="") as f:
        rows = {(r["student_id"], r["cell"]): r for r in csv.DictReader(f)}
    assert rows[("alice", "saturation_answer")]["message"] == "Good."
    assert rows[("bob", "saturation_answer")]["message"] == "from the CSV"
    assert rows[("bob", "test_generator_loss")]["message"] == "AssertionError"
    assert (out / "manual_scores_todo.csv").read_text().count("\n") == 1  # header only: all graded
    (out / "manual_scores.csv").write_text("student_id,assignment,cell,max_score,score,comment\n"
                                           "alice,example,saturation_answer,2,2,\n")
    with pytest.raises(ValueError, match=r"alice/example/saturation_answer: 1.5 in formgrader, 2 in manual_scores.csv"):
        write_reports(out, course.url)
    (out / "manual_scores.csv").write_text("student_id,assignment,cell,max_score,score,comment\n"
                                           "alice,example,saturation_answer,2,1.5,same score\n")
    assert {r["student_id"]: r["score"] for r in write_reports(out, course.url)} == {"alice": 4.5, "bob": 0.5}


# -- the whole loop ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return dict(venv_path_env(), PYTHONPATH=str(REPO_ROOT))


@contextmanager
def formgrader_server(course_root: Path, runtime: Path) -> Iterator[Any]:
    """``jupyter server`` with formgrader on loopback, started in the course folder; yields ``call(method, path, body)``."""
    port, token = _free_port(), uuid.uuid4().hex
    cmd = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course_root}"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(runtime / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=course_root, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(_env(), JUPYTER_RUNTIME_DIR=str(runtime)))

    def call(method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                assert call("GET", "/formgrader/api/status") == {"status": True}
                break
            except (OSError, AssertionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (runtime / "server.log").read_text()[-3000:]
                    raise RuntimeError("jupyter server did not start:\n" + log_text) from None
                time.sleep(0.3)
        yield call
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cli(*args: str) -> int:
    """``python -m autograder ARGS`` in this process (what the command line runs, without a new interpreter)."""
    from autograder.__main__ import main

    return main(list(args))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          env=_env(), timeout=600)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_whole_loop_grade_formgrader_export_feedback(backend, request, tmp_path):
    subs, out, root = tmp_path / "submissions", tmp_path / "out", tmp_path / "course"
    for student, body, written in (("alice", CORRECT, ANSWER), ("bob", WRONG, None)):
        (subs / student / A).mkdir(parents=True)
        nbformat.write(student_notebook(body, written), subs / student / A / f"{A}.ipynb")
    url = (f"sqlite:///{root / 'gradebook.db'}" if backend == "sqlite"
           else fresh_database(request.getfixturevalue("postgres_url"), f"loop_{uuid.uuid4().hex[:8]}"))
    # an instructor's course folder: the kit's config with this folder and gradebook, and the source notebook
    (root / "solutions" / A).mkdir(parents=True)
    shutil.copy(SOURCE, root / "solutions" / A)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(REPO_ROOT / 'course' / 'nbgrader_config.py')!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\nc.CourseDirectory.db_url = {url!r}\n")
    db_args = [] if backend == "sqlite" else ["--db-url", url]
    seconds, t0 = {}, time.monotonic()
    proc = run_cli("grade", "--assignment", A, "--submissions", str(subs), "--out", str(out), "--course-root", str(root),
                   *db_args, "--workers", "1", "--cell-timeout", "10", "--timeout", "25")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "not in the course gradebook" not in proc.stderr, proc.stderr

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    seconds["grade"], t0 = time.monotonic() - t0, time.monotonic()
    with formgrader_server(root, runtime) as call:
        seconds["server start"], t0 = time.monotonic() - t0, time.monotonic()
        listed = {s["student"]: s for s in call("GET", f"/formgrader/api/submissions/{A}")}
        assert set(listed) == {"alice", "bob"} and all(s["autograded"] for s in listed.values())
        assert (listed["alice"]["score"], listed["alice"]["needs_manual_grade"]) == (3.0, True)
        notebook = {s["student"]: s for s in call("GET", f"/formgrader/api/submitted_notebooks/{A}/{A}")}["alice"]
        grade = {g["name"]: g for g in call("GET", f"/formgrader/api/grades?submission_id={notebook['id']}")}
        note = {c["name"]: c for c in call("GET", f"/formgrader/api/comments?submission_id={notebook['id']}")}
        call("PUT", f"/formgrader/api/grade/{grade['saturation_answer']['id']}", {"manual_score": 1.5})
        call("PUT", f"/formgrader/api/comment/{note['saturation_answer']['id']}",
             {"manual_comment": "Right idea; say why the gradient vanishes."})
        assert call("GET", f"/formgrader/api/submission/{A}/alice")["score"] == 4.5

    seconds["formgrader"], t0 = time.monotonic() - t0, time.monotonic()
    assert cli("export", "--out", str(out), *db_args) == 0  # the course comes from OUT/run.json
    with open(out / "grades.csv", newline="") as f:
        grades = {r["student_id"]: r for r in csv.DictReader(f)}
    assert (grades["alice"]["score"], grades["alice"]["needs_manual"]) == ("4.5", "no")
    assert (grades["bob"]["score"], grades["bob"]["auto_score"]) == ("0.0", "0.0")
    with open(out / "tests.csv", newline="") as f:
        tests = {(r["student_id"], r["cell"]): r for r in csv.DictReader(f)}
    assert tests[("alice", "saturation_answer")]["outcome"] == "graded"
    assert tests[("alice", "saturation_answer")]["message"] == "Right idea; say why the gradient vanishes."

    pages = out / "feedback" / "alice" / A
    kept = {p.name: p.read_bytes() for p in pages.iterdir() if p.name != f"{A}.html"}
    seconds["export"], t0 = time.monotonic() - t0, time.monotonic()
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert cli("feedback", "--assignment", A, "--out", str(out), "--course-root", str(root), *db_args) == 0
    assert "2 feedback page(s) for 2 student(s)" in printed.getvalue()
    seconds["feedback"] = time.monotonic() - t0
    print(f"\nseconds ({backend}):", {k: round(v, 1) for k, v in seconds.items()})
    page = (pages / f"{A}.html").read_text(encoding="utf-8")
    assert "Right idea; say why the gradient vanishes." in page and "4.5" in page
    assert {p.name: p.read_bytes() for p in pages.iterdir() if p.name != f"{A}.html"} == kept
    hidden = [line for c in nbformat.read(SOURCE, as_version=4).cells for line in hidden_test_lines(c.source)]
    for html_page in (out / "feedback").rglob(f"{A}.html"):
        assert feedback.leaked_lines(html_page.read_text(encoding="utf-8"), hidden) == [], html_page

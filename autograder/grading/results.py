"""Per-student results and the reports built from them.

Each graded submission is stored as ``OUT/results/<assignment>/<student>.json``
(written atomically). ``grades.csv``, ``tests.csv`` and ``tests.json`` are rebuilt
from all stored results after every run, so a re-run, an interrupted run or a run
limited to some students never loses a grade. Scores graders give by hand (written
answers, overrides of automatic scores) come from the course gradebook, where
``nbgrader formgrader`` saves them, and from ``OUT/manual_scores.csv`` for graders who
do not use formgrader; ``python -m autograder export`` folds both in.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from nbformat.notebooknode import NotebookNode

GRADER_VERSION = "0.1.0"
GRADE_COLUMNS = [
    "student_id", "assignment", "score", "max_score", "status", "message", "auto_score",
    "auto_max_score", "needs_manual", "flags", "seconds", "graded_at",
]
TEST_COLUMNS = ["student_id", "assignment", "notebook", "cell", "kind", "score", "max_score", "outcome", "message"]


def new_result(student: str, assignment: str, info: Any, fingerprint: str) -> dict[str, Any]:
    """A result with a score of 0 out of the assignment's points and status ``error`` until filled in."""
    tests = [
        {"notebook": nb.name, "cell": c.grade_id, "kind": "manual" if c.solution else "auto", "score": 0.0,
         "max_score": c.points, "needs_manual": False, "outcome": "not_graded", "message": ""}
        for nb in info.notebooks.values() for c in nb.cells.values() if c.grade
    ]
    return {
        "student_id": student, "assignment": assignment, "status": "error", "message": "",
        "score": 0.0, "max_score": info.max_score, "auto_score": 0.0, "auto_max_score": info.auto_max_score,
        "needs_manual": False, "flags": [], "tests": tests, "seconds": 0.0,
        "graded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fingerprint, "grader_version": GRADER_VERSION,
    }


def cell_message(cell: NotebookNode | None) -> str:
    if cell is None or cell.cell_type != "code":
        return ""
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            text = f"{out.ename}: {out.evalue}".strip()
            return text if len(text) <= 300 else text[:297] + "..."
    return ""


def notebook_tests(nb: Any, executed: NotebookNode | None, info: Any) -> list[dict[str, Any]]:
    """Per-cell rows for one gradebook ``SubmittedNotebook``.

    ``executed`` is the autograded notebook (for error messages), ``info`` the
    released :class:`~autograder.grading.submission.NotebookInfo` (manual vs auto).
    """
    cells = {}
    if executed is not None:
        for cell in executed.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid and cell.metadata["nbgrader"].get("grade"):
                cells[gid] = cell  # the last copy is the graded one
    rows = []
    for grade in sorted(nb.grades, key=lambda g: g.name):
        ref = info.cells.get(grade.name) if info is not None else None
        manual = ref.solution if ref is not None else grade.cell_type == "markdown"
        score = float(grade.score or 0.0)
        max_score = float(grade.max_score)
        if grade.needs_manual_grade and grade.manual_score is None:
            outcome = "needs_manual"
        elif score >= max_score:
            outcome = "passed"
        elif score > 0:
            outcome = "partial"
        else:
            outcome = "failed"
        message = cell_message(cells.get(grade.name))
        if "not run" in message:
            outcome = "not_run"
        rows.append({
            "notebook": nb.name, "cell": grade.name, "kind": "manual" if manual else "auto", "score": score,
            "max_score": max_score, "needs_manual": bool(grade.needs_manual_grade), "outcome": outcome,
            "message": message,
        })
    return rows


def fingerprint(folder: Path) -> str:
    """SHA-256 over the relative paths and contents of every file in ``folder``."""
    if not folder.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def result_path(out: Path, assignment: str, student: str) -> Path:
    return out / "results" / assignment / f"{student}.json"


def write_result(out: Path, result: dict[str, Any]) -> None:
    path = result_path(out, result["assignment"], result["student_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_results(out: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted((out / "results").glob("*/*.json")):
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            continue
    return sorted(results, key=lambda r: (r["assignment"], r["student_id"]))


def up_to_date(out: Path, assignment: str, student: str, print_: str) -> bool:
    """A stored result for this exact submission that is not a grader error."""
    path = result_path(out, assignment, student)
    if not path.exists():
        return False
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return old.get("fingerprint") == print_ and old.get("status") != "error"


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


MANUAL_COLUMNS = ["student_id", "assignment", "cell", "max_score", "score", "comment"]
ScoreKey = tuple[str, str, str]  # (student, assignment, grade cell)


def read_manual_scores(out: Path) -> dict[ScoreKey, tuple[float, str]]:
    """Scores a grader typed into ``OUT/manual_scores.csv`` (empty score = not graded yet)."""
    path = out / "manual_scores.csv"
    scores: dict[ScoreKey, tuple[float, str]] = {}
    if not path.exists():
        return scores
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = (row.get("score") or "").strip()
            if text:
                try:
                    key, value = (row["student_id"], row["assignment"], row["cell"]), float(text)
                    if key in scores and scores[key][0] != value:
                        raise ValueError(f"the cell is listed twice, with scores {scores[key][0]:g} and {value:g}")
                    scores[key] = (value, row.get("comment") or "")
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"{path}: bad row {row}: {exc}") from None
    return scores


def gather_manual_scores(out: Path, db_url: str | None = None) -> tuple[dict[ScoreKey, tuple[float, str]], set[ScoreKey]]:
    """Hand-given scores from the course gradebook (formgrader) and ``OUT/manual_scores.csv``.

    Returns ``(scores, extra)``: ``(student, assignment, cell) -> (score, comment)``, and
    the keys whose formgrader score includes extra credit (allowed above the cell's
    points). Both sources may grade different cells; a cell graded in both must have the
    same score (the formgrader comment is kept, the CSV comment when formgrader has none),
    otherwise ``ValueError`` names every conflict. ``db_url`` None: the CSV only.
    """
    from autograder.grading.gradebook import by_cell, formgrader_grades

    scores = read_manual_scores(out)
    if db_url is None:
        return scores, set()
    entered = formgrader_grades(db_url)
    formgrader = by_cell(entered)
    extra = {(g.student, g.assignment, g.cell) for g in entered if g.extra_credit}
    conflicts = [f"{'/'.join(k)}: {formgrader[k][0]:g} in formgrader, {scores[k][0]:g} in manual_scores.csv"
                 for k in sorted(formgrader.keys() & scores.keys()) if not math.isclose(formgrader[k][0], scores[k][0])]
    if conflicts:
        raise ValueError(f"{len(conflicts)} cell(s) have different manual scores in the course gradebook and in "
                         f"{out / 'manual_scores.csv'}; keep one (formgrader is the primary place):\n  "
                         + "\n  ".join(conflicts[:20]))
    for key, (score, comment) in formgrader.items():
        scores[key] = (score, comment or scores.get(key, (score, ""))[1])
    return scores, extra


def apply_manual_scores(result: dict[str, Any], manual: dict[ScoreKey, tuple[float, str]],
                        extra: set[ScoreKey] | frozenset[ScoreKey] = frozenset()) -> dict[str, Any]:
    """A copy of ``result`` with hand-given scores (written answers, overrides) included in ``score``.

    A score must lie in ``[0, max_score]`` of its cell (``extra`` keys: above is allowed).
    """
    result = json.loads(json.dumps(result))
    for t in result.get("tests", []):
        key = (result["student_id"], result["assignment"], t["cell"])
        if key not in manual:
            continue
        score, comment = manual[key]
        if not math.isfinite(score) or score < 0 or (key not in extra and score > t["max_score"]):
            raise ValueError(f"manual score {score} for {key} is outside [0, {t['max_score']}]")
        result["score"] += score - t["score"]
        message = comment if comment or t["kind"] == "manual" else t.get("message", "")
        t.update(score=score, needs_manual=False, outcome="graded", message=message)
    result["needs_manual"] = any(t["needs_manual"] for t in result.get("tests", []))
    return result


def write_reports(out: Path, db_url: str | None = None) -> list[dict[str, Any]]:
    """Rebuild ``grades.csv``, ``tests.csv`` and ``tests.json`` from every stored result.

    Hand-given scores and comments are added (:func:`gather_manual_scores`: the course
    gradebook at ``db_url``, where formgrader saves them, and ``OUT/manual_scores.csv``);
    ``manual_scores_todo.csv`` lists the graded cells that still wait for a score.
    """
    manual, extra = gather_manual_scores(out, db_url)
    results = [apply_manual_scores(r, manual, extra) for r in load_results(out)]
    todo = [
        {"student_id": r["student_id"], "assignment": r["assignment"], "cell": t["cell"], "max_score": t["max_score"],
         "score": "", "comment": ""}
        for r in results for t in r.get("tests", []) if t["needs_manual"]
    ]
    grades = []
    tests = []
    nested: dict[str, dict[str, Any]] = {}
    for r in results:
        grades.append({**r, "flags": ";".join(r.get("flags", [])), "needs_manual": "yes" if r.get("needs_manual") else "no"})
        for t in r.get("tests", []):
            tests.append({"student_id": r["student_id"], "assignment": r["assignment"], **t})
        nested.setdefault(r["assignment"], {})[r["student_id"]] = {
            k: r[k] for k in ("status", "score", "max_score", "auto_score", "message", "tests")
        }
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "grades.csv", GRADE_COLUMNS, grades)
    _write_csv(out / "tests.csv", TEST_COLUMNS, tests)
    _write_csv(out / "manual_scores_todo.csv", MANUAL_COLUMNS, todo)
    tmp = out / "tests.json.tmp"
    tmp.write_text(json.dumps(nested, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out / "tests.json")
    return results

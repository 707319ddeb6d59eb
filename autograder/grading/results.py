"""Per-student results and the reports built from them.

Each graded submission is stored as ``OUT/results/<assignment>/<student>.json``
(written atomically). ``grades.csv``, ``tests.csv`` and ``tests.json`` are rebuilt
from all stored results after every run, so a re-run, an interrupted run or a run
limited to some students never loses a grade. Scores of written answers come from
``OUT/manual_scores.csv``, which only people write (``python -m autograder export``
folds them in).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
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


def _cell_message(cell: NotebookNode | None) -> str:
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
        message = _cell_message(cells.get(grade.name))
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


def read_manual_scores(out: Path) -> dict[tuple[str, str, str], tuple[float, str]]:
    """Scores a grader typed into ``OUT/manual_scores.csv`` (empty score = not graded yet)."""
    path = out / "manual_scores.csv"
    scores: dict[tuple[str, str, str], tuple[float, str]] = {}
    if not path.exists():
        return scores
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = (row.get("score") or "").strip()
            if text:
                try:
                    scores[(row["student_id"], row["assignment"], row["cell"])] = (float(text), row.get("comment") or "")
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"{path}: bad row {row}: {exc}") from None
    return scores


def apply_manual_scores(result: dict[str, Any], manual: dict[tuple[str, str, str], tuple[float, str]]) -> dict[str, Any]:
    """A copy of ``result`` with hand-given scores of written answers included in ``score``."""
    result = json.loads(json.dumps(result))
    for t in result.get("tests", []):
        key = (result["student_id"], result["assignment"], t["cell"])
        if t["kind"] == "manual" and key in manual:
            score, comment = manual[key]
            if not 0 <= score <= t["max_score"]:
                raise ValueError(f"manual score {score} for {key} is outside [0, {t['max_score']}]")
            result["score"] += score - t["score"]
            t.update(score=score, needs_manual=False, outcome="graded", message=comment)
    result["needs_manual"] = any(t["needs_manual"] for t in result.get("tests", []))
    return result


def write_reports(out: Path) -> list[dict[str, Any]]:
    """Rebuild ``grades.csv``, ``tests.csv`` and ``tests.json`` from every stored result.

    Hand-given scores in ``OUT/manual_scores.csv`` are added; ``manual_scores_todo.csv``
    lists the written answers that still wait for one (copy rows into the former).
    """
    manual = read_manual_scores(out)
    results = [apply_manual_scores(r, manual) for r in load_results(out)]
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

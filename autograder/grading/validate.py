"""``python -m autograder validate NOTEBOOK``: grade one notebook exactly as the batch does.

The notebook is copied into a temporary submissions folder and graded by the same
code path (sandboxed kernel, limits, hidden tests, integrity checks). The exit
status is 0 only when the status is ``ok`` (or ``output_truncated``) and every
automatically graded test passed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from autograder.grading.batch import grade
from autograder.grading.options import GradeOptions, course_source_root
from autograder.grading.results import result_path

STUDENT = "validate"


def infer_assignment(notebook: Path, source_root: Path) -> str:
    for name in (notebook.parent.name, notebook.stem):
        if (source_root / name).is_dir():
            return name
    raise ValueError(f"cannot tell which assignment {notebook} belongs to; pass --assignment")


def validate(notebook: Path, assignment: str | None = None, out: Path | None = None, **limits: Any) -> tuple[int, dict[str, Any]]:
    """Grade ``notebook``; returns (exit status, result dict)."""
    import json

    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    source_root = course_source_root()
    assignment = assignment or infer_assignment(notebook, source_root)
    expected = sorted(p.stem for p in (source_root / assignment).glob("*.ipynb"))
    name = expected[0] if len(expected) == 1 else notebook.stem
    with tempfile.TemporaryDirectory(prefix="autograder-validate-") as tmp:
        folder = Path(tmp) / "submissions" / STUDENT / assignment
        folder.mkdir(parents=True)
        shutil.copy(notebook, folder / f"{name}.ipynb")
        opts = GradeOptions(assignment=assignment, submissions=Path(tmp) / "submissions",
                            out=Path(out) if out else Path(tmp) / "out", force=True, workers=1,
                            course_root=Path(tmp) / "course", **limits)
        grade(opts, log=lambda _msg: None)
        result = json.loads(result_path(opts.out, assignment, STUDENT).read_text())
    passed = result["status"] in ("ok", "output_truncated") and all(
        t["outcome"] == "passed" for t in result["tests"] if t["kind"] == "auto"
    )
    return (0 if passed else 1), result


def report(result: dict[str, Any]) -> str:
    lines = [f"status: {result['status']}   automatic tests: {result['auto_score']:g} / {result['auto_max_score']:g}"]
    if result["message"]:
        lines.append(f"notes: {result['message']}")
    for t in result["tests"]:
        mark = {"passed": "PASS", "needs_manual": "MANUAL"}.get(t["outcome"], "FAIL")
        line = f"  [{mark:6}] {t['notebook']}/{t['cell']}: {t['score']:g} / {t['max_score']:g}"
        lines.append(line + (f"  {t['message']}" if t["message"] and mark == "FAIL" else ""))
    return "\n".join(lines)

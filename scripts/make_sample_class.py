"""Build the sample class that ``make demo`` grades: ``course/sample_class/<student>/<assignment>/``.

    python scripts/make_sample_class.py            # rewrite course/sample_class/
    python scripts/make_sample_class.py --check    # exit 1 when the shipped files are stale

Every submission starts from the released student notebook (``notebooks/<a>/<a>.ipynb``)
and fills its answer cells from the instructor notebook (``solutions/<a>/``, solution
markers removed), then applies what makes each student different:

| student      | what they handed in |
|--------------|---------------------|
| `full_marks` | every answer from the solution, short written answers |
| `partial`    | the same with one known slip from `SLIPS` of `autograder/assignments/<a>.py` |
| `blank`      | the release as it was handed out |
| `hostile`    | `example`: looks for hidden tests, then kills its kernel with `os._exit`; `cgan_mnist`: a cell that waits forever |

Outputs are not stored (the files are the notebooks as saved before running), so a
fresh generation is byte-identical; run this again whenever a notebook or a slip
changes (``tests/test_demo_pipeline.py`` checks that the shipped files are current).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CLASS = REPO_ROOT / "course" / "sample_class"
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)

# What each student of the sample class writes in the written-answer cells (graded by hand).
WRITTEN = {
    "saturation_answer": (
        "When D wins, $l \\to -\\infty$. For the minimax loss the gradient is $-\\sigma(l)$, which goes to zero, so "
        "the generator learns almost nothing. The non-saturating loss has gradient $-(1 - \\sigma(l)) \\to -1$, "
        "so it keeps pushing the generator exactly when its samples are bad."
    ),
    "cgan_written_conditioning": (
        "**Q1.** I can ask for a given digit. In a column of my last grid the digit changes but the slant and the "
        "stroke width stay, so once $y$ is fixed $z$ holds the handwriting style.\n\n"
        "**Q2.** If D did not see $y$, G could draw a good 1 for every label and D could not object; with pairs, "
        "a good 3 labelled 7 is rejected.\n\n"
        "**Q3.** It learns $p(x \\mid y)$ for every label instead of $p(x)$. Every class must be drawn, so it "
        "cannot drop a whole digit, but a rare digit has few real examples and looks worse."
    ),
}
FALLBACK_WRITTEN = "My answer, written for the sample class of the course demo."

# The slip the `partial` student makes, by its name in the assignment's SLIPS table.
PARTIAL_SLIP = {"example": "sum over the batch", "cgan_mnist": "d_step does not detach the fakes"}

PEEK_AND_EXIT = '''
import os
import pathlib

# Look for the instructor's notebook (with the hidden tests) in the folders around this one ...
peeked = []
for base in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents][:4]:
    for path in base.glob("*/*.ipynb"):
        try:
            if "BEGIN " + "HIDDEN TESTS" in path.read_text(errors="ignore"):
                peeked.append(str(path))
        except OSError:
            pass
print("hidden tests found in:", peeked or "nothing")
# ... then end the kernel, hoping that no test can run.
os._exit(0)
'''

WAIT_FOREVER = '''import os
import time

# Wait for the checkpoint I trained on Colab (it never arrives: the grader interrupts this cell).
while not os.path.exists("checkpoint_from_colab.pt"):
    time.sleep(1)

'''


@dataclass(frozen=True)
class Student:
    """One member of the sample class: ``make(assignment, released, answers)`` returns their notebook."""

    name: str
    what: str
    make: Callable[[str, nbformat.NotebookNode, dict[str, str]], nbformat.NotebookNode]


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def answer_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]


def solution_answers(assignment: str) -> dict[str, str]:
    """Answer cell id -> the instructor's code with the solution markers removed."""
    nb = nbformat.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    return {grade_id(c): MARKER.sub("", c.source) for c in answer_cells(nb) if c.cell_type == "code"}


def released(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO_ROOT / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)


def filled(assignment: str, nb: nbformat.NotebookNode, answers: dict[str, str],
           edits: dict[str, Callable[[str], str]] | None = None) -> nbformat.NotebookNode:
    """``nb`` with every code answer from ``answers`` (then ``edits[cell]``) and written answers filled."""
    nb = copy.deepcopy(nb)
    edits = dict(edits or {})
    for cell in answer_cells(nb):
        gid = grade_id(cell)
        if cell.cell_type == "markdown":
            cell.source = WRITTEN.get(gid, FALLBACK_WRITTEN)
            continue
        if gid not in answers:
            raise ValueError(f"{assignment}: answer cell {gid!r} has no counterpart in the solution")
        source = answers[gid]
        if gid in edits:
            source = edits.pop(gid)(source)
        cell.source = source
    if edits:
        raise ValueError(f"{assignment}: edits for cells that are not code answer cells: {sorted(edits)}")
    return nb


def slip_edits(assignment: str, name: str) -> dict[str, Callable[[str], str]]:
    """The edits of the slip called ``name`` in ``autograder/assignments/<assignment>.py``, by cell."""
    module = importlib.import_module(f"autograder.assignments.{assignment}")
    slips = {s.name: s for s in getattr(module, "SLIPS", [])}
    if name not in slips:
        raise ValueError(f"{assignment}: no slip named {name!r} (known: {', '.join(sorted(slips))})")
    by_cell: dict[str, list] = {}
    for e in slips[name].edits:
        by_cell.setdefault(e.cell, []).append(e)

    def apply_all(items: list) -> Callable[[str], str]:
        def apply(source: str) -> str:
            for e in items:
                source = e.apply(source)
            return source
        return apply

    return {cell: apply_all(items) for cell, items in by_cell.items()}


def full_marks(a: str, nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    return filled(a, nb, answers)


def partial(a: str, nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    return filled(a, nb, answers, slip_edits(a, PARTIAL_SLIP[a]))


def blank(a: str, nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    return copy.deepcopy(nb)


def hostile(a: str, nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    cells = [grade_id(c) for c in answer_cells(nb) if c.cell_type == "code"]
    if a == "example":  # the right answer, then a peek for hidden tests and a killed kernel
        edits = {cells[-1]: lambda s: s.rstrip("\n") + "\n\n" + PEEK_AND_EXIT}
    else:  # the last code answer starts by waiting forever
        edits = {cells[-1]: lambda s: WAIT_FOREVER + s}
    return filled(a, nb, answers, edits)


STUDENTS = (
    Student("full_marks", "every answer right (written answers wait for a human)", full_marks),
    Student("partial", "one known slip: " + "; ".join(f"{a}: {s}" for a, s in PARTIAL_SLIP.items()), partial),
    Student("blank", "handed in the release untouched", blank),
    Student("hostile", "example: peeks for hidden tests, then os._exit; cgan_mnist: a cell that never ends", hostile),
)
ASSIGNMENTS = ("example", "cgan_mnist")


def readme() -> str:
    rows = "\n".join(f"| `{s.name}` | {s.what} |" for s in STUDENTS)
    return (
        "# Sample class (generated)\n\n"
        "Four students who handed in `" + "` and `".join(ASSIGNMENTS) + "`, graded by `make demo`.\n"
        "Generated by `python scripts/make_sample_class.py` from `notebooks/` and `solutions/`; do not edit by hand.\n\n"
        "| student | what they handed in |\n|---|---|\n" + rows + "\n"
    )


def build(out: Path = SAMPLE_CLASS) -> list[Path]:
    """Write the sample class under ``out`` (replacing the notebooks it owns); returns the files written."""
    written = [out / "README.md"]
    out.mkdir(parents=True, exist_ok=True)
    written[0].write_text(readme(), encoding="utf-8")
    for a in ASSIGNMENTS:
        nb, answers = released(a), solution_answers(a)
        for student in STUDENTS:
            path = out / student.name / a / f"{a}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(student.make(a, nb, answers), path)
            written.append(path)
    return written


def stale(shipped: Path = SAMPLE_CLASS) -> list[str]:
    """Files of ``shipped`` that differ from a fresh generation (or are missing / extra)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        build(fresh)
        want = {p.relative_to(fresh): p.read_bytes() for p in fresh.rglob("*") if p.is_file()}
    have = {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*") if p.is_file()} if shipped.is_dir() else {}
    return sorted(str(p) for p in set(want) | set(have) if want.get(p) != have.get(p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_CLASS)
    parser.add_argument("--check", action="store_true", help="compare with a fresh generation; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        diff = stale(args.out)
        if diff:
            print(f"{args.out} is stale ({len(diff)} file(s) differ): {', '.join(diff)}\n"
                  "run: python scripts/make_sample_class.py", file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    for path in build(args.out):
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

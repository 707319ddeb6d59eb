"""One harness for every assignment: release, full marks, blank = 0, slips, variants, library copies.

Every folder ``solutions/<name>/<name>.ipynb`` is an assignment, and
``autograder/assignments/<name>.py`` is its grading module with three tables (see
:mod:`autograder.checks.assignment`): ``SLIPS`` (code a test must catch, and exactly
which test cells it must fail), ``VARIANTS`` (correct code written another way, which
must keep full marks) and ``LIBRARY_COPIES`` (answers that call the kit's reference,
which lose their cell's points with "write this yourself").

For each assignment the harness builds a corpus of submissions from the committed
student notebook, with the answer cells taken from the solution and edited by the
tables. Slips whose cells and failing tests are disjoint share one submission, so the
corpus stays small; a shared submission must then lose exactly the union of its slips'
tests, which is the same statement for each slip. A variant joins a slip submission
when none of that submission's failing tests grades the variant's cells (the hidden
checks say which cells they grade), so a broken variant cannot hide behind a slip; the
remaining variants share submissions of their own.

Two graders score the corpus. The real batch grader (``python -m autograder grade
--workers 1``: sandbox, limits, nbgrader, gradebook) grades the solution (in
``cgan_mnist`` also the blank notebook and the first slip submission). ``tests/table_runner.py`` grades every
submission the way nbgrader's autograde does, with the same hidden tests and scoring,
but in children forked from one process that imported torch and the kit once (no
kernel start, no sandbox, no figures drawn, and nothing run after the last test cell, which
cannot change a score: in ``metrics`` about 2.5 CPU-seconds a submission, where the real
grader's kernel alone takes about 15); the two run side by side, and the harness
checks that the runner gives the shared submissions the real grader's scores and
messages, cell by cell. A new assignment joins by adding its module and notebook: there is no
per-assignment code here.

Run one assignment: ``pytest tests/test_assignments.py -k cgan_mnist -s`` (``-s``
prints the corpus and the timings).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.checks.assignment import COPY_MARK, Slip, Variant
from autograder.grading.release import INSTALL_CELL_ID

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
MAX_SLIPS_PER_SUBMISSION = 6


def module_of(name: str) -> Any:
    return importlib.import_module(f"autograder.assignments.{name}")


def tables(name: str) -> tuple[list[Slip], list[Variant], list[Slip]]:
    mod = module_of(name)
    return list(getattr(mod, "SLIPS", [])), list(getattr(mod, "VARIANTS", [])), list(getattr(mod, "LIBRARY_COPIES", []))


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _paths(name: str) -> tuple[Path, Path]:
    return ROOT / "solutions" / name / f"{name}.ipynb", ROOT / "notebooks" / name / f"{name}.ipynb"


def fill_answers(name: str, edits: tuple = ()) -> nbformat.NotebookNode:
    """The student notebook with every code answer taken from the solution (markers removed)
    after ``edits``; written answers stay empty."""
    solution_path, student_path = _paths(name)
    solution = {_grade_id(c): c.source for c in nbformat.read(solution_path, as_version=4).cells if _grade_id(c)}
    nb = nbformat.read(student_path, as_version=4)
    todo = list(edits)
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        source = MARKERS.sub("", solution[_grade_id(cell)])
        for item in [e for e in todo if e.cell == _grade_id(cell)]:
            source = item.apply(source)
            todo.remove(item)
        cell.source = source
    assert not todo, f"{name}: edits for cells that are not code answer cells: {[e.cell for e in todo]}"
    return nb


def pack(items: list, disjoint_fails: bool) -> list[list]:
    """Greedy packing: items share a submission when their cells (and failing tests) are disjoint."""
    packs: list[list] = []
    for item in items:
        for group in packs:
            if len(group) >= MAX_SLIPS_PER_SUBMISSION and disjoint_fails:
                continue
            if any(item.cells & other.cells for other in group):
                continue
            if disjoint_fails and any(item.fails & other.fails for other in group):
                continue
            group.append(item)
            break
        else:
            packs.append([item])
    return packs


def cells_read_by_tests(name: str) -> dict[str, frozenset[str] | None]:
    """Test cell -> the answer cells its hidden checks grade (``None``: unknown, so every cell)."""
    mod = module_of(name)
    result: dict[str, frozenset[str] | None] = {}
    for cell in nbformat.read(_paths(name)[0], as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        called = re.findall(r"\bhidden\.(\w+)\(", cell.source)
        cells = [getattr(getattr(mod, c, None), "cells", None) for c in called]
        result[meta["grade_id"]] = frozenset().union(*cells) if called and all(c is not None for c in cells) else None
    return result


def place_variants(variants: list[Variant], slip_packs: list[list], reads: dict[str, frozenset[str] | None]) -> list[Variant]:
    """Put each variant into a slip submission where no failing test grades the variant's cells
    (so a variant that broke something could not hide behind a slip); returns the ones left over."""
    left = []
    for item in variants:
        for group in slip_packs:
            failing = set().union(*(i.fails for i in group if isinstance(i, Slip)))
            if any(item.cells & other.cells for other in group):
                continue
            if any(reads.get(t) is None or reads[t] & item.cells for t in failing):
                continue
            group.append(item)
            break
        else:
            left.append(item)
    return left


# The submissions the real batch grader grades too: the solution of every assignment (its figures,
# a clean run in the sandbox, full marks), and in one assignment the blank notebook and the first
# slip submission as well, so that the comparison with the table runner covers the failures that
# "not implemented" and hidden checks report. (The blank of ``example`` is also graded for real by
# tests/test_autograder.py.) Each real grading costs a kernel, a sandbox and nbgrader's files,
# several times the table runner's child: the blanks of the nine other assignments cost about a
# minute of CI. To grade them for real again, put "blank" into REAL_GRADER.
REAL_GRADER = ("solution",)
REAL_GRADER_FAILURES = ("cgan_mnist", ("blank", "slips0"))


def real_grader_students(name: str) -> tuple[str, ...]:
    """The submissions of assignment ``name`` that the real batch grader grades."""
    assignment, students = REAL_GRADER_FAILURES
    return (*REAL_GRADER, *(s for s in students if s not in REAL_GRADER)) if name == assignment else REAL_GRADER


@dataclass
class Graded:
    name: str
    grades: dict[str, dict[str, str]]  # the real grader's grades.csv rows, per student
    tests: dict[str, dict[str, dict[str, str]]]  # the real grader's tests.csv rows, per student and cell
    table: dict[str, dict[str, Any]]  # the table runner's record, per student
    packs: dict[str, list] = field(default_factory=dict)  # submission -> slips or variants
    out: Path | None = None
    seconds: float = 0.0
    table_seconds: float = 0.0

    def auto(self, student: str) -> dict[str, dict[str, str]]:
        return {c: r for c, r in self.tests.get(student, {}).items() if r["kind"] == "auto"}

    def table_tests(self, student: str) -> dict[str, dict[str, Any]]:
        record = self.table[student]
        assert record["status"] == "ok", f"{self.name}/{student}: the table runner says {record}"
        return record["tests"]

    def table_failed(self, student: str) -> set[str]:
        return {c for c, r in self.table_tests(student).items() if r["score"] < r["max_score"]}

    def submission_of(self, item_name: str) -> str:
        return next(s for s, items in self.packs.items() if any(i.name == item_name for i in items))

    def graded_with(self, item: Slip | Variant) -> tuple[str, list, set[str]]:
        """The submission holding ``item``, its items, and the tests its slips must fail."""
        student = self.submission_of(item.name)
        group = self.packs[student]
        return student, group, set().union(*(i.fails for i in group if isinstance(i, Slip)))


_CACHE: dict[str, Graded] = {}
TABLE_WORKERS = 2
TABLE_THREADS = max(1, (os.cpu_count() or 1) // TABLE_WORKERS)  # each child's, and each real kernel's, CPU threads


def _env() -> dict[str, str]:
    env = dict(os.environ, GAN_COURSE_MODE="quick", MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _start_real_grader(name: str, base: Path, corpus: dict[str, nbformat.NotebookNode]) -> subprocess.Popen:
    for student, nb in corpus.items():
        folder = base / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", "--assignment", name, "--submissions", str(base / "submitted"),
         "--out", str(base / "out"), "--course-root", str(base / "course"),
         "--workers", "1", "--kernel-threads", str(TABLE_THREADS)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _real_grader_results(proc: subprocess.Popen, base: Path, corpus: dict[str, nbformat.NotebookNode]) -> tuple[dict, dict]:
    try:
        stdout, stderr = proc.communicate(timeout=1500)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, f"the grader could not run:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    out = base / "out"
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        grades = {row["student_id"]: row for row in csv.DictReader(f)}
    tests: dict[str, dict[str, dict[str, str]]] = {}
    with open(out / "tests.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            tests.setdefault(row["student_id"], {})[row["cell"]] = row
    assert set(grades) == set(corpus), f"graded {sorted(grades)}, submitted {sorted(corpus)}"
    return grades, tests


class TableServer:
    """One ``tests/table_runner.py --serve`` per pytest process: its imports are paid once."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen | None = None

    def grade(self, spec: dict[str, Any]) -> None:
        if self.proc is None or self.proc.poll() is not None:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "table_runner.py"), "--serve"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                             cwd=ROOT, env=_env())
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply and json.loads(reply) == {"done": spec["out"]}, (
            f"the table runner stopped ({reply!r}):\n{self.log.read_text(errors='replace')[-3000:]}")

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _table_runner(server: TableServer, name: str, base: Path, corpus: dict[str, nbformat.NotebookNode]) -> tuple[dict, float]:
    folder = base / "table"
    folder.mkdir()
    for student, nb in corpus.items():
        nbformat.write(nb, folder / f"{student}.ipynb")
    spec = {"solution": str(_paths(name)[0]), "out": str(folder / "out"), "workers": TABLE_WORKERS, "threads": TABLE_THREADS, "timeout": 900,
            "env": {"GAN_COURSE_MODE": "quick", "MPLBACKEND": "Agg"},
            "submissions": {student: str(folder / f"{student}.ipynb") for student in corpus}}
    start = time.perf_counter()
    server.grade(spec)
    seconds = time.perf_counter() - start
    table = {student: json.loads((folder / "out" / f"{student}.json").read_text(encoding="utf-8")) for student in corpus}
    return table, seconds


def grade_corpus(server: TableServer, name: str, base: Path) -> Graded:
    slips, variants, copies = tables(name)
    corpus: dict[str, nbformat.NotebookNode] = {"solution": fill_answers(name), "blank": nbformat.read(_paths(name)[1], as_version=4)}
    packs: dict[str, list] = {}
    slip_packs = pack(slips + copies, disjoint_fails=True)
    left = place_variants(variants, slip_packs, cells_read_by_tests(name))
    for i, group in enumerate(slip_packs):
        packs[f"slips{i}"] = group
    for i, group in enumerate(pack(left, disjoint_fails=False)):
        packs[f"variants{i}"] = group
    for student, group in packs.items():
        corpus[student] = fill_answers(name, tuple(e for item in group for e in item.edits))
    # one worker: it grades the two submissions one after the other, the second one's kernel started
    # while the first one runs, and a second worker's start-up would cost more than it saves beside
    # the table runner (theory: 35 s and about 61 CPU-s for the harness, against 39 s and 71 with two);
    # its kernels get the table runner's thread count, so that both compute the same numbers
    real = {student: nb for student, nb in corpus.items() if student in real_grader_students(name)}
    start = time.perf_counter()
    proc = _start_real_grader(name, base, real)  # both graders at once
    try:
        table, table_seconds = _table_runner(server, name, base, corpus)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    grades, tests = _real_grader_results(proc, base, real)
    seconds = time.perf_counter() - start
    print(f"\n[{name}] real grader: {len(real)} submissions, table runner: {len(corpus)} submissions, "
          f"side by side (1 and 2 workers): {seconds:.1f} s in all (the table runner's part {table_seconds:.1f} s)")
    for student, record in table.items():
        items = ", ".join(i.name for i in packs.get(student, []))
        score = sum(r["score"] for r in record["tests"].values())
        top = sum(r["max_score"] for r in record["tests"].values())
        real_row = f"; real grader {grades[student]['auto_score']}, {grades[student]['seconds']} s" if student in grades else ""
        print(f"  {student}: {score:g}/{top:g} automatic, {record['status']}, {record['seconds']} s{real_row}"
              f"{'  [' + items + ']' if items else ''}")
    return Graded(name, grades, tests, table, packs, base / "out", seconds, table_seconds)


@pytest.fixture(scope="session")
def graded(tmp_path_factory: pytest.TempPathFactory):
    server = TableServer(tmp_path_factory.mktemp("table_runner") / "server.log")

    def get(name: str) -> Graded:
        if name not in _CACHE:
            _CACHE[name] = grade_corpus(server, name, tmp_path_factory.mktemp(name))
        return _CACHE[name]

    yield get
    server.close()


def _items(kind: int) -> list[Any]:
    params = []
    for name in ASSIGNMENTS:
        for item in tables(name)[kind]:
            params.append(pytest.param(name, item, id=f"{name}-{item.name}"))
    return params


# --- the tables themselves (fast) ----------------------------------------------------------


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_assignment_has_a_grading_module_with_full_tables(name: str) -> None:
    mod = module_of(name)
    slips, variants, copies = tables(name)
    assert slips, f"{name}: SLIPS is empty"
    assert len(variants) >= 5, f"{name}: at least 5 correct VARIANTS are expected, found {len(variants)}"
    assert copies, f"{name}: LIBRARY_COPIES needs at least one answer that calls the kit's reference"
    assert isinstance(getattr(mod, "OFF_LIMITS", None), dict), f"{name}: OFF_LIMITS (answer cell -> library names) is missing"
    solution_path, _ = _paths(name)
    cells = {_grade_id(c): c for c in nbformat.read(solution_path, as_version=4).cells if _grade_id(c)}
    auto_tests = {g for g, c in cells.items() if c.metadata["nbgrader"].get("grade") and not c.metadata["nbgrader"].get("solution")}
    answers = {g for g, c in cells.items() if c.metadata["nbgrader"].get("solution")}
    assert set(mod.OFF_LIMITS) <= answers, f"{name}: OFF_LIMITS names unknown answer cells {set(mod.OFF_LIMITS) - answers}"
    for item in slips + copies:
        assert item.fails, f"{name}: slip {item.name!r} lists no failing test"
        assert item.fails <= auto_tests, f"{name}: slip {item.name!r} names unknown tests {sorted(item.fails - auto_tests)}"
    for item in slips + copies + variants:
        assert item.cells <= answers, f"{name}: {item.name!r} edits cells that are not answers: {sorted(item.cells - answers)}"
        fill_answers(name, item.edits)  # every edit applies exactly once
    names = [i.name for i in slips + copies + variants]
    assert len(names) == len(set(names)), f"{name}: table entries need distinct names"


MAX_MODULE_LINES = 250


def test_grading_modules_stay_small() -> None:
    """Each file of ``autograder/assignments/`` holds what is particular to one assignment, in under
    250 lines; a large assignment splits into ``<name>_reference.py``, ``<name>_tables.py``, ... ."""
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "autograder" / "assignments").glob("*.py")}
    too_long = {name: n for name, n in sizes.items() if n >= MAX_MODULE_LINES}
    assert not too_long, f"grading modules of {MAX_MODULE_LINES} lines or more: {too_long}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_hidden_modules_are_imported_only_in_hidden_tests(name: str) -> None:
    _, student_path = _paths(name)
    text = student_path.read_text(encoding="utf-8")
    for leaked in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "Model answer", "autograder.assignments"):
        assert leaked not in text, f"the student notebook of {name} contains {leaked!r}"
    solution = nbformat.read(_paths(name)[0], as_version=4)
    hidden = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
    for cell in solution.cells:
        visible = hidden.sub("", cell.source)
        assert "autograder.assignments" not in visible, (
            f"{name}: cell {_grade_id(cell) or '(untagged)'} imports a grading module outside a hidden test")
        assert "autograder.grading" not in cell.source, f"{name}: a cell uses autograder.grading (the batch grader)"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_notebook_that_draws_figures_selects_the_inline_backend_first(name: str) -> None:
    # With MPLBACKEND=Agg in the environment of Jupyter (a shell that exported it, the Makefile's
    # recipes), plt.show() in a kernel draws nothing; `%matplotlib inline` before any figure shows them.
    solution = nbformat.read(_paths(name)[0], as_version=4)
    code = [c.source for c in solution.cells if c.cell_type == "code"]
    draws = [i for i, source in enumerate(code) if re.search(r"\bplt\.|matplotlib|show_grid|plot_losses|explore_latent", source)]
    if not draws:
        return
    inline = [i for i, source in enumerate(code) if re.search(r"^%matplotlib inline\b", source, re.M)]
    assert inline and inline[0] <= draws[0], (
        f"{name}: the first code cell that imports or draws with matplotlib (code cell {draws[0]}) comes before any "
        "`%matplotlib inline`; put it at the top of that cell")


# --- release -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_notebook_is_a_fresh_release(name: str, tmp_path: Path) -> None:
    from autograder.grading.release import comparable, generate

    (fresh,) = generate(name, release_root=tmp_path)
    committed = nbformat.read(_paths(name)[1], as_version=4)
    assert comparable(committed) == comparable(nbformat.read(fresh, as_version=4)), (
        f"notebooks/{name} differs from what `python -m autograder release {name}` generates; re-run it")


# --- the graded corpus ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_gets_every_automatic_point_with_a_clean_run(name: str, graded) -> None:
    g = graded(name)
    grade = g.grades["solution"]
    assert grade["status"] == "ok", grade["message"]
    lost = {c: r["message"] for c, r in g.auto("solution").items() if float(r["score"]) < float(r["max_score"])}
    assert not lost, f"{name}: the solution lost points: {lost}"
    assert float(grade["auto_max_score"]) > 0 and math.isclose(float(grade["auto_score"]), float(grade["auto_max_score"]))
    nb = nbformat.read(g.out / "autograded" / "solution" / name / f"{name}.ipynb", as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i} ({_grade_id(cell)}): {out.ename}: {out.evalue[:200]}")
            elif out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} ({_grade_id(cell)}) wrote to stderr: {out.text[:200]}")
    assert not problems, "\n".join(problems)
    # this run also stands for nbval's run of the solution notebook (see the repository's conftest.py):
    # the same code cells, in the same order, each of them executed (after the release's first cell,
    # which fetches the kit where it is missing and does nothing here: tests/test_colab.py)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].get("id") == INSTALL_CELL_ID, f"{name}: the graded solution does not start with the install cell"
    ran = [_code(c.source) for c in code[1:]]
    reader = [_code(c.source) for c in nbformat.read(_paths(name)[0], as_version=4).cells if c.cell_type == "code"]
    assert ran == reader, f"{name}: the graded solution ran other cells than solutions/{name}/{name}.ipynb holds"
    skipped = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip() and c.execution_count is None]
    assert not skipped, f"{name}: cells {skipped} of the graded solution never ran"
    figures = sum(1 for c in nb.cells for o in c.get("outputs", []) if {"image/png", "image/jpeg"} & set(o.get("data", {})))
    expected = getattr(module_of(name), "SOLUTION_FIGURES", 0)
    assert figures >= expected, f"{name}: expected at least {expected} figures in quick mode, got {figures}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_blank_notebook_gets_zero_without_failing(name: str, graded) -> None:
    """The released notebook, untouched, gets 0 and a clean record: from the real grader where it
    grades the blank, else from the table runner (held to the real grader's scores and messages by
    test_table_runner_scores_as_the_real_grader)."""
    g = graded(name)
    if "blank" in g.grades:
        grade = g.grades["blank"]
        assert grade["status"] == "ok", f"{name}: grading the blank notebook failed: {grade['message']}"
        assert float(grade["auto_score"]) == 0, {c: r["score"] for c, r in g.auto("blank").items()}
    tests = g.table_tests("blank")  # fails unless the table runner's record says "ok"
    assert tests, f"{name}: the table runner graded no test cell of the blank notebook"
    assert all(r["score"] == 0 for r in tests.values()), {c: r["score"] for c, r in tests.items()}


HIDDEN_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) HIDDEN TESTS[ \t]*\n?", re.M)


def _code(source: str) -> str:
    """A code cell's source without nbgrader's solution and hidden-test marker lines."""
    return HIDDEN_MARKERS.sub("", MARKERS.sub("", source if source.endswith("\n") else source + "\n")).strip()


def _check_slip(name: str, item: Slip, graded) -> None:
    g = graded(name)
    student, group, expected = g.graded_with(item)
    auto = g.table_tests(student)
    failed = g.table_failed(student)
    messages = "; ".join(f"{c}: {auto[c]['message']}" for c in sorted(failed))
    assert item.fails <= failed, f"{name}/{item.name}: these tests should fail but passed: {sorted(item.fails - failed)}"
    assert failed <= expected, (f"{name}/{item.name} (graded together with {[i.name for i in group]}): "
                                f"unexpected failures {sorted(failed - expected)}; messages: {messages}")
    assert all(auto[c]["score"] == 0 for c in failed), f"{name}/{item.name}: partial credit where a test failed: {auto}"
    if item.message:
        for cell in item.fails:
            assert item.message.lower() in auto[cell]["message"].lower(), (
                f"{name}/{item.name}: {cell} should say {item.message!r}; it says {auto[cell]['message']!r}")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "item"), _items(0))
def test_slip_loses_exactly_its_tests(name: str, item: Slip, graded) -> None:
    _check_slip(name, item, graded)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "item"), _items(2))
def test_library_copy_loses_its_points(name: str, item: Slip, graded) -> None:
    assert item.message == COPY_MARK
    _check_slip(name, item, graded)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "item"), _items(1))
def test_correct_variant_keeps_full_marks(name: str, item: Variant, graded) -> None:
    g = graded(name)
    student, group, allowed = g.graded_with(item)  # allowed: tests lost to slips graded alongside
    lost = {c: r["message"] for c, r in g.table_tests(student).items() if r["score"] < r["max_score"] and c not in allowed}
    assert not lost, f"{name}/{item.name} (graded together with {[i.name for i in group]}) lost points: {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_table_runner_scores_as_the_real_grader(name: str, graded) -> None:
    """On the submissions both grade, the table runner gives every test cell the real grader's score
    and message (so its verdicts on the other submissions stand for the real grader's)."""
    g = graded(name)
    shared = real_grader_students(name)
    assert set(shared) == set(g.grades), f"{name}: the real grader graded {sorted(g.grades)}"
    for student in shared:
        grade = g.grades[student]
        assert grade["status"] == "ok", f"{name}/{student}: {grade['message']}"
        real = {c: (float(r["score"]), float(r["max_score"]), r["message"]) for c, r in g.auto(student).items()}
        fast = {c: (r["score"], r["max_score"], r["message"]) for c, r in g.table_tests(student).items()}
        assert fast == real, f"{name}/{student}: table runner {fast}\nreal grader {real}"
        lost = sum(r[1] - r[0] for r in real.values())
        assert math.isclose(float(grade["auto_score"]), float(grade["auto_max_score"]) - lost)
    for student in shared:
        if student != "solution":
            assert g.table_failed(student), f"{name}/{student} lost nothing, so the comparison shows little"


def test_packing_keeps_cells_and_failures_apart() -> None:
    from autograder.checks.assignment import edit, slip

    s1 = slip("s1", edit("c1", "x", "y"), fails={"t1"})
    s2 = slip("s2", edit("c2", "x", "y"), fails={"t2"})
    s3 = slip("s3", edit("c1", "z", "w"), fails={"t3"})  # same cell as s1
    s4 = slip("s4", edit("c3", "x", "y"), fails={"t2"})  # same test as s2
    groups = pack([s1, s2, s3, s4], disjoint_fails=True)
    assert [[i.name for i in g] for g in groups] == [["s1", "s2"], ["s3", "s4"]]


def test_variants_join_only_slip_submissions_whose_failures_cannot_hide_them() -> None:
    from autograder.checks.assignment import edit, slip, variant

    s1 = slip("s1", edit("loss", "x", "y"), fails={"test_loss"})
    s2 = slip("s2", edit("model", "x", "y"), fails={"test_model", "test_training"})
    v_step = variant("v_step", edit("step", "a", "b"))
    v_loss = variant("v_loss", edit("loss", "a", "b"))
    reads = {"test_loss": frozenset({"loss"}), "test_model": frozenset({"model"}), "test_training": None}
    groups = [[s1], [s2]]
    left = place_variants([v_step, v_loss], groups, reads)
    # v_step may sit beside s1 (test_loss does not grade "step"); never beside s2, whose
    # test_training grades unknown cells; v_loss shares s1's cell, and s2's unknown test
    assert [[i.name for i in g] for g in groups] == [["s1", "v_step"], ["s2"]]
    assert [v.name for v in left] == ["v_loss"]

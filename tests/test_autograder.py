"""The batch grader on a corpus of good and hostile submissions for ``example``.

The corpus is written by this file from the committed student notebook; it is
graded once with two workers (module fixture) and every student is checked for
score, status and leak-free feedback. Further tests re-run the grader to check
idempotence, that regrading one student leaves the others alone, and that one
worker gives the same grades as two. Budget: about 4 minutes on an idle
2-core machine (each submission starts a kernel, ~3-8 s).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.grading import feedback
from autograder.grading.options import REPO_ROOT

RELEASE = REPO_ROOT / "notebooks" / "example" / "example.ipynb"
SOURCE = REPO_ROOT / "solutions" / "example" / "example.ipynb"
LIMITS = ["--cell-timeout", "10", "--timeout", "25", "--memory-mb", "1536", "--max-output-kb", "256"]
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"

CORRECT = "return F.softplus(-fake_logits).mean()"
WRONG = "return F.softplus(fake_logits).mean()"
DEF = "def generator_loss(fake_logits):\n    {}\n"

READ_HIDDEN = r'''
import glob, os, pathlib
import autograder.checks
repo = pathlib.Path(autograder.checks.__file__).resolve().parents[2]
places = [pathlib.Path.cwd(), *pathlib.Path.cwd().parents, repo, repo.parent, repo / "solutions", repo / ".git", repo / "tests",
          pathlib.Path("/tmp"), pathlib.Path("/root"), pathlib.Path("/proc/1/root") / str(repo).lstrip("/") / "solutions"]
places += [pathlib.Path(f"/proc/{p}/root/tmp") for p in os.listdir("/proc") if p.isdigit()]
found = []
for place in places:
    for pattern in ("*.ipynb", "*/*.ipynb", "*/*/*.ipynb", "*/*/*/*.ipynb", "*/*/*/*/*.db", "*.db", "*/*.db", "*/*/*.db"):
        for path in glob.glob(str(place / pattern)):
            try:
                text = open(path, "rb").read().decode("utf-8", "replace")
            except OSError:
                continue
            if "BEGIN " + "HIDDEN" in text or "hidden" + "_cases" in text:
                found.append(path)
print("HIDDEN-FOUND" if found else "nothing found", sorted(set(found))[:3])
'''


def _cell(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _with(answer_source=None, body=None, edit=None):
    """A builder: the released notebook with the answer cell replaced or filled, then ``edit(nb)``."""
    def build(base):
        nb = copy.deepcopy(base)
        i = _cell(nb, "generator_loss_answer")
        if body is not None:
            nb.cells[i].source = nb.cells[i].source.replace(STUB, body)
        if answer_source is not None:
            nb.cells[i].source = answer_source
        if edit is not None:
            edit(nb)
        return nb
    return build


OWN_RUN = "output of the student's own run 7f3a"


def _written(nb):
    nb.cells[_cell(nb, "saturation_answer")].source = "The minimax gradient vanishes as D(G(z)) -> 0; the non-saturating one does not."
    # what the student's own run printed: the grader re-runs the notebook, so only the
    # as-submitted page can show it
    nb.cells[_cell(nb, "generator_loss_answer")].outputs = [nbformat.v4.new_output("stream", name="stdout", text=OWN_RUN)]


def _delete_test(nb):
    del nb.cells[_cell(nb, "test_generator_loss")]


def _duplicate(nb):
    i, j = _cell(nb, "generator_loss_answer"), _cell(nb, "test_generator_loss")
    nb.cells[j + 1:j + 1] = [copy.deepcopy(nb.cells[i]), copy.deepcopy(nb.cells[j])]


def _assert_true(nb):
    nb.cells[_cell(nb, "test_generator_loss")].source = "assert True"


def _retag(nb):
    cell = nb.cells[_cell(nb, "test_generator_loss")]
    cell.metadata.nbgrader.update(grade=False, locked=False)
    del cell.metadata.nbgrader["points"]
    cell.source = "pass"


def _after_test(source):
    def edit(nb):
        nb.cells.insert(_cell(nb, "test_generator_loss") + 1, nbformat.v4.new_code_cell(source))
    return edit


def _sleeps(nb):
    i = _cell(nb, "test_generator_loss")
    nb.cells[i:i] = [nbformat.v4.new_code_cell("import time\ntime.sleep(9)") for _ in range(3)]


FONT_PROBE = r'''
import glob, os
before = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(os.environ["MPLCONFIGDIR"], "fontlist-*.json"))}
import io
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.set_title("fonts")
fig.savefig(io.BytesIO(), format="png")
plt.close(fig)
after = {p: os.stat(p).st_mtime_ns for p in glob.glob(os.path.join(os.environ["MPLCONFIGDIR"], "fontlist-*.json"))}
print("FONTS-PREBUILT" if before and before == after else f"FONTS-REBUILT {before} {after}")
'''


# student -> (builder or raw writer, expected auto score, expected status)
CORPUS = {
    "correct": (_with(body=CORRECT, edit=_written), 3, "ok"),
    "correct_bce": (_with(body="return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))",
                          edit=_after_test(FONT_PROBE)), 3, "ok"),
    "wrong_sign": (_with(body=WRONG), 0, "ok"),
    "naive_unstable": (_with(body="return -torch.log(torch.sigmoid(fake_logits)).mean()"), 0, "ok"),
    "sum_for_mean": (_with(body="return F.softplus(-fake_logits).sum()"), 0, "ok"),
    "blank": (_with(), 0, "ok"),
    "infinite_loop": (_with(answer_source="while True:\n    pass\n" + DEF.format(CORRECT)), 0, "timeout"),
    # waits without spinning (the busy loop is infinite_loop's): only the kill can end it
    "ignores_sigint": (_with(answer_source="import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                             "while True:\n    time.sleep(0.05)\n"), 0, "timeout"),
    "sys_exit": (_with(answer_source=DEF.format(CORRECT) + "import sys\nsys.exit(1)\n"), 3, "ok"),
    "os_exit": (_with(answer_source=DEF.format(CORRECT) + "import os\nos._exit(0)\n"), 0, "kernel_died"),
    "memory_bomb": (_with(answer_source="table = [0.0] * (2 * 10**9)  # 16 GB\n" + DEF.format(CORRECT)), 0, "memory"),
    "huge_output": (_with(answer_source=DEF.format(CORRECT) + "for i in range(20000):\n    print('spam ' * 40)\n"), 3, "output_truncated"),
    "corrupt_json": ("corrupt", 0, "corrupt_notebook"),
    "missing_notebook": ("missing", 0, "missing_notebook"),
    "extra_notebook": ("extra", 3, "ok"),
    "deleted_test": (_with(body=CORRECT, edit=_delete_test), 3, "tampered"),
    "duplicated_cells": (_with(body=CORRECT, edit=_duplicate), 3, "ok"),
    "assert_true": (_with(body=WRONG, edit=_assert_true), 0, "tampered"),
    "retagged": (_with(body=WRONG, edit=_retag), 0, "tampered"),
    "monkeypatch": (_with(answer_source=DEF.format(WRONG) + "torch.allclose = lambda *a, **k: True\n"
                          "torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)\n"), 0, "tampered"),
    "redefine_checks": (_with(answer_source=DEF.format(WRONG) + "import autograder.checks as checks\n"
                              "for name in ('check_close', 'check_monotone', 'check_loss', 'check_reduction_mean'):\n"
                              "    setattr(checks, name, lambda *a, **k: None)\n"), 0, "tampered"),
    "shadow_helper": (_with(answer_source=DEF.format(CORRECT) + "def check_loss(*args, **kwargs):\n    return None\n"), 3, "tampered"),
    "read_hidden": (_with(answer_source=DEF.format(CORRECT) + READ_HIDDEN), 3, "ok"),
    "history_leak": (_with(body=CORRECT, edit=_after_test("print('\\n\\n'.join(In))")), 3, "tampered"),
    "slow_notebook": (_with(body=CORRECT, edit=_sleeps), 0, "timeout"),
}


def write_corpus(root: Path, students=None) -> None:
    base = nbformat.read(RELEASE, as_version=4)
    for student, (build, _, _) in CORPUS.items():
        if students is not None and student not in students:
            continue
        folder = root / student / "example"
        folder.mkdir(parents=True)
        if build == "corrupt":
            (folder / "example.ipynb").write_text('{"cells": [{"cell_type": "code", "source": ', encoding="utf-8")
        elif build == "missing":
            (folder / "notes.txt").write_text("I could not finish.\n", encoding="utf-8")
        elif student == "duplicated_cells":  # raw JSON: nbformat.write would rename the repeated ids
            (folder / "example.ipynb").write_text(json.dumps(build(base)), encoding="utf-8")
        elif build == "extra":
            nbformat.write(_with(body=CORRECT)(base), folder / "example.ipynb")
            scratch = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise RuntimeError('scratch')")])
            nbformat.write(scratch, folder / "scratch.ipynb")
        else:
            nbformat.write(build(base), folder / "example.ipynb")


def run_grader(subs: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [sys.executable, "-m", "autograder", "grade", "--assignment", "example", "--submissions", str(subs),
           "--out", str(out), "--course-root", str(out.parent / "course"), *LIMITS, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def read_grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    subs, out = root / "submissions", root / "out"
    write_corpus(subs)
    proc = run_grader(subs, out, "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return subs, out, read_grades(out), proc


def test_batch_finishes_with_every_student(graded):
    _, out, grades, proc = graded
    assert set(grades) == set(CORPUS)
    run = json.loads((out / "run.json").read_text())
    assert run["graded"] == len(CORPUS) and run["workers"] == 2
    print("\nseconds per submission (2 workers):", json.dumps(run["seconds_per_student"]), "wall", run["wall_seconds"])


@pytest.mark.parametrize("student", sorted(CORPUS))
def test_score_and_status(graded, student):
    _, out, grades, _ = graded
    _, auto, status = CORPUS[student]
    row = grades[student]
    assert (float(row["auto_score"]), row["status"]) == (auto, status), row["message"]
    assert float(row["max_score"]) == 5.0 and float(row["auto_max_score"]) == 3.0
    if row["status"] != "ok" or float(row["auto_score"]) < 3:
        assert row["message"], "a zero or a failure must say why"
    html = list((out / "feedback" / student / "example").glob("*.html"))
    assert html, "every student gets feedback"


def test_messages_are_specific(graded):
    _, out, grades, _ = graded
    msg = {s: r["message"] for s, r in grades.items()}
    assert "os._exit" not in msg["os_exit"] and "exit" in msg["os_exit"]
    assert "memory" in msg["memory_bomb"].lower() or "MemoryError" in msg["memory_bomb"]
    assert "scratch.ipynb" in msg["extra_notebook"]
    assert "test_generator_loss" in msg["deleted_test"] and "restored" in msg["deleted_test"]
    assert "torch.allclose" in msg["monkeypatch"]
    assert "check_loss" in msg["shadow_helper"]
    assert "appears 2 times" in msg["duplicated_cells"] and "duplicate cell ids" in msg["duplicated_cells"]
    assert "time limit" in msg["slow_notebook"]
    assert grades["correct"]["needs_manual"] == "yes"
    assert "no answer in 'generator_loss_answer'" in msg["blank"] and "NotImplementedError" in msg["blank"]
    assert "test_generator_loss failed: AssertionError" in msg["wrong_sign"]
    tests = json.loads((out / "tests.json").read_text())["example"]
    naive = {t["cell"]: t for t in tests["naive_unstable"]["tests"]}["test_generator_loss"]
    assert "numerically stable" in naive["message"]


def test_kernels_start_with_the_workers_font_list(graded):
    """Each kernel gets a copy of matplotlib's font list, built once by the grader, and uses it
    as it is (no rebuild: about 0.3 s of every kernel)."""
    _, out, _, _ = graded
    nb = nbformat.read(out / "autograded" / "correct_bce" / "example" / "example.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "FONTS-PREBUILT" in printed, printed[-500:]


def test_tests_csv_has_a_row_per_graded_cell(graded):
    _, out, _, _ = graded
    with open(out / "tests.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by = {(r["student_id"], r["cell"]): r for r in rows}
    assert by[("correct", "test_generator_loss")]["outcome"] == "passed"
    assert by[("correct", "saturation_answer")]["outcome"] == "needs_manual"
    assert by[("wrong_sign", "test_generator_loss")]["outcome"] == "failed"
    assert by[("slow_notebook", "test_generator_loss")]["outcome"] == "not_run"
    assert by[("monkeypatch", "test_generator_loss")]["outcome"] == "not_run"


def _hidden_lines():
    src = nbformat.read(SOURCE, as_version=4)
    from autograder.grading.submission import hidden_test_lines

    return [line for c in src.cells for line in hidden_test_lines(c.source)]


def test_feedback_never_shows_hidden_tests(graded):
    _, out, _, _ = graded
    hidden = _hidden_lines()
    assert hidden
    for page in (out / "feedback").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert feedback.leaked_lines(text, hidden) == [], page
        assert "hidden_cases" not in text and "BEGIN HIDDEN" not in text, page
        assert "autograder/checks/core.py" not in text, page


def test_as_submitted_notebook_beside_the_autograded_one(graded):
    """The written answers are judged against the student's own outputs: the notebook as
    handed in is kept in the course folder, rendered beside the autograded one (linked from
    formgrader's view of it) and beside the feedback page (linked from it)."""
    subs, out, _, _ = graded
    course = out.parent / "course"
    handed_in = subs / "correct" / "example" / "example.ipynb"
    assert (course / "submitted" / "correct" / "example" / "example.ipynb").read_bytes() == handed_in.read_bytes()
    for folder in (out / "feedback", course / "autograded"):
        page = (folder / "correct" / "example" / "example.as_submitted.html").read_text(encoding="utf-8")
        assert OWN_RUN in page and "generator_loss" in page
    regraded = nbformat.read(course / "autograded" / "correct" / "example" / "example.ipynb", as_version=4)
    assert "/view/autograded/correct/example/example.as_submitted.html" in regraded.cells[0].source
    assert OWN_RUN not in json.dumps([c.get("outputs", []) for c in regraded.cells])  # really re-run
    feedback_page = (out / "feedback" / "correct" / "example" / "example.html").read_text(encoding="utf-8")
    assert 'href="example.as_submitted.html"' in feedback_page


def test_kernel_cannot_read_hidden_tests(graded):
    _, out, grades, _ = graded
    nb = nbformat.read(out / "autograded" / "read_hidden" / "example" / "example.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    run = json.loads((out / "run.json").read_text())
    if not run["isolated_kernels"]:
        pytest.skip("kernels are not isolated on this machine (grader not running as root)")
    assert "nothing found" in text and "HIDDEN-FOUND" not in text, text[:2000]


def test_rerun_skips_graded_and_keeps_grades(graded):
    subs, out, grades, _ = graded
    before = (out / "grades.csv").read_text()
    proc = run_grader(subs, out, "--workers", "2")
    assert proc.returncode == 0 and "graded 0" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert (out / "grades.csv").read_text() == before


def test_regrading_one_student_leaves_the_others(graded, tmp_path):
    subs, out, grades, _ = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(subs, subs2)
    shutil.copytree(out, out2)
    shutil.copy(subs / "correct_bce" / "example" / "example.ipynb", subs2 / "wrong_sign" / "example" / "example.ipynb")
    proc = run_grader(subs2, out2, "--workers", "2")
    assert proc.returncode == 0 and "graded 1" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    after = read_grades(out2)
    assert (after["wrong_sign"]["auto_score"], after["wrong_sign"]["status"]) == ("3.0", "ok")
    for student, row in grades.items():
        if student != "wrong_sign":
            assert after[student] == row


# One worker grades these in turn (in the order of their names): a kernel that patched torch
# (monkeypatch), then one that died (os_exit), then an honest wrong answer that must still lose its
# points; and two that start no kernel. Timeouts are wall-clock: the main run covers them.
SUBSET = ["correct", "corrupt_json", "missing_notebook", "monkeypatch", "os_exit", "wrong_sign"]


def test_one_worker_gives_the_same_grades(graded, tmp_path):
    subs, _, grades, _ = graded
    out1 = tmp_path / "out1"
    args = [a for s in SUBSET for a in ("--student", s)]
    proc = run_grader(subs, out1, "--workers", "1", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = read_grades(out1)
    for student in SUBSET:
        assert (one[student]["score"], one[student]["status"]) == (grades[student]["score"], grades[student]["status"])
    run = json.loads((out1 / "run.json").read_text())
    print("\nseconds per submission (1 worker):", json.dumps(run["seconds_per_student"]), "wall", run["wall_seconds"])


def test_cli_reports_unknown_assignment(tmp_path):
    (tmp_path / "subs").mkdir()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--assignment", "no_such_assignment",
                           "--submissions", str(tmp_path / "subs"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "no_such_assignment" in proc.stderr

"""Unit tests of the grader's parts that need no notebook kernel: submission
inspection, integrity comparison, traceback filtering, result files, and the
sandbox launcher's limits and private file view. Budget: ~15 s.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder.grading import feedback, integrity, sandbox
from autograder.grading.options import REPO_ROOT
from autograder.grading.results import fingerprint, up_to_date, write_reports, write_result
from autograder.grading.submission import hidden_test_lines, inspect_submission, release_info

RELEASED = REPO_ROOT / "notebooks" / "example" / "example.ipynb"
SOURCE = REPO_ROOT / "solutions" / "example" / "example.ipynb"


@pytest.fixture(scope="module")
def info():
    src = nbformat.read(SOURCE, as_version=4)
    from nbgrader.utils import compute_checksum

    cells = {("example", c.metadata["nbgrader"]["grade_id"]): (compute_checksum(c), c.source)
             for c in src.cells if "grade_id" in c.metadata.get("nbgrader", {})}
    return release_info("example", RELEASED.parent, cells)


def _write(folder: Path, nb) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "example.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def test_release_info(info):
    assert info.max_score == 5 and info.auto_max_score == 3
    test = info.notebooks["example"].cells["test_generator_loss"]
    assert test.locked and len(test.checksums) == 2
    assert any("hidden.check_generator_loss" in line for line in test.hidden_lines)


def test_untouched_release_and_solution_are_not_tampered(info, tmp_path):
    for i, path in enumerate((RELEASED, SOURCE)):
        folder = tmp_path / str(i) / "example"
        _write(folder, nbformat.read(path, as_version=4))
        insp = inspect_submission(folder, info)
        assert insp.status is None and insp.tampered == [] and not insp.flags, insp.notes


def test_missing_corrupt_and_extra(info, tmp_path):
    assert inspect_submission(tmp_path / "nobody" / "example", info).status == "missing_notebook"
    folder = tmp_path / "s" / "example"
    folder.mkdir(parents=True)
    (folder / "example.ipynb").write_text("{not json", encoding="utf-8")
    insp = inspect_submission(folder, info)
    assert insp.status == "corrupt_notebook" and "JSONDecodeError" in insp.notes[-1]
    (folder / "example.ipynb").write_text(json.dumps({"cells": "no"}), encoding="utf-8")
    assert inspect_submission(folder, info).status == "corrupt_notebook"
    _write(folder, nbformat.read(RELEASED, as_version=4))
    nbformat.write(nbformat.v4.new_notebook(), folder / "scratch.ipynb")
    insp = inspect_submission(folder, info)
    assert insp.status is None and insp.extra == ["scratch"]


def test_tampering_is_recorded_and_metadata_restored(info, tmp_path):
    base = nbformat.read(RELEASED, as_version=4)
    edited = copy.deepcopy(base)
    _cell(edited, "test_generator_loss").source = "assert True"
    retagged = copy.deepcopy(base)
    _cell(retagged, "test_generator_loss").metadata.nbgrader.update(grade=False, locked=False, points=100)
    deleted = copy.deepcopy(base)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_generator_loss"]
    for name, nb, words in [("edited", edited, "source edited"), ("retagged", retagged, "grade True -> False"),
                            ("deleted", deleted, "was deleted")]:
        insp = inspect_submission(_write(tmp_path / name / "example", nb).parent, info)
        assert insp.flags == {"tampered"} and words in insp.tampered[0], insp.tampered
    insp = inspect_submission(tmp_path / "retagged" / "example", info)
    restored = _cell(insp.notebooks["example"], "test_generator_loss")
    assert restored.metadata.nbgrader["grade"] and restored.metadata.nbgrader["points"] == 3


def test_duplicates_keep_the_last_copy(info, tmp_path):
    nb = nbformat.read(RELEASED, as_version=4)
    cell = _cell(nb, "generator_loss_answer")
    position = nb.cells.index(cell)
    nb.cells.insert(position, copy.deepcopy(cell))
    insp = inspect_submission(_write(tmp_path / "d" / "example", nb).parent, info)
    assert "duplicate_cells" in insp.flags and not insp.tampered
    cells = insp.notebooks["example"].cells
    tagged = [c for c in cells if c.metadata.get("nbgrader", {}).get("grade_id") == "generator_loss_answer"]
    assert len(tagged) == 1 and cells[position + 1] is tagged[0]
    assert len({c.id for c in cells}) == len(cells)


def test_hidden_test_lines():
    src = "a = 1\n### BEGIN HIDDEN TESTS\n# a comment line here\ncheck_something(a, 12345)\nx\n### END HIDDEN TESTS\n"
    assert hidden_test_lines(src) == ["check_something(a, 12345)"]


def test_integrity_compare():
    base = {"torch.allclose": 1, "torch.allclose.__code__": 2, "hooks:post_execute": [[5, "matplotlib_inline.backend_inline"]],
            "autograder.checks.check_loss": 9, "sys.modules[autograder.checks]": 8, "builtins.input": 3}
    assert integrity.compare(base, dict(base)) == []
    assert integrity.compare(base, {**base, "builtins.input": 4}) == []  # rebound by ipykernel each cell
    changed = integrity.compare(base, {**base, "torch.allclose": 7})
    assert changed == ["torch.allclose was replaced"] and integrity.affects_grading(changed)
    hooked = {**base, "hooks:post_execute": [[5, "matplotlib_inline.backend_inline"], [6, "__main__"]]}
    assert "post_execute gained a callback from __main__" in integrity.compare(base, hooked)[0]
    trusted = {**base, "hooks:post_execute": [[5, "x"], [6, "ipywidgets.widgets"]]}
    assert integrity.compare(base, trusted) == []
    shadow = integrity.compare(base, {**base, "user_ns:check_loss": 10, "user_ns:checks": 8})
    assert len(shadow) == 1 and "check_loss" in shadow[0] and not integrity.affects_grading(shadow)
    assert integrity.compare(base, None) and integrity.parse("xx NONCE{}", "NONCE") == {}


def test_traceback_filter_keeps_student_frames():
    tb = [
        "\x1b[31m----\x1b[39m",
        "\x1b[31mAssertionError\x1b[39m    Traceback (most recent call last)",
        "\x1b[36mCell\x1b[39m \x1b[32mIn[3]\x1b[39m, line 2, in generator_loss\n----> 2 return x.foo()",
        "\x1b[36mCell\x1b[39m \x1b[32mIn[4]\x1b[39m, line 12\n---> 12 checks.check_loss(generator_loss, hidden)",
        f"File {REPO_ROOT}/autograder/checks/core.py:230, in wrapper\n raise AssertionError",
        "    [... skipping hidden 1 frame]\n",
        "\x1b[31mAssertionError\x1b[39m: generator_loss: expected 1, got 2",
    ]
    kept = feedback.filter_traceback(tb, hidden_counts={4})
    text = "\n".join(feedback._plain(t) for t in kept)
    assert "In[3]" in text and "In[4]" not in text and "core.py" not in text and "skipping" not in text
    assert "expected 1, got 2" in text


def test_leaked_lines_sees_through_html():
    html = '<span class="n">checks</span><span class="o">.</span><span class="n">check_loss</span>(a,&nbsp;b)'
    assert feedback.leaked_lines(html.replace("&nbsp;", " "), ["checks.check_loss(a, b)"]) == ["checks.check_loss(a, b)"]


def test_results_reports_and_idempotence(tmp_path):
    folder = tmp_path / "subs" / "s1" / "example"
    folder.mkdir(parents=True)
    (folder / "example.ipynb").write_text("{}")
    fp = fingerprint(folder)
    assert fp == fingerprint(folder) and fingerprint(tmp_path / "none") == "missing"
    out = tmp_path / "out"
    result = {"student_id": "s1", "assignment": "example", "status": "ok", "message": "", "score": 3.0,
              "max_score": 5.0, "auto_score": 3.0, "auto_max_score": 3.0, "needs_manual": True, "flags": [],
              "tests": [{"notebook": "example", "cell": "t", "kind": "auto", "score": 3.0, "max_score": 3.0,
                         "needs_manual": False, "outcome": "passed", "message": ""}],
              "seconds": 1.0, "graded_at": "now", "fingerprint": fp}
    write_result(out, result)
    assert up_to_date(out, "example", "s1", fp)
    (folder / "example.ipynb").write_text('{"changed": 1}')
    assert not up_to_date(out, "example", "s1", fingerprint(folder))
    write_result(out, {**result, "student_id": "s2", "status": "error"})
    assert not up_to_date(out, "example", "s2", fp)
    write_reports(out)
    first = (out / "grades.csv").read_text()
    write_reports(out)
    assert (out / "grades.csv").read_text() == first
    assert first.splitlines()[0].startswith("student_id,assignment,score,max_score,status,message")
    assert json.loads((out / "tests.json").read_text())["example"]["s1"]["tests"][0]["outcome"] == "passed"


def _launch(tmp_path: Path, spec: dict, code: str) -> subprocess.CompletedProcess:
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "autograder.grading.sandbox", str(spec_path), "--", sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_sandbox_memory_cap(tmp_path):
    proc = _launch(tmp_path, {"memory_mb": 512, "cwd": str(tmp_path)}, """
        try:
            block = bytearray(2 * 1024**3)
            print("allocated")
        except MemoryError:
            print("MemoryError")
    """)
    assert proc.stdout.strip() == "MemoryError", proc.stderr


@pytest.mark.skipif(not sandbox.probe(), reason="private namespaces need root on this machine")
def test_sandbox_private_view(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "answers.txt").write_text("42")
    work = tmp_path / "work"
    work.mkdir()
    os.chown(work, sandbox.NOBODY, sandbox.NOBODY)
    # nobody must be able to walk down to tmp_path (pytest's base folder is private; under
    # pytest-xdist it is one level deeper)
    for p in (tmp_path, *tmp_path.parents):
        if p == Path(tempfile.gettempdir()) or p == p.parent:
            break
        p.chmod(p.stat().st_mode | 0o001)
    proc = _launch(tmp_path, {
        "isolate": True, "cwd": str(work), "hide": [str(secret)], "masks": [str(REPO_ROOT)],
        "scratch": ["/dev/shm"], "expose": [sys.base_prefix, sys.prefix, str(REPO_ROOT / "autograder"), str(work)],
    }, f"""
        import os
        print(os.getuid(), os.getpid(), sorted(os.listdir({str(secret)!r})), os.path.exists({str(SOURCE)!r}))
        print(os.path.isdir({str(REPO_ROOT / "autograder")!r}), len([p for p in os.listdir("/proc") if p.isdigit()]))
        try:
            open({str(REPO_ROOT / "autograder" / "x.txt")!r}, "w")
        except OSError as exc:
            print(type(exc).__name__)
        open("mine.txt", "w").write("ok")
    """)
    lines = proc.stdout.split("\n")
    assert lines[0] == f"{sandbox.NOBODY} 2 [] False", proc.stdout + proc.stderr
    assert lines[1] == "True 2"  # its own processes only: init and itself
    assert lines[2] in ("PermissionError", "OSError")
    assert (work / "mine.txt").read_text() == "ok"


def test_manual_scores_are_folded_in(tmp_path):
    from autograder.grading.results import apply_manual_scores, read_manual_scores

    result = {"student_id": "s1", "assignment": "example", "score": 3.0, "needs_manual": True, "tests": [
        {"cell": "t", "kind": "auto", "score": 3.0, "max_score": 3.0, "needs_manual": False, "outcome": "passed", "message": ""},
        {"cell": "w", "kind": "manual", "score": 0.0, "max_score": 2.0, "needs_manual": True, "outcome": "needs_manual", "message": ""},
    ]}
    (tmp_path / "manual_scores.csv").write_text("student_id,assignment,cell,max_score,score,comment\n"
                                                "s1,example,w,2,1.5,good\ns2,example,w,2,,\n")
    manual = read_manual_scores(tmp_path)
    assert manual == {("s1", "example", "w"): (1.5, "good")}
    graded = apply_manual_scores(result, manual)
    assert graded["score"] == 4.5 and not graded["needs_manual"] and graded["tests"][1]["outcome"] == "graded"
    assert result["score"] == 3.0  # the stored result is not changed
    with pytest.raises(ValueError, match="outside"):
        apply_manual_scores(result, {("s1", "example", "w"): (5.0, "")})


def test_plain_nbgrader_feedback_config_redacts_hidden_tests(tmp_path):
    """With course/nbgrader_config.py, even nbgrader's own generate_feedback hides the tests."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.grading.options import load_course_config, venv_path_env

    os.environ.update(venv_path_env())
    cfg = load_course_config()
    assert "autograder.grading.feedback.RedactHiddenTests" in cfg.GenerateFeedback.preprocessors
    cfg.CourseDirectory.release_directory = str(tmp_path / "release")
    cfg.CourseDirectory.db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg).generate_assignment("example")["success"]
    executed = nbformat.read(SOURCE, as_version=4)  # test cells as the autograder runs them
    test = _cell(executed, "test_generator_loss")
    test.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="expected 1, got 2", traceback=[
        "Cell \x1b[32mIn[4]\x1b[39m, line 14\n---> 14 checks.check_loss(generator_loss, nonsaturating_generator_loss, hidden_cases)",
        "AssertionError: expected 1, got 2"])]
    test.execution_count = 4
    resources = {"nbgrader": {"db_url": cfg.CourseDirectory.db_url, "notebook": "example", "assignment": "example"}}
    feedback.CONTEXT = None
    nb, _ = feedback.RedactHiddenTests().preprocess(executed, resources)
    text = json.dumps(nb)
    assert "hidden_cases" not in text and "BEGIN HIDDEN" not in text and "expected 1, got 2" in text


class _SpareKernelStub:
    """Stands for a prepared Worker: records that it was closed."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def close(self) -> None:
        Path(self.flag).write_text("closed")


def _prepare_and_return(root: str, flag: str) -> None:
    from autograder.grading import worker

    worker._remember("key", Path(root), _SpareKernelStub(flag))


def test_a_task_process_removes_its_folder_when_it_ends(tmp_path):
    """Dask worker processes end through multiprocessing (no atexit): the prepared worker is still
    closed and its folder removed; folders of processes that died are swept, others kept."""
    import multiprocessing

    from autograder.grading import worker

    root, flag = tmp_path / (worker.TASK_ROOT_PREFIX + "ended"), tmp_path / "closed.txt"
    root.mkdir()
    (root / "state").mkdir()
    child = multiprocessing.get_context("spawn").Process(target=_prepare_and_return, args=(str(root), str(flag)))
    child.start()
    child.join(60)
    assert child.exitcode == 0 and flag.read_text() == "closed" and not root.exists()

    dead, alive, unmarked = (tmp_path / (worker.TASK_ROOT_PREFIX + n) for n in ("dead", "alive", "unmarked"))
    for folder in (dead, alive, unmarked):
        folder.mkdir()
    (dead / "owner.pid").write_text(str(child.pid))  # the process that just ended
    (alive / "owner.pid").write_text(str(os.getpid()))
    assert worker._sweep_task_roots(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and unmarked.exists()


def test_kernel_threads_follow_the_option_the_cluster_or_the_workers(tmp_path, monkeypatch):
    from autograder.grading.options import GradeOptions
    from autograder.grading.worker import kernel_threads

    def opts(**kw):
        return GradeOptions(assignment="example", submissions=tmp_path, out=tmp_path / "out",
                            course_root=tmp_path / "course", **kw)

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert kernel_threads(opts(workers=2)) == "4"  # the cores divided among the local workers
    assert kernel_threads(opts(workers=16)) == "1"
    assert kernel_threads(opts(workers=2, scheduler="tcp://127.0.0.1:1")) == "3"  # the Dask worker's share
    assert kernel_threads(opts(workers=2, kernel_threads=1)) == "1"
    assert kernel_threads(opts(workers=1, kernel_threads=6, scheduler="tcp://127.0.0.1:1")) == "6"
    with pytest.raises(ValueError, match="kernel_threads must be at least 1"):
        opts(kernel_threads=0)

"""Batch grading: ``python -m autograder grade``.

Design (nbgrader has no parallel autograde): ``K`` worker processes, each with its
own course folder and gradebook (:class:`~autograder.grading.worker.Worker`),
take students one at a time from the main process. The main process

- skips submissions already graded with the same content (unless ``force``);
- watches every worker: past a hard limit (the notebook limit plus start-up
  allowance) or when a worker dies, it records the student as ``timeout`` /
  ``error``, replaces the worker and carries on;
- stores each result as soon as it arrives and rebuilds ``grades.csv``,
  ``tests.csv`` and ``tests.json`` from all stored results.

Grades therefore do not depend on the number of workers, and other students'
results are never touched when one submission is regraded.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import re
import shutil
import tempfile
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_runtime_dir

from autograder.grading.options import REPO_ROOT, GradeOptions
from autograder.grading.results import fingerprint, up_to_date, write_reports, write_result

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
STARTUP_ALLOWANCE = 120


class GradingError(RuntimeError):
    """Grading could not run at all (bad assignment, unusable source notebook)."""


def discover(opts: GradeOptions) -> list[str]:
    if not opts.submissions.is_dir():
        raise GradingError(f"submissions folder {opts.submissions} does not exist")
    found = sorted(p.name for p in opts.submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if opts.students:
        missing = [s for s in opts.students if s not in found]
        return sorted(set(found) & set(opts.students)) + sorted(missing)
    return found


def probe_isolation() -> bool:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "autograder.grading.sandbox", "--probe"], capture_output=True)
    return proc.returncode == 0


def hidden_paths(opts: GradeOptions, run_root: Path) -> list[str]:
    """Folders a student kernel must not see; never one that holds code the kernel needs."""
    import sys

    candidates = [opts.source_root, REPO_ROOT / ".git", REPO_ROOT / "tests", REPO_ROOT / "course",
                  opts.submissions, opts.out, run_root / "state", Path(jupyter_runtime_dir())]
    needed = [Path(sys.prefix).resolve(), REPO_ROOT / "gan_utils", REPO_ROOT / "autograder", run_root / "kernels"]
    keep = []
    for path in candidates:
        path = Path(path).resolve()
        if path.is_dir() and not any(n == path or path in n.parents for n in needed):
            keep.append(str(path))
    return sorted(set(keep))


def _worker_main(opts: GradeOptions, wid: str, run_root: str, isolate: bool, hide: list[str],
                 tasks: Any, results: Any) -> None:
    from autograder.grading.worker import Worker, quiet_nbgrader_logs

    quiet_nbgrader_logs(opts.out / "logs" / f"{wid}.log")
    ready = Path(run_root) / "state" / "template.ready"
    while not ready.exists():  # imports are done; wait for the main process's course template
        time.sleep(0.05)
    try:
        worker = Worker(opts, wid, Path(run_root), isolate, hide)
    except Exception:
        results.put(("setup_failed", wid, traceback.format_exc()))
        return
    results.put(("ready", wid, None))
    while True:
        task = tasks.get()
        if task is None:
            worker.close()
            return
        student, print_, more = task
        try:
            result = worker.grade(student, print_, warm_next=more)
        except Exception:
            result = {"crash": traceback.format_exc()}
        results.put(("done", wid, (student, result)))


@dataclass
class _Slot:
    wid: str
    proc: Any
    tasks: Any
    ready: bool = False
    student: str | None = None
    started: float = 0.0


def _failure(opts: GradeOptions, student: str, print_: str, status: str, message: str, seconds: float) -> dict[str, Any]:
    from autograder.grading.results import new_result
    from autograder.grading.submission import release_info

    info = release_info(opts.assignment, _release_dir(opts), {})
    result = new_result(student, opts.assignment, info, print_)
    result.update(status=status, message=message, flags=[status], seconds=round(seconds, 2))
    return result


def _release_dir(opts: GradeOptions) -> Path:
    """Folder with the released notebooks (points of each cell) for failure results."""
    from autograder.grading.options import load_course_config

    cfg = load_course_config(opts.course_config)
    root = Path(cfg.CourseDirectory.get("root", str(REPO_ROOT)))
    return root / cfg.CourseDirectory.get("release_directory", "notebooks") / opts.assignment


def grade(opts: GradeOptions, log: Any = print) -> dict[str, Any]:
    """Grade every (changed) submission; returns a summary. Raises GradingError when it cannot run."""
    if not opts.assignment_source.is_dir():
        raise GradingError(f"unknown assignment {opts.assignment!r}: no folder {opts.assignment_source}")
    students = discover(opts)
    prints = {s: fingerprint(opts.submissions / s / opts.assignment) for s in students}
    todo = [s for s in students if opts.force or not up_to_date(opts.out, opts.assignment, s, prints[s])]
    opts.out.mkdir(parents=True, exist_ok=True)
    isolate = probe_isolation() if opts.isolate is None else opts.isolate
    t0 = time.monotonic()
    per_student: dict[str, float] = {}
    run_root = Path(tempfile.mkdtemp(prefix="autograder-run-"))
    try:
        run_root.chmod(0o711)
        (run_root / "kernels").mkdir(mode=0o711)
        (run_root / "kernels").chmod(0o711)
        (run_root / "state").mkdir(mode=0o700)
        hide = hidden_paths(opts, run_root)
        for student in [s for s in todo if not STUDENT_ID.match(s)]:
            todo.remove(student)
            write_result(opts.out, _failure(opts, student, prints[student], "error",
                                            "unsupported student id (use letters, digits, _ . @ -)", 0.0))
        if todo:
            per_student = _run_pool(opts, todo, prints, run_root, isolate, hide, log)
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
    results = write_reports(opts.out)
    summary = {
        "assignment": opts.assignment, "students": len(students), "graded": len(per_student),
        "skipped": len(students) - len(todo), "workers": opts.workers, "isolated_kernels": isolate,
        "wall_seconds": round(time.monotonic() - t0, 2), "seconds_per_student": per_student,
        "options": opts.summary(),
    }
    (opts.out / "run.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    counts: dict[str, int] = {}
    for r in results:
        if r["assignment"] == opts.assignment:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary["status_counts"] = counts
    return summary


def _run_pool(opts: GradeOptions, todo: list[str], prints: dict[str, str], run_root: Path, isolate: bool,
              hide: list[str], log: Any) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    results_q = ctx.Queue()
    pending = deque(todo)
    slots: dict[str, _Slot] = {}
    seconds: dict[str, float] = {}
    generation = 0
    notebooks = max(1, len(list(opts.assignment_source.glob("*.ipynb"))))
    hard_limit = notebooks * (opts.timeout + STARTUP_ALLOWANCE) + 60

    def start() -> None:
        nonlocal generation
        generation += 1
        wid = f"w{generation}"
        tasks = ctx.Queue()
        proc = ctx.Process(target=_worker_main, args=(opts, wid, str(run_root), isolate, hide, tasks, results_q), daemon=True)
        proc.start()
        slots[wid] = _Slot(wid, proc, tasks)

    def finish(student: str, result: dict[str, Any], started: float) -> None:
        if "crash" in result:
            result = _failure(opts, student, prints[student], "error",
                              "grader failure: " + result["crash"].strip().splitlines()[-1], time.monotonic() - started)
        write_result(opts.out, result)
        seconds[student] = result.get("seconds", round(time.monotonic() - started, 2))
        log(f"{student}: {result['status']} {result['score']:g}/{result['max_score']:g} ({seconds[student]:.1f} s)")

    for _ in range(min(opts.workers, len(todo))):
        start()
    from autograder.grading.worker import WorkerSetupError, prepare_course, quiet_nbgrader_logs

    quiet_nbgrader_logs(opts.out / "logs" / "main.log")
    try:
        prepare_course(opts, run_root / "state" / "template")
    except WorkerSetupError as exc:
        for slot in slots.values():
            slot.proc.kill()
        raise GradingError(str(exc)) from None
    (run_root / "state" / "template.ready").touch()
    try:
        while pending or any(s.student for s in slots.values()):
            for slot in slots.values():
                if slot.ready and slot.student is None and pending:
                    slot.student, slot.started = pending.popleft(), time.monotonic()
                    slot.tasks.put((slot.student, prints[slot.student], bool(pending)))
            try:
                kind, wid, payload = results_q.get(timeout=1.0)
            except queue.Empty:
                kind = None
            if kind == "setup_failed":
                raise GradingError(f"could not prepare assignment {opts.assignment!r}:\n{payload}")
            if kind == "ready" and wid in slots:
                slots[wid].ready = True
            elif kind == "done" and wid in slots:
                student, result = payload
                slot = slots[wid]
                finish(student, result, slot.started)
                slot.student = None
            for wid, slot in list(slots.items()):
                late = slot.student is not None and time.monotonic() - slot.started > hard_limit
                dead = not slot.proc.is_alive()
                if not (late or dead):
                    continue
                if slot.student is not None:
                    status = "timeout" if late else "error"
                    msg = (f"grading took longer than {hard_limit} s and was stopped" if late
                           else f"the grading process died (exit code {slot.proc.exitcode})")
                    finish(slot.student, _failure(opts, slot.student, prints[slot.student], status, msg,
                                                  time.monotonic() - slot.started), slot.started)
                elif dead and not slot.ready:
                    raise GradingError(f"worker {wid} exited during setup (exit code {slot.proc.exitcode})")
                slot.proc.kill()
                del slots[wid]
                if pending or any(s.student for s in slots.values()):
                    start()
    finally:
        for slot in slots.values():
            slot.tasks.put(None)
        for slot in slots.values():
            slot.proc.join(timeout=10)
            if slot.proc.is_alive():
                slot.proc.kill()
    return seconds

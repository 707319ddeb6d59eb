"""Batch grading: ``python -m autograder grade``.

Design (nbgrader has no parallel autograde): ``K`` worker processes, each with its
own course folder and gradebook (:class:`~autograder.grading.worker.Worker`),
take students one at a time from the main process. The main process

- skips submissions already graded with the same content (unless ``force``);
- watches every worker: past a hard limit (the notebook limit plus start-up
  allowance) or when a worker dies, it records the student as ``timeout`` /
  ``error``, replaces the worker and carries on;
- stores each outcome as soon as it arrives (:func:`store`): the result JSON,
  the feedback and autograded notebooks under ``OUT``, and the submission in the
  course gradebook and course folder (``autograder.grading.gradebook``), so
  ``nbgrader formgrader`` lists it for manual grading; then rebuilds
  ``grades.csv``, ``tests.csv`` and ``tests.json`` from all stored results.

With ``opts.scheduler`` the same per-student task runs on a Dask cluster instead
(:mod:`autograder.grading.cluster`); results still come back to this process.

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

from autograder.grading.options import REPO_ROOT, GradeOptions, masked_url
from autograder.grading.results import (
    fingerprint,
    result_path,
    up_to_date,
    write_reports,
    write_result,
)
from autograder.grading.worker import Outcome, plain_feedback, write_folder

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


def probe_isolation(requested: Any = None) -> str:
    """The isolation mode of this run's kernels: ``"namespaces"``, ``"bwrap"`` or ``"none"``.

    ``requested`` (a mode name, or ``False`` for ``"none"``) is test-run and returned, or
    GradingError says why it does not work here; ``None`` takes ``$AUTOGRADER_ISOLATION``
    the same way, else the strongest mode that works (see :mod:`autograder.grading.sandbox`).
    """
    from autograder.grading import sandbox

    try:
        return sandbox.resolve_mode(requested)
    except (sandbox.IsolationUnavailable, ValueError) as exc:
        raise GradingError(str(exc)) from None


def hidden_paths(opts: GradeOptions, run_root: Path) -> list[str]:
    """Folders a student kernel must not see; never one that holds code the kernel needs."""
    import sys

    candidates = [opts.source_root, REPO_ROOT / ".git", REPO_ROOT / "tests", REPO_ROOT / "course",
                  opts.submissions, opts.out, run_root / "state", Path(jupyter_runtime_dir())]
    if opts.course_root is not None:  # the course gradebook and every student's graded work
        candidates.append(opts.course_root)
    if opts.db_url and opts.db_url.startswith("sqlite:///"):
        candidates.append(Path(opts.db_url[len("sqlite:///"):]).parent)
    needed = [Path(sys.prefix).resolve(), REPO_ROOT / "gan_utils", REPO_ROOT / "autograder", run_root / "kernels"]
    keep = []
    for path in candidates:
        path = Path(path).resolve()
        if path.is_dir() and not any(n == path or path in n.parents for n in needed):
            keep.append(str(path))
    return sorted(set(keep))


def prepare_run_root(run_root: Path) -> None:
    """Folders of a run: ``kernels/`` (reachable by the unprivileged kernel user), ``state/`` (private)."""
    run_root.chmod(0o711)
    (run_root / "kernels").mkdir(mode=0o711, exist_ok=True)
    (run_root / "kernels").chmod(0o711)
    (run_root / "state").mkdir(mode=0o700, exist_ok=True)


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
            outcome = worker.grade(student, print_, warm_next=more)
        except Exception:
            outcome = traceback.format_exc()
        results.put(("done", wid, (student, outcome)))


@dataclass
class _Slot:
    wid: str
    proc: Any
    tasks: Any
    ready: bool = False
    student: str | None = None
    started: float = 0.0


def _failure(opts: GradeOptions, student: str, print_: str, status: str, message: str, seconds: float) -> Outcome:
    """The outcome of a submission the grader could not finish (the reason in status and feedback)."""
    from autograder.grading.results import new_result
    from autograder.grading.submission import release_info

    info = release_info(opts.assignment, _release_dir(opts), {})
    result = new_result(student, opts.assignment, info, print_)
    result.update(status=status, message=message, flags=[status], seconds=round(seconds, 2))
    page = f"feedback/{student}/{opts.assignment}/grading.html"
    return Outcome(result, {page: plain_feedback(opts.assignment, student, result)}, None)


class Store:
    """Keeps what the workers send back (runs in the process that owns ``OUT`` and the gradebook).

    Per student: the feedback and autograded files replace the old ones under ``OUT``;
    the submission goes into the course gradebook; then the result JSON is written
    (with ``in_gradebook`` saying whether the merge worked, so a failed merge is
    retried by the next run instead of being skipped as up to date).
    """

    def __init__(self, opts: GradeOptions, log: Any) -> None:
        self.opts, self.log = opts, log
        self.seconds: dict[str, float] = {}
        self.gradebook_errors: list[str] = []
        self.isolation: set[str] = set()  # the modes the kernels of this run actually had

    def __call__(self, student: str, outcome: Outcome) -> None:
        opts, a = self.opts, self.opts.assignment
        result = outcome.result
        result["gradebook_snapshot"] = outcome.gradebook
        if result.get("isolation"):
            self.isolation.add(result["isolation"])
        mine = {k: v for k, v in outcome.files.items() if k.split("/", 1)[0] in ("feedback", "autograded")}
        for sub in ("feedback", "autograded"):
            shutil.rmtree(opts.out / sub / student / a, ignore_errors=True)
        write_folder(opts.out, mine)
        self._merge(student, result, outcome.files)
        write_result(opts.out, result)
        self.seconds[student] = result.get("seconds", 0.0)
        self.log(f"{student}: {result['status']} {result['score']:g}/{result['max_score']:g} ({self.seconds[student]:.1f} s)")

    def _stored(self, student: str) -> dict[str, Any]:
        return json.loads(result_path(self.opts.out, self.opts.assignment, student).read_text(encoding="utf-8"))

    def not_in_gradebook(self, students: list[str]) -> list[str]:
        """Students with a stored result that did not go into this run's course gradebook."""
        label = masked_url(self.opts.db_url)
        return [s for s in students if self._stored(s).get("in_gradebook") != label]

    def catch_up(self, students: list[str]) -> None:
        """Put stored results into this run's gradebook (after a change of ``--db-url`` /
        ``--course-root``, or a merge that failed) from the files kept in OUT, without regrading."""
        from autograder.grading.worker import read_folder

        opts, a = self.opts, self.opts.assignment
        for student in students:
            result = self._stored(student)
            files = {}
            for sub, folder in (("autograded", opts.out / "autograded"), ("feedback", opts.out / "feedback"),
                                ("submitted", opts.submissions)):
                files.update({f"{sub}/{student}/{a}/{k}": v for k, v in read_folder(folder / student / a).items()})
            if self._merge(student, result, files):
                write_result(opts.out, result)
                self.log(f"{student}: already graded, put into the course gradebook")

    def _merge(self, student: str, result: dict[str, Any], files: dict[str, bytes]) -> bool:
        from autograder.grading.gradebook import merge_submission

        opts = self.opts
        snapshot = result.get("gradebook_snapshot")
        try:
            merge_submission(opts.db_url, opts.course_root, opts.assignment, student, snapshot, files, result)
        except Exception as exc:  # the result is kept; the next run merges it again
            result["in_gradebook"] = None
            text = str(exc).strip()
            reason = f"{student}: {type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            self.gradebook_errors.append(reason)
            self.log(f"warning: could not put {student} into the course gradebook ({reason})")
            return False
        result["in_gradebook"] = masked_url(opts.db_url)
        return True




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
    isolate = probe_isolation(opts.isolate)
    t0 = time.monotonic()
    store = Store(opts, log)
    run_root = Path(tempfile.mkdtemp(prefix="autograder-run-"))
    try:
        prepare_run_root(run_root)
        hide = hidden_paths(opts, run_root)
        for student in [s for s in todo if not STUDENT_ID.match(s)]:  # reported, kept out of the gradebook
            todo.remove(student)
            outcome = _failure(opts, student, prints[student], "error",
                               "unsupported student id (use letters, digits, _ . @ -)", 0.0)
            write_folder(opts.out, outcome.files)
            write_result(opts.out, outcome.result)
        stale = store.not_in_gradebook([s for s in students if s not in todo and STUDENT_ID.match(s)])
        if todo and opts.scheduler:
            from autograder.grading.cluster import check_scheduler, run_dask

            check_scheduler(opts.scheduler, opts.workers)  # fail fast: bad form, missing file, nobody there
            _prepare_template(opts, run_root, [])
            run_dask(opts, todo, prints, None if opts.isolate is None else isolate, store,
                     lambda student, status, message, seconds: _failure(opts, student, prints[student], status,
                                                                         message, seconds), log)
        elif todo:
            _run_pool(opts, todo, prints, run_root, isolate, hide, store, log)
        if stale:  # graded before, not yet in this gradebook (a new --db-url, a failed merge): no regrading
            if not (run_root / "state" / "template.ready").exists():
                _prepare_template(opts, run_root, [])
            store.catch_up(stale)
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
    try:
        results = write_reports(opts.out, opts.db_url)
    except Exception as exc:  # grades still get written; the formgrader scores come with `export`
        log(f"warning: manual scores from the course gradebook not included ({exc}); run `export` after fixing it")
        results = write_reports(opts.out)
    summary = {
        "assignment": opts.assignment, "students": len(students), "graded": len(store.seconds),
        "skipped": len(students) - len(todo), "workers": opts.workers, "scheduler": opts.scheduler,
        "isolated_kernels": isolate != "none",
        "isolation": ", ".join(sorted(store.isolation)) or isolate,
        "gradebook": masked_url(opts.db_url), "gradebook_errors": store.gradebook_errors,
        "wall_seconds": round(time.monotonic() - t0, 2), "seconds_per_student": store.seconds,
        "options": opts.summary(),
    }
    (opts.out / "run.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    counts: dict[str, int] = {}
    for r in results:
        if r["assignment"] == opts.assignment:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary["status_counts"] = counts
    return summary


def prepare_course_folder(opts: GradeOptions) -> None:
    """Make ``opts.course_root`` a folder that ``nbgrader formgrader`` opens on its own.

    Formgrader reads ``nbgrader_config.py`` from the folder Jupyter starts in and lists
    only assignments that have a source folder. A course folder other than the kit's
    own gets a config that loads the kit's and points at this folder and gradebook
    (never overwritten once there), and an empty source folder per assignment.
    """
    from autograder.grading.options import load_course_config

    root = opts.course_root
    if root == REPO_ROOT:
        return
    root.mkdir(parents=True, exist_ok=True)
    config = root / "nbgrader_config.py"
    if not config.exists() and opts.course_config is not None:
        config.write_text(
            '"""nbgrader settings of this course folder (written by `python -m autograder grade`)."""\n'
            "c = get_config()  # noqa: F821\n"
            f"load_subconfig({str(opts.course_config)!r})  # noqa: F821\n"
            f"c.CourseDirectory.root = {str(root)!r}\n"
            f"c.CourseDirectory.db_url = {opts.db_url!r}\n", encoding="utf-8")
    source = load_course_config(opts.course_config).CourseDirectory.get("source_directory", "solutions")
    (root / source / opts.assignment).mkdir(parents=True, exist_ok=True)


def _prepare_template(opts: GradeOptions, run_root: Path, slots: list[Any]) -> None:
    """The course template every worker copies, and the assignment in the course gradebook."""
    from autograder.grading.gradebook import ensure_assignment
    from autograder.grading.worker import WorkerSetupError, prepare_course, quiet_nbgrader_logs

    quiet_nbgrader_logs(opts.out / "logs" / "main.log")
    template = run_root / "state" / "template"
    try:
        prepare_course(opts, template)
        ensure_assignment(opts.db_url, f"sqlite:///{template / 'gradebook.db'}", opts.assignment)
        prepare_course_folder(opts)
    except WorkerSetupError as exc:
        for slot in slots:
            slot.proc.kill()
        raise GradingError(str(exc)) from None
    except Exception as exc:
        for slot in slots:
            slot.proc.kill()
        raise GradingError(f"could not record {opts.assignment!r} in the course gradebook "
                           f"{masked_url(opts.db_url)}: {exc}") from None
    (run_root / "state" / "template.ready").touch()


def _run_pool(opts: GradeOptions, todo: list[str], prints: dict[str, str], run_root: Path, isolate: Any,
              hide: list[str], store: Store, log: Any) -> None:
    ctx = mp.get_context("spawn")
    results_q = ctx.Queue()
    pending = deque(todo)
    slots: dict[str, _Slot] = {}
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

    def finish(student: str, outcome: Outcome | str, started: float) -> None:
        if isinstance(outcome, str):  # a traceback: the worker failed on this submission
            outcome = _failure(opts, student, prints[student], "error",
                               "grader failure: " + outcome.strip().splitlines()[-1], time.monotonic() - started)
        store(student, outcome)

    for _ in range(min(opts.workers, len(todo))):
        start()
    _prepare_template(opts, run_root, list(slots.values()))
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
                student, outcome = payload
                slot = slots[wid]
                finish(student, outcome, slot.started)
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

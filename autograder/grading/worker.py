"""One grading worker: a private nbgrader course folder and gradebook, used through
``NbGraderAPI`` in-process, grading one submission at a time.

``Worker.grade(student)`` inspects the submission, stages it, runs nbgrader's
autograde (with :class:`~autograder.grading.executor.GuardedExecute`), reads the
scores from the gradebook, renders leak-free feedback into ``OUT/feedback`` and
returns a result dict (see :mod:`autograder.grading.results`).
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.grading import executor, feedback
from autograder.grading.options import (
    REPO_ROOT,
    STATUS_PRIORITY,
    GradeOptions,
    venv_path_env,
    worker_config,
)
from autograder.grading.results import new_result, notebook_tests
from autograder.grading.submission import Inspection, inspect_submission, release_info

NOBODY = 65534
MAX_EXTRA_FILE = 20 * 1024 * 1024


class WorkerSetupError(RuntimeError):
    """The assignment could not be prepared (broken source notebook, nbgrader failure)."""


def prepare_course(opts: GradeOptions, root: Path) -> None:
    """A course folder at ``root`` whose gradebook knows the assignment (nbgrader generate_assignment).

    Workers copy it instead of each generating the assignment again. The instructor
    notebooks are deleted afterwards: the gradebook holds their cells.
    """
    a = opts.assignment
    src = opts.assignment_source
    if not any(src.glob("*.ipynb")):
        raise WorkerSetupError(f"no instructor notebook in {src}")
    for sub in ("source", "release", "submitted", "autograded", "feedback"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, root / "source" / a, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    os.environ.update(venv_path_env())
    cfg = worker_config(root, opts)
    res = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg).generate_assignment(a, force=True, create=True)
    if not res["success"]:
        raise WorkerSetupError(f"nbgrader generate_assignment failed for {a}:\n{res.get('error', '')}")
    for nb in (root / "source" / a).glob("*.ipynb"):
        nb.unlink()


class Worker:
    def __init__(self, opts: GradeOptions, wid: str, run_root: Path, isolate: bool, hide: list[str]) -> None:
        self.opts, self.wid, self.isolate, self.hide = opts, wid, isolate, hide
        self.root = run_root / "state" / wid
        self.kernels = run_root / "kernels"
        a = opts.assignment
        shutil.copytree(run_root / "state" / "template", self.root)
        os.environ.update(venv_path_env())
        self.cfg = worker_config(self.root, opts)
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=self.cfg), config=self.cfg)
        self.db_url = self.cfg.CourseDirectory.db_url
        with Gradebook(self.db_url) as gb:
            cells = {
                (nb.name, c.name): (c.checksum or "", c.source)
                for nb in gb.find_assignment(a).notebooks for c in nb.source_cells
            }
        self.info = release_info(a, self.root / "release" / a, cells)
        self._spare: executor.RunContext | None = self._start_kernel()

    # -- per student ----------------------------------------------------------------------
    def grade(self, student: str, fingerprint: str, warm_next: bool = True) -> dict[str, Any]:
        """Grade one submission; ``warm_next`` starts the next kernel while this one runs."""
        t0 = time.monotonic()
        opts, a = self.opts, self.opts.assignment
        result = new_result(student, a, self.info, fingerprint)
        insp = inspect_submission(opts.submissions / student / a, self.info)
        if insp.status:
            result.update(status=insp.status, message="; ".join(insp.notes), flags=sorted(insp.flags | {insp.status}))
            self._write_plain_feedback(student, result)
            result["seconds"] = round(time.monotonic() - t0, 2)
            return result
        ctx = self._take_kernel()
        if warm_next:
            self._spare = self._start_kernel()
        workdir = Path(ctx.workdir)
        self._stage(student, insp, workdir)
        executor.CURRENT = ctx
        try:
            res = self.api.autograde(a, student, force=True, create=True)
        finally:
            executor.CURRENT = None
            executor.stop_kernel(ctx)
        report = ctx.report
        result["timing"] = {**report.timing, "autograde": round(time.monotonic() - t0, 2)}
        notes = list(insp.notes) + list(insp.tampered)
        flags = set(insp.flags)
        if not res["success"]:
            flags.add("error")
            tail = (res.get("error") or res.get("log") or "").strip().splitlines()[-3:]
            notes.append("nbgrader could not grade this submission: " + " | ".join(tail))
        else:
            self._read_grades(student, result)
        self._merge_report(report, notes, flags)
        notes += _failed_tests(result)
        result.update(flags=sorted(flags), status=_status(flags), notes=_dedupe(notes), message="; ".join(_dedupe(notes)))
        if res["success"]:
            leaks = self._feedback(student, result)
            if leaks:
                flags |= {"tampered", "hidden_test_leak"}
                notes.append(f"{leaks} output(s) quoted hidden test code and were removed from the feedback")
                result.update(flags=sorted(flags), status=_status(flags), notes=_dedupe(notes), message="; ".join(_dedupe(notes)))
                self._feedback(student, result)
            self._export_autograded(student)
        else:
            self._write_plain_feedback(student, result)
        self._cleanup(student, workdir)
        result["seconds"] = round(time.monotonic() - t0, 2)
        return result

    def _stage(self, student: str, insp: Inspection, workdir: Path) -> None:
        """Submission into nbgrader's ``submitted`` folder; supporting files into the kernel's folder."""
        a = self.opts.assignment
        folder = self.opts.submissions / student / a
        staged = self.root / "submitted" / student / a
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        for name, nb in insp.notebooks.items():
            nbformat.write(nb, staged / f"{name}.ipynb")
        for path in sorted(folder.iterdir()):  # supporting files the student handed in
            if path.is_file() and path.suffix != ".ipynb" and path.stat().st_size <= MAX_EXTRA_FILE:
                shutil.copy2(path, staged / path.name)
                if path.name != "timestamp.txt":
                    shutil.copy2(path, workdir / path.name)
        for path in (self.root / "source" / a).iterdir():  # instructor files win, as in nbgrader
            if path.is_file():
                shutil.copy2(path, workdir / path.name)
        if self.isolate:
            for path in workdir.iterdir():
                os.chown(path, NOBODY, NOBODY)

    def _start_kernel(self) -> executor.RunContext:
        """Start the kernel for the next submission now: its imports overlap other work."""
        workdir = Path(tempfile.mkdtemp(prefix=f"{self.wid}-", dir=self.kernels))
        ctx = self._context(workdir)
        try:
            executor.start_kernel(ctx)
        except Exception:  # started again, with the error recorded, when it is used
            ctx.km = None
        return ctx

    def _take_kernel(self) -> executor.RunContext:
        ctx, self._spare = self._spare, None
        if ctx is None or not executor.kernel_alive(ctx):
            if ctx is not None:
                executor.stop_kernel(ctx)
                shutil.rmtree(ctx.workdir, ignore_errors=True)
            ctx = self._start_kernel()
        return ctx

    def close(self) -> None:
        if self._spare is not None:
            executor.stop_kernel(self._spare)
            shutil.rmtree(self._spare.workdir, ignore_errors=True)
            self._spare = None

    def _context(self, workdir: Path) -> executor.RunContext:
        opts = self.opts
        env = venv_path_env()
        env.update(opts.kernel_env)
        threads = str(max(1, (os.cpu_count() or 1) // max(1, opts.workers)))
        env.update(
            OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONHASHSEED="0", NBGRADER_EXECUTION="autograde",
            IPYTHONDIR=str(workdir / ".ipython"), MPLCONFIGDIR=str(workdir / ".config" / "matplotlib"),
            PYTHONDONTWRITEBYTECODE="1",
            # figures inline, as in Jupyter: a non-interactive backend warns on plt.show()
            # (stderr, which zeroes a test cell)
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        env.pop("PYTHONSTARTUP", None)
        if self.isolate:
            env.setdefault("GAN_UTILS_DATA", str(Path.home() / ".cache" / "gan_utils" / "data"))
            env.update(HOME=str(workdir), XDG_CACHE_HOME=str(workdir / ".cache"), USER="nobody", LOGNAME="nobody")
            for path in [workdir, *workdir.iterdir()]:
                os.chown(path, NOBODY, NOBODY)
        spec = {
            "memory_mb": opts.memory_mb, "fsize_mb": opts.fsize_mb, "nproc": 4096 if self.isolate else None,
            "cwd": str(workdir), "isolate": self.isolate, "hide": self.hide, "uid": NOBODY, "gid": NOBODY,
            "expose": _needed_paths(env) + [str(workdir)],
            "masks": [str(REPO_ROOT), str(Path.home())], "scratch": ["/tmp", "/var/tmp", "/dev/shm"],
        }
        spec_path = self.root / f"sandbox-{workdir.name}.json"
        spec_path.write_text(json.dumps(spec))
        return executor.RunContext(
            workdir=str(workdir), connection_file=str(workdir / ".kernel.json"), env=env,
            sandbox_spec=str(spec_path), kernel_log=str(opts.out / "logs" / f"kernel-{self.wid}.log"),
            cell_timeout=opts.cell_timeout, notebook_timeout=opts.timeout,
            max_output_bytes=opts.max_output_kb * 1024, preload=opts.preload, memory_mb=opts.memory_mb,
        )

    def _read_grades(self, student: str, result: dict[str, Any]) -> None:
        a = self.opts.assignment
        autograded = self.root / "autograded" / student / a
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(a, student)
            tests = []
            for nb in sub.notebooks:
                path = autograded / f"{nb.name}.ipynb"
                executed = nbformat.read(path, as_version=4) if path.exists() else None
                tests += notebook_tests(nb, executed, self.info.notebooks.get(nb.name))
            result.update(score=float(sub.score), max_score=float(sub.max_score), tests=tests)
        auto = [t for t in tests if t["kind"] == "auto"]
        result["auto_score"] = sum(t["score"] for t in auto)
        result["needs_manual"] = any(t["needs_manual"] for t in tests)

    def _merge_report(self, report: executor.ExecReport, notes: list[str], flags: set[str]) -> None:
        kinds = report.kinds()
        for kind, flag in (("memory", "memory"), ("kernel_died", "kernel_died"), ("timeout", "timeout"),
                           ("notebook_timeout", "timeout"), ("output_truncated", "output_truncated"),
                           ("tampered", "tampered")):
            if kind in kinds:
                flags.add(flag)
        for e in report.events:
            where = f"cell {e['cell']}" + (f" ({e['grade_id']})" if e.get("grade_id") else "")
            notes.append(f"{where}: {e['detail']}" if e["cell"] >= 0 else e["detail"])
        if report.integrity:
            flags.add("tampered")
            notes.extend(report.integrity[:5])
        if report.bootstrap_error:
            notes.append(f"the grading kernel could not load the checks ({report.bootstrap_error})")
        if report.restarts:
            notes.append(f"the kernel was restarted {report.restarts} time(s)")

    def _feedback(self, student: str, result: dict[str, Any]) -> int:
        a = self.opts.assignment
        notes = result.get("notes") or ([result["message"]] if result["message"] else [])
        feedback.CONTEXT = feedback.FeedbackContext(self.info.notebooks, notes, result["status"])
        try:
            res = self.api.generate_feedback(a, student, force=True)
            leaks = feedback.CONTEXT.leaks
        finally:
            feedback.CONTEXT = None
        dest = self.opts.out / "feedback" / student / a
        shutil.rmtree(dest, ignore_errors=True)
        if not res["success"]:
            self._write_plain_feedback(student, result)
            return leaks
        dest.mkdir(parents=True)
        hidden = [line for nb in self.info.notebooks.values() for c in nb.cells.values() for line in c.hidden_lines]
        for html_path in (self.root / "feedback" / student / a).glob("*.html"):
            text = html_path.read_text(encoding="utf-8")
            if feedback.leaked_lines(text, hidden):  # never hand out a page that still quotes hidden tests
                raise RuntimeError(f"feedback for {student} still contains hidden test code")
            (dest / html_path.name).write_text(text, encoding="utf-8")
        return leaks

    def _write_plain_feedback(self, student: str, result: dict[str, Any]) -> None:
        dest = self.opts.out / "feedback" / student / self.opts.assignment
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        body = (f"<h1>{html.escape(self.opts.assignment)}: {html.escape(student)}</h1>"
                f"<p>Status: <b>{html.escape(result['status'])}</b>. Score: {result['score']:g} / {result['max_score']:g}.</p>"
                f"<p>{html.escape(result['message'])}</p>")
        (dest / "grading.html").write_text(f"<!DOCTYPE html><html><body>{body}</body></html>", encoding="utf-8")

    def _export_autograded(self, student: str) -> None:
        a = self.opts.assignment
        dest = self.opts.out / "autograded" / student / a
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(self.root / "autograded" / student / a, dest)
        for path in dest.rglob("*"):
            os.chmod(path, 0o644 if path.is_file() else 0o755)

    def _cleanup(self, student: str, workdir: Path) -> None:
        a = self.opts.assignment
        for step in ("submitted", "autograded", "feedback"):
            path = self.root / step / student / a
            if path.exists():
                for p in path.rglob("*"):
                    os.chmod(p, 0o755 if p.is_dir() else 0o644)
                shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _needed_paths(env: dict[str, str]) -> list[str]:
    """Folders the kernel must be able to read: Python, the venv, the course packages, data."""
    import sys

    paths = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
             str(REPO_ROOT / "gan_utils"), str(REPO_ROOT / "autograder")]
    data = env.get("GAN_UTILS_DATA")
    if data and os.path.isdir(data):
        paths.append(data)
    return [os.path.realpath(p) for p in paths]


def _failed_tests(result: dict[str, Any], limit: int = 3) -> list[str]:
    """Short reasons for lost automatic points, so no zero in grades.csv is unexplained."""
    lost = [t for t in result.get("tests", []) if t["kind"] == "auto" and t["score"] < t["max_score"]]
    notes = []
    for t in lost[:limit]:
        why = t["message"] or t["outcome"]
        notes.append(f"{t['cell']} {t['outcome']}: {why[:140] + ('...' if len(why) > 140 else '')}")
    if len(lost) > limit:
        notes.append(f"{len(lost) - limit} more test cell(s) lost points")
    return notes


def _status(flags: set[str]) -> str:
    return next((s for s in STATUS_PRIORITY if s in flags), "ok")


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def quiet_nbgrader_logs(log_file: Path) -> None:
    """Send nbgrader/traitlets logs to ``log_file`` instead of the console."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.captureWarnings(True)  # nbgrader's SQLAlchemy warnings go to the log too
    for name in ("traitlets", "NbGraderAPI", "nbgrader", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)

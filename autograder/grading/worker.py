"""One grading worker: a private nbgrader course folder and gradebook, used through
``NbGraderAPI`` in-process, grading one submission at a time.

``Worker.grade(student, folder)`` inspects the submission, stages it, runs nbgrader's
autograde (with :class:`~autograder.grading.executor.GuardedExecute`), reads the
scores from the gradebook, renders leak-free feedback and the notebook as the
student submitted it, and returns an :class:`Outcome`: the result dict (see
:mod:`autograder.grading.results`), the files to store, and a snapshot of the
private gradebook. A worker writes nothing outside its own folders: the process
that started the run stores outcomes, so a worker may run on another machine
(:func:`grade_task`, used by the Dask backend).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import multiprocessing.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.grading import executor, feedback, sandbox
from autograder.grading.gradebook import create_schema
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
AS_SUBMITTED = "as_submitted.html"


@dataclass
class Outcome:
    """One graded submission, as it travels back to the process that owns the reports.

    ``files`` maps paths relative to the output (and course) folder to their bytes:
    ``feedback/<s>/<a>/*.html``, ``autograded/<s>/<a>/*`` and ``submitted/<s>/<a>/*``
    (the notebooks exactly as handed in, with the student's own outputs).
    ``gradebook`` is :func:`autograder.grading.gradebook.snapshot_submission` of the
    worker's private gradebook, ``None`` when nbgrader did not grade the submission.
    """

    result: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    gradebook: dict[str, Any] | None = None


def read_folder(folder: Path, limit: int = MAX_EXTRA_FILE * 4) -> dict[str, bytes]:
    """Every file under ``folder`` (relative POSIX path -> bytes); files over ``limit`` bytes are left out."""
    files: dict[str, bytes] = {}
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            if path.stat().st_size <= limit:
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (from :func:`read_folder`) under ``folder``; no path may leave it."""
    root = folder.resolve()
    for rel, data in files.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise ValueError(f"refusing to write {rel!r} outside {root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def plain_feedback(assignment: str, student: str, result: dict[str, Any]) -> bytes:
    """A one-page feedback for a submission nbgrader could not grade (status and reason)."""
    body = (f"<h1>{html.escape(assignment)}: {html.escape(student)}</h1>"
            f"<p>Status: <b>{html.escape(result['status'])}</b>. Score: {result['score']:g} / {result['max_score']:g}.</p>"
            f"<p>{html.escape(result['message'])}</p>")
    return f"<!DOCTYPE html><html><body>{body}</body></html>".encode()


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
    create_schema(cfg.CourseDirectory.db_url)  # nbgrader would create it through an alembic subprocess
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
        self._fonts: list[Path] | None = None
        self._spare: executor.RunContext | None = self._start_kernel()

    # -- per student ----------------------------------------------------------------------
    def grade(self, student: str, fingerprint: str, folder: Path | None = None, warm_next: bool = True) -> Outcome:
        """Grade the submission in ``folder`` (default ``SUBMISSIONS/<student>/<assignment>``).

        ``warm_next`` starts the next kernel while this one runs.
        """
        t0 = time.monotonic()
        opts, a = self.opts, self.opts.assignment
        folder = opts.submissions / student / a if folder is None else folder
        self.outbox = self.root / "outbox"
        shutil.rmtree(self.outbox, ignore_errors=True)
        result = new_result(student, a, self.info, fingerprint)
        result["isolation"] = sandbox.mode_name(self.isolate)
        snapshot = None
        insp = inspect_submission(folder, self.info)
        if insp.status:
            result.update(status=insp.status, message="; ".join(insp.notes), flags=sorted(insp.flags | {insp.status}))
            self._write_plain_feedback(student, result)
            result["seconds"] = round(time.monotonic() - t0, 2)
            return Outcome(result, self._collect(student, folder, insp), None)
        ctx = self._take_kernel()
        if warm_next:
            self._spare = self._start_kernel()
        workdir = Path(ctx.workdir)
        self._stage(student, insp, workdir, folder)
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
            snapshot = self._read_grades(student, result)
        self._merge_report(report, notes, flags)
        notes += _failed_tests(result)
        result.update(flags=sorted(flags), status=_status(flags), notes=_dedupe(notes), message="; ".join(_dedupe(notes)))
        if res["success"]:
            shown = self._render_as_submitted(student, insp)
            leaks = self._feedback(student, result, shown)
            if leaks:
                flags |= {"tampered", "hidden_test_leak"}
                notes.append(f"{leaks} output(s) quoted hidden test code and were removed from the feedback")
                result.update(flags=sorted(flags), status=_status(flags), notes=_dedupe(notes), message="; ".join(_dedupe(notes)))
                self._feedback(student, result, shown)
            self._export_autograded(student, shown)
        else:
            self._write_plain_feedback(student, result)
        files = self._collect(student, folder, insp)
        self._cleanup(student, workdir)
        result["seconds"] = round(time.monotonic() - t0, 2)
        return Outcome(result, files, snapshot)

    def _collect(self, student: str, folder: Path, insp: Inspection) -> dict[str, bytes]:
        """The outbox (feedback, autograded notebooks) plus the submission as handed in."""
        files = read_folder(self.outbox)
        shutil.rmtree(self.outbox, ignore_errors=True)
        prefix = f"submitted/{student}/{self.opts.assignment}/"
        for name in [*insp.notebooks, "timestamp.txt"]:
            path = folder / (name if name == "timestamp.txt" else f"{name}.ipynb")
            if path.is_file() and path.stat().st_size <= MAX_EXTRA_FILE * 4:
                files[prefix + path.name] = path.read_bytes()
        return files

    def _render_as_submitted(self, student: str, insp: Inspection) -> set[str]:
        """HTML of each notebook as the student submitted it (their own run's outputs), for
        the grader of written answers and for feedback. A page that would quote hidden
        tests is not written. Returns the notebook names rendered."""
        from nbconvert import HTMLExporter

        hidden = self.info.hidden_lines
        exporter = HTMLExporter(template_name="lab")
        shown = set()
        for name, nb in insp.notebooks.items():
            try:
                body, _ = exporter.from_notebook_node(nb)
            except Exception:  # an unrenderable output must not stop grading
                continue
            if feedback.leaked_lines(body, hidden):
                continue
            for sub in ("feedback", "autograded"):
                dest = self.outbox / sub / student / self.opts.assignment / f"{name}.{AS_SUBMITTED}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(body, encoding="utf-8")
            shown.add(name)
        return shown

    def _stage(self, student: str, insp: Inspection, workdir: Path, folder: Path) -> None:
        """Submission into nbgrader's ``submitted`` folder; supporting files into the kernel's folder."""
        a = self.opts.assignment
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
        from autograder.grading import sandbox

        if sandbox.mode_name(self.isolate) == "namespaces":  # the kernel runs as nobody
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
        mpl_config = workdir / ".config" / "matplotlib"
        threads = kernel_threads(opts)
        env.update(
            OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONHASHSEED="0", NBGRADER_EXECUTION="autograde",
            IPYTHONDIR=str(workdir / ".ipython"), MPLCONFIGDIR=str(mpl_config),
            PYTHONDONTWRITEBYTECODE="1",
            # figures inline, as in Jupyter: a non-interactive backend warns on plt.show()
            # (stderr, which zeroes a test cell)
            MPLBACKEND="module://matplotlib_inline.backend_inline",
        )
        env.pop("PYTHONSTARTUP", None)
        from autograder.grading import sandbox

        mode = sandbox.require_mode(self.isolate)  # test-run once per process; never a silent fallback
        if mode != "none":  # the real home folder is masked
            env.setdefault("GAN_UTILS_DATA", str(Path.home() / ".cache" / "gan_utils" / "data"))
            env.update(HOME=str(workdir), XDG_CACHE_HOME=str(workdir / ".cache"))
        for font_list in self._font_lists(mode):
            mpl_config.mkdir(parents=True, exist_ok=True)
            shutil.copy2(font_list, mpl_config / font_list.name)
        if mode == "namespaces":  # the kernel runs as nobody; under bwrap as the grader's own user
            env.update(USER="nobody", LOGNAME="nobody")
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        spec = {
            "memory_mb": opts.memory_mb, "fsize_mb": opts.fsize_mb, "nproc": 4096 if mode == "namespaces" else None,
            "cwd": str(workdir), "isolate": mode, "hide": self.hide, "uid": NOBODY, "gid": NOBODY,
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

    def _font_lists(self, mode: str) -> list[Path]:
        """matplotlib's font list, built once per worker by a process of the grader's own that sees
        the fonts a kernel sees (an empty home folder where the real one is masked). Every kernel
        starts with a copy instead of scanning the system's fonts again (about 0.3 s a kernel);
        nothing a kernel wrote is ever handed to another. An empty list when it cannot be built:
        each kernel then builds its own, as matplotlib does."""
        if self._fonts is None:
            folder = self.root / "matplotlib-fonts"
            shutil.rmtree(folder, ignore_errors=True)
            (folder / "config").mkdir(parents=True)
            (folder / "home").mkdir()
            env = venv_path_env()
            env.update(MPLCONFIGDIR=str(folder / "config"), MPLBACKEND="Agg")
            if mode != "none":
                env.update(HOME=str(folder / "home"), XDG_CACHE_HOME=str(folder / "home" / ".cache"))
            try:
                subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, cwd=folder,
                               capture_output=True, timeout=120, check=True)
            except (OSError, subprocess.SubprocessError):
                pass
            self._fonts = sorted((folder / "config").glob("fontlist-*.json"))
        return self._fonts

    def _read_grades(self, student: str, result: dict[str, Any]) -> dict[str, Any]:
        """Scores from the private gradebook into ``result``; returns the gradebook snapshot."""
        from autograder.grading.gradebook import snapshot_submission

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
            snapshot = snapshot_submission(gb, a, student)
        auto = [t for t in tests if t["kind"] == "auto"]
        result["auto_score"] = sum(t["score"] for t in auto)
        result["needs_manual"] = any(t["needs_manual"] for t in tests)
        return snapshot

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

    def _feedback(self, student: str, result: dict[str, Any], shown: set[str] = frozenset()) -> int:
        a = self.opts.assignment
        notes = result.get("notes") or ([result["message"]] if result["message"] else [])
        feedback.CONTEXT = feedback.FeedbackContext(self.info.notebooks, notes, result["status"],
                                                    as_submitted={n: f"{n}.{AS_SUBMITTED}" for n in shown})
        try:
            res = self.api.generate_feedback(a, student, force=True)
            leaks = feedback.CONTEXT.leaks
        finally:
            feedback.CONTEXT = None
        dest = self.outbox / "feedback" / student / a
        if not res["success"]:
            self._write_plain_feedback(student, result)
            return leaks
        dest.mkdir(parents=True, exist_ok=True)
        hidden = self.info.hidden_lines
        for html_path in (self.root / "feedback" / student / a).glob("*.html"):
            text = html_path.read_text(encoding="utf-8")
            if feedback.leaked_lines(text, hidden):  # never hand out a page that still quotes hidden tests
                raise RuntimeError(f"feedback for {student} still contains hidden test code")
            (dest / html_path.name).write_text(text, encoding="utf-8")
        return leaks

    def _write_plain_feedback(self, student: str, result: dict[str, Any]) -> None:
        dest = self.outbox / "feedback" / student / self.opts.assignment
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "grading.html").write_bytes(plain_feedback(self.opts.assignment, student, result))

    def _export_autograded(self, student: str, shown: set[str] = frozenset()) -> None:
        """The autograded notebooks into the outbox; each opens with a link to the notebook as
        submitted (Jupyter's ``/view/<path>`` page when it runs in the course folder, as for
        formgrader; nbconvert strips a ``/files/`` prefix from links, so that one is not used)."""
        a = self.opts.assignment
        dest = self.outbox / "autograded" / student / a
        dest.mkdir(parents=True, exist_ok=True)
        for path in (self.root / "autograded" / student / a).iterdir():
            if not path.is_file():
                continue
            if path.suffix == ".ipynb" and path.stem in shown:
                nb = nbformat.read(path, as_version=4)
                link = f"/view/autograded/{student}/{a}/{path.stem}.{AS_SUBMITTED}"
                cell = nbformat.v4.new_markdown_cell(
                    f"**As submitted:** [the notebook with the student's own outputs]({link}) "
                    "(figures from their run; the cells below were re-run by the autograder in quick mode).")
                cell.metadata["autograder"] = {"as_submitted_link": True}
                nb.cells.insert(0, cell)
                nbformat.write(nb, dest / path.name)
            else:
                shutil.copy2(path, dest / path.name)

    def _cleanup(self, student: str, workdir: Path) -> None:
        a = self.opts.assignment
        for step in ("submitted", "autograded", "feedback"):
            path = self.root / step / student / a
            if path.exists():
                for p in path.rglob("*"):
                    os.chmod(p, 0o755 if p.is_dir() else 0o644)
                shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


# -- one student, anywhere the kit is installed -------------------------------------------
_PREPARED: dict[str, tuple[Path, Worker]] = {}
TASK_ROOT_PREFIX = "autograder-task-"
_FINALIZER: Any = None


def kernel_threads(opts: GradeOptions) -> str:
    """The CPU threads of each kernel: ``opts.kernel_threads`` when given; on a cluster the Dask worker
    process's ``OMP_NUM_THREADS`` (its share of the node); else the cores divided among the workers."""
    if opts.kernel_threads:
        return str(opts.kernel_threads)
    threads = os.environ.get("OMP_NUM_THREADS") if opts.scheduler else None
    return threads or str(max(1, (os.cpu_count() or 1) // max(1, opts.workers)))


def _drop_prepared() -> None:
    """Stop the prepared worker's spare kernel and remove its folder."""
    while _PREPARED:
        root, worker = _PREPARED.popitem()[1]
        try:
            worker.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _remember(key: str, root: Path, worker: Any) -> None:
    """Keep a prepared worker for later tasks; it is closed and its folder removed when this
    process exits (Dask worker processes end through multiprocessing, which skips atexit)."""
    global _FINALIZER
    if _FINALIZER is None:
        _FINALIZER = multiprocessing.util.Finalize(None, _drop_prepared, exitpriority=10)
    _PREPARED[key] = (root, worker)


def _sweep_task_roots(tmp: Path) -> list[Path]:
    """Remove the task folders of processes that are gone (a Dask worker that was killed); returns them."""
    gone = []
    for root in tmp.glob(TASK_ROOT_PREFIX + "*"):
        try:
            if root.stat().st_uid != os.getuid():
                continue
            pid = int((root / "owner.pid").read_text(encoding="ascii"))
        except (OSError, ValueError):  # not finished, not ours, or not a task folder
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
            gone.append(root)
        except PermissionError:  # alive, someone else's
            pass
    return gone


def grade_task(opts: GradeOptions, student: str, fingerprint: str, submission: dict[str, bytes],
               source: dict[str, bytes], isolation: Any = None) -> Outcome:
    """Grade one student from the bytes of their submission and of the instructor's source
    folder; needs nothing of the calling machine but the kit (a Dask task runs this).

    The first call for an assignment in a process prepares a private course (nbgrader
    ``generate_assignment``, a few seconds) and a worker; later calls reuse them while
    the source is unchanged. ``isolation`` None probes this machine.
    """
    from autograder.grading import batch
    from autograder.grading.options import COURSE_CONFIG

    key = hashlib.sha256(repr(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in source.items())).encode()
                         + opts.assignment.encode() + repr(isolation).encode()).hexdigest()[:16]
    if key not in _PREPARED:
        _drop_prepared()
        _sweep_task_roots(Path(tempfile.gettempdir()))
        run_root = Path(tempfile.mkdtemp(prefix=TASK_ROOT_PREFIX))
        (run_root / "owner.pid").write_text(str(os.getpid()), encoding="ascii")
        write_folder(run_root / "source" / opts.assignment, source)
        config = opts.course_config if opts.course_config and Path(opts.course_config).exists() else COURSE_CONFIG
        local = replace(opts, source_root=run_root / "source", submissions=run_root / "incoming",
                        out=run_root / "out", course_config=config, workers=1)
        mode = batch.probe_isolation(isolation)
        batch.prepare_run_root(run_root)
        quiet_nbgrader_logs(local.out / "logs" / "task.log")
        prepare_course(local, run_root / "state" / "template")
        worker = Worker(local, "t1", run_root, mode, batch.hidden_paths(local, run_root))
        _remember(key, run_root, worker)
    run_root, worker = _PREPARED[key]
    folder = worker.opts.submissions / student / opts.assignment
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_folder(folder, submission)
    try:
        return worker.grade(student, fingerprint, folder)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


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

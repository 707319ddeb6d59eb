"""Guarded notebook execution inside nbgrader's autograde step.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` preprocessor. On top of
the per-cell timeout it adds:

- a wall-clock limit for the whole notebook (cells after it are marked "not run");
- a sandboxed kernel (:mod:`autograder.grading.sandbox`): memory cap, hidden
  instructor files, unprivileged user;
- recovery: a kernel that dies (``os._exit``, ``exit()``, a crash) or ignores the
  interrupt after a timeout is restarted and the remaining cells still run, so
  the notebook is graded instead of failing as a whole;
- an output budget per notebook (output beyond it is dropped, with a note);
- integrity snapshots (:mod:`autograder.grading.integrity`) before the first
  cell, before every test cell and at the end. A test cell that would run after
  torch, the checks or IPython were tampered with is not run;
- warnings never cost points: nbgrader scores a test cell 0 when it wrote anything
  to stderr, so a test cell's stderr output (a ``UserWarning`` from a correct answer)
  is kept as ordinary output and the grade is decided by errors alone.

Everything that happened is recorded in the :class:`ExecReport` of the current
:class:`RunContext`, which the worker sets before each autograde call.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.client import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.preprocessors import Execute
from traitlets import Bool

from autograder.grading import integrity

MEMORY_ENAMES = {"MemoryError", "OutOfMemoryError", "_ArrayMemoryError"}
MEMORY_TEXT = ("can't allocate memory", "out of memory", "cannot allocate memory")
LOCKED_CELL_OUTPUT = 1024 * 1024  # output allowance of each instructor (locked) cell


@dataclass
class ExecReport:
    """What happened while one notebook ran."""

    events: list[dict[str, Any]] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    restarts: int = 0
    bootstrap_error: str = ""
    dropped_output_bytes: int = 0
    timing: dict[str, float] = field(default_factory=dict)

    def add(self, kind: str, cell: int, detail: str, grade_id: str | None = None) -> None:
        self.events.append({"kind": kind, "cell": cell, "grade_id": grade_id, "detail": detail})

    def kinds(self) -> set[str]:
        return {e["kind"] for e in self.events}


@dataclass
class RunContext:
    """Settings for the next notebook run (set by the worker, read by the executor)."""

    workdir: str
    connection_file: str
    env: dict[str, str]
    sandbox_spec: str | None
    kernel_log: str | None = None
    cell_timeout: int = 300
    notebook_timeout: int = 1200
    max_output_bytes: int = 2 * 1024 * 1024
    memory_mb: int | None = None
    preload: tuple[str, ...] = ("autograder.checks", "gan_utils.losses")
    report: ExecReport = field(default_factory=ExecReport)
    km: Any = None  # a kernel started ahead of time by start_kernel()


CURRENT: RunContext | None = None


def _log_kwargs(ctx: RunContext) -> dict[str, Any]:
    if not ctx.kernel_log:
        return {}
    log = open(ctx.kernel_log, "ab")  # noqa: SIM115 - the kernel process keeps its own copy
    return {"stdout": log, "stderr": log}


def start_kernel(ctx: RunContext) -> None:
    """Start the sandboxed kernel of ``ctx`` without waiting for it (``ctx.km``).

    The kernel imports ``ctx.preload`` while it starts (binding no names), so a
    worker can warm up the next kernel while it writes the previous results.
    """
    global CURRENT
    saved, CURRENT = CURRENT, ctx
    try:
        # Unix-socket transport in the kernel's own folder: TCP ports picked before the kernel
        # binds them can be taken meanwhile by another kernel (or an outgoing connection) when
        # several workers start kernels at once, and that kernel then never answers.
        km = SandboxedKernelManager(kernel_name="python3", transport="ipc",
                                    ip=os.path.join(ctx.workdir, "kernel-ipc"))
        code = f"for m in {tuple(ctx.preload)!r}:\n    try:\n        __import__(m)\n    except Exception:\n        pass\n"
        preload = f"--IPKernelApp.exec_lines=exec({code!r})"
        run_sync(km.start_kernel)(cwd=ctx.workdir, env=ctx.env, **_log_kwargs(ctx),
                                  extra_arguments=["--HistoryManager.hist_file=:memory:", preload])
        ctx.km = km
    finally:
        CURRENT = saved


def kernel_alive(ctx: RunContext) -> bool:
    try:
        return ctx.km is not None and bool(run_sync(ctx.km.is_alive)())
    except Exception:
        return False


def stop_kernel(ctx: RunContext) -> None:
    """Kill the kernel of ``ctx`` (if any) and release its resources."""
    km, ctx.km = ctx.km, None
    if km is None:
        return
    try:
        if run_sync(km.is_alive)():
            run_sync(km.shutdown_kernel)(now=True)
        run_sync(km.cleanup_resources)()
    except Exception:
        pass


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the python kernel of this interpreter through the sandbox launcher."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if CURRENT is not None:
            self.connection_file = CURRENT.connection_file

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if "ipykernel_launcher" in cmd or "ipykernel" in cmd:
            cmd[0] = sys.executable
        if CURRENT is None or not CURRENT.sandbox_spec:
            return cmd
        return [sys.executable, "-m", "autograder.grading.sandbox", CURRENT.sandbox_spec, "--", *cmd]


def _is_test_cell(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and nbutils.is_grade(cell) and not nbutils.is_solution(cell)


def stderr_is_not_an_error(cell: NotebookNode) -> int:
    """Relabel the cell's stderr streams as stdout (text kept); returns how many.

    nbgrader's ``determine_grade`` gives 0 to a test cell with any stderr stream; a
    test cell should fail only when it raises.
    """
    moved = 0
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.get("name") == "stderr":
            out.name = "stdout"
            moved += 1
    return moved


def _error(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class GuardedExecute(Execute):
    """nbgrader's Execute with limits, kernel recovery and integrity checks (see module doc)."""

    # Every cell runs after a failing one. This also sends stop_on_error=False, so the kernel
    # never aborts the next cell's request, which can reach it just after an error.
    allow_errors = Bool(True)

    def __init__(self, **kw: Any) -> None:
        kw["kernel_manager_class"] = SandboxedKernelManager
        super().__init__(**kw)
        self._private = False
        self._budget = 0
        self._dropped = 0
        self._locked_budget: int | None = None

    # -- nbconvert entry point ---------------------------------------------------------------
    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        ctx = CURRENT
        if ctx is None:
            raise RuntimeError("GuardedExecute needs autograder.grading.executor.CURRENT to be set by the grader")
        NotebookClient.__init__(self, nb, km or ctx.km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self.shutdown_kernel = "immediate"  # results are in; do not wait for a polite exit
        self._ctx = ctx
        self._budget = ctx.max_output_bytes
        self._dropped = 0
        run_sync(self._run)()
        self.set_widgets_metadata()
        ctx.report.dropped_output_bytes = self._dropped
        return self.nb, self.resources

    # -- output budget ------------------------------------------------------------------------
    def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
        if self._private:
            return super().output(outs, msg, display_id, cell_index)
        content = msg.get("content", {})
        size = len(content.get("text", "")) if msg["msg_type"] == "stream" else len(json.dumps(content.get("data", {})))
        if self._locked_budget is not None:  # instructor cells: their own allowance
            if size <= self._locked_budget:
                self._locked_budget -= size
                return super().output(outs, msg, display_id, cell_index)
            self._dropped += size
            return None
        if size <= self._budget:
            self._budget -= size
            return super().output(outs, msg, display_id, cell_index)
        if msg["msg_type"] == "stream" and self._budget > 0:
            keep = self._budget
            content["text"] = content["text"][:keep]
            self._budget = 0
            self._dropped += size - keep
            return super().output(outs, msg, display_id, cell_index)
        self._dropped += size
        return None

    # -- helpers ------------------------------------------------------------------------------
    async def _alive(self) -> bool:
        try:
            return bool(self.km is not None and await self.km.is_alive())
        except Exception:
            return False

    async def _exit_code(self) -> int | None:
        try:
            return await self.km.provisioner.poll() if self.km and self.km.provisioner else None
        except Exception:
            return None

    async def _responsive(self, timeout: float = 5.0) -> bool:
        try:
            await ensure_async(self.kc.kernel_info(reply=True, timeout=timeout))
            return True
        except Exception:
            return False

    async def _run_private(self, code: str, timeout: int) -> str:
        """Run grader code without history; return its stdout (never added to the notebook)."""
        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        saved, self._private = self.timeout_func, True
        self.timeout_func = lambda _cell: timeout
        try:
            await self.async_execute_cell(cell, len(self.nb.cells) - 1, store_history=False)
        finally:
            self.nb.cells.pop()
            self._private, self.timeout_func = False, saved
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            self._private_error = f"{errors[0].ename}: {errors[0].evalue}"
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")

    async def _snapshot(self, preload: tuple[str, ...] = (), timeout: int = 30) -> dict[str, Any] | None:
        """Integrity snapshot; ``None`` when the kernel does not produce one (hung, dead, altered)."""
        nonce = integrity.new_nonce()
        self._private_error = ""
        try:
            text = await self._run_private(integrity.snapshot_code(nonce, preload), timeout=timeout)
        except Exception as exc:  # a hook that hangs or kills the kernel: no trustworthy snapshot
            self._private_error = f"{type(exc).__name__}: {exc}"
            return None
        return integrity.parse(text, nonce)

    async def _bootstrap(self) -> None:
        self._baseline = await self._snapshot(self._ctx.preload, timeout=180)
        if self._baseline is None:
            self._ctx.report.bootstrap_error = self._private_error or "no snapshot"

    async def _restart(self) -> bool:
        """Fresh kernel (and checks loaded again); the time it takes is not charged to the notebook."""
        self._ctx.report.restarts += 1
        started = time.monotonic()
        try:
            if self.kc is not None:
                self.kc.stop_channels()
            self.kc = None
            await self.km.restart_kernel(now=True)
            await self.async_start_new_kernel_client()
            await self._bootstrap()
            self._deadline += time.monotonic() - started
            return True
        except Exception as exc:  # the kernel cannot come back: later cells are not run
            self._ctx.report.add("kernel_died", -1, f"the kernel could not be restarted ({type(exc).__name__})")
            return False

    async def _check_integrity(self) -> list[str]:
        if self._baseline is None:
            return []
        changes = integrity.compare(self._baseline, await self._snapshot())
        for change in changes:
            if change not in self._ctx.report.integrity:
                self._ctx.report.integrity.append(change)
        return changes

    # -- main loop ----------------------------------------------------------------------------
    async def _run(self) -> None:
        ctx, report = self._ctx, self._ctx.report
        self._deadline = time.monotonic() + ctx.notebook_timeout + 3600  # set for real after the bootstrap
        self.timeout_func = lambda _cell: max(1, int(min(ctx.cell_timeout, self._deadline - time.monotonic()) + 0.999))
        kernel_ok = True
        t0 = time.monotonic()
        launch = {} if ctx.km is not None else {"cwd": ctx.workdir, "env": ctx.env, **_log_kwargs(ctx)}
        async with self.async_setup_kernel(**launch):
            await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
            t1 = time.monotonic()
            await self._bootstrap()
            t2 = time.monotonic()
            report.timing.update(kernel_start=round(t1 - t0, 2), bootstrap=round(t2 - t1, 2))
            self._deadline = t2 + ctx.notebook_timeout
            for index in range(len(self.nb.cells)):
                cell = self.nb.cells[index]
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                gid = _grade_id(cell)
                if not kernel_ok:
                    cell.outputs = [_error("KernelDied", "not run: the kernel could not be restarted")]
                    continue
                if time.monotonic() >= self._deadline - 0.5:
                    cell.outputs = [_error("NotebookTimeout", f"not run: the notebook time limit of {ctx.notebook_timeout} s was reached")]
                    if gid or "notebook_timeout" not in report.kinds():  # one note, plus one per graded cell
                        report.add("notebook_timeout", index, "not run: notebook time limit reached", gid)
                    continue
                if not await self._alive():
                    code = await self._exit_code()
                    report.add("kernel_died", index, f"the kernel had stopped before this cell (exit status {code})", gid)
                    kernel_ok = await self._restart()
                    if not kernel_ok:
                        cell.outputs = [_error("KernelDied", "not run: the kernel could not be restarted")]
                        continue
                if _is_test_cell(cell):
                    changes = await self._check_integrity()
                    if integrity.affects_grading(changes):
                        cell.outputs = [_error("IntegrityError", "not run: the notebook modified " + "; ".join(changes[:3]))]
                        report.add("tampered", index, "test not run after the notebook modified graded objects", gid)
                        continue
                kernel_ok = await self._execute(cell, index, gid)
            t3 = time.monotonic()
            if kernel_ok and await self._alive():
                await self._check_integrity()
            report.timing.update(cells=round(t3 - t2, 2), final_check=round(time.monotonic() - t3, 2))
            if not self.owns_km and self.kc is not None:  # a kernel started ahead: its owner stops it
                self.kc.stop_channels()
                self.kc = None

    async def _execute(self, cell: NotebookNode, index: int, gid: str | None) -> bool:
        report = self._ctx.report
        before = self._dropped
        self._locked_budget = LOCKED_CELL_OUTPUT if nbutils.is_locked(cell) else None
        try:
            await self.async_execute_cell(cell, index)
        except DeadKernelError:
            code = await self._exit_code()
            cell.outputs.append(_error("KernelDied", f"the kernel process exited while running this cell (exit status {code})"))
            report.add("kernel_died", index, f"the kernel exited while running this cell (exit status {code})", gid)
            return await self._restart()
        except CellTimeoutError:
            cell.outputs.append(_error("CellTimeoutError", "the cell ran past its time limit and ignored the interrupt; the kernel was restarted"))
            report.add("timeout", index, "time limit reached; the kernel ignored the interrupt and was restarted", gid)
            return await self._restart()
        if _is_test_cell(cell):
            stderr_is_not_an_error(cell)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if any(o.ename == "CellTimeoutError" for o in errors):
            kind = "notebook_timeout" if time.monotonic() >= self._deadline - 1 else "timeout"
            report.add(kind, index, "interrupted at the time limit", gid)
            if not await self._responsive():
                report.add("timeout", index, "the kernel stayed busy after the interrupt and was restarted", gid)
                return await self._restart()
        for o in errors:
            if o.ename in MEMORY_ENAMES or any(t in str(o.evalue).lower() for t in MEMORY_TEXT):
                limit = f"the memory limit of {self._ctx.memory_mb} MB was reached" if self._ctx.memory_mb else "out of memory"
                report.add("memory", index, f"{limit} ({o.ename}{': ' + str(o.evalue)[:160] if o.evalue else ''})", gid)
                break
        if self._dropped > before:
            note = f"\n[autograder: {self._dropped - before} bytes of output were dropped (output limit)]\n"
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
            report.add("output_truncated", index, f"{self._dropped - before} bytes of output dropped", gid)
        return True


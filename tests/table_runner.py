"""Grade many edited copies of one assignment notebook quickly, for the harness's tables.

``python tests/table_runner.py SPEC.json`` reads::

    {"solution": "solutions/<name>/<name>.ipynb", "submissions": {"student": "path.ipynb", ...},
     "out": "folder", "workers": 2, "threads": 1, "timeout": 600, "env": {"GAN_COURSE_MODE": "quick"}}

(``threads``, each child's CPU threads, is optional: by default the cores divided among the
workers, the grader's rule) and writes ``out/<student>.json``: ``{"status": "ok" | "timeout" | "crashed", "seconds": s,
"cpu_seconds": s, "tests": {test cell: {"score", "max_score", "message"}}}`` (a child's
stray output goes to ``out/logs/<student>.txt``). ``--serve`` takes one spec per line on
stdin and answers each with a line, paying the imports once for them all.

Each submission is graded as nbgrader's autograde grades it, without the sandbox and the
gradebook: its locked and test cells are replaced by the solution's (hidden tests
included, as ``OverwriteCells`` does), the code cells up to the last test cell run in order
in an IPython shell (magics and displays work as in a kernel, figures are made but not drawn;
an error does not stop the run; the cells after the last test cannot change a score), the
grader's integrity snapshot is compared before each test cell (a test does
not run after the notebook tampered with graded objects), the grader's own rule for test
cells applies (stderr is not an error,
:func:`autograder.grading.executor.stderr_is_not_an_error`), and nbgrader's
``determine_grade`` and the grader's message extraction score each test cell.

What makes it quick: a process imports torch, torchvision, matplotlib, IPython and the
kit once, then forks one child per submission, so no submission pays those imports
(about 6 s of CPU each on a laptop). No tensor operation runs in the parent, so torch has
started no threads before the fork; the parent's only other threads are the idle OpenBLAS
pools of numpy and scipy, which OpenBLAS shuts down before a fork and starts again in the
child when it needs them.

The harness still grades the solution of every assignment (and the blank notebook and one slip
submission of ``cgan_mnist``) with the real batch grader, and checks that this runner scores
those the same.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

WARM = ("numpy", "torch", "torch.nn", "torch.optim", "torch._dynamo", "torchvision", "matplotlib",
        "matplotlib.pyplot", "matplotlib_inline.backend_inline", "IPython", "IPython.core.interactiveshell",
        "ipywidgets", "tqdm.auto", "PIL.Image", "scipy", "gan_utils", "gan_utils.losses", "gan_utils.models",
        "gan_utils.train", "gan_utils.data", "gan_utils.metrics", "gan_utils.plotting", "autograder.checks",
        "nbformat", "nbgrader.utils")


def warm() -> None:
    """Import what every notebook and hidden test imports (no tensor operations: torch starts no threads)."""
    import importlib

    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:  # a module a notebook may not need; the child imports it if it does
            pass


def graded_notebook(solution: Any, submission: Any) -> Any:
    """The submission with its locked and test cells taken from the solution, as nbgrader's
    ``OverwriteCells`` does (the solution still holds the hidden tests)."""
    from nbgrader import utils as nbutils

    source = {c.metadata["nbgrader"]["grade_id"]: c for c in solution.cells
              if c.metadata.get("nbgrader", {}).get("grade_id")}
    for cell in submission.cells:
        meta = cell.metadata.get("nbgrader", {})
        ref = source.get(meta.get("grade_id"))
        if ref is not None and (nbutils.is_locked(ref) or (nbutils.is_grade(ref) and not nbutils.is_solution(ref))):
            cell.source, cell.cell_type = ref.source, ref.cell_type
            cell.metadata["nbgrader"] = dict(ref.metadata["nbgrader"])
    return submission


def _outputs(captured: Any, result: Any, shell: Any) -> list[Any]:
    import nbformat

    outputs = []
    if captured.stdout:
        outputs.append(nbformat.v4.new_output("stream", name="stdout", text=captured.stdout))
    if captured.stderr:
        outputs.append(nbformat.v4.new_output("stream", name="stderr", text=captured.stderr))
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        outputs.append(nbformat.v4.new_output("error", ename=type(error).__name__, evalue=str(error), traceback=[]))
    elif result.result is not None:
        data, _ = shell.display_formatter.format(result.result)
        outputs.append(nbformat.v4.new_output("execute_result", data=data, execution_count=result.execution_count))
    return outputs


def _figures_not_drawn(shell: Any) -> None:
    """Figures are made but never drawn: the Agg backend stays (``%matplotlib inline`` changes
    nothing), ``plt.show()`` draws nothing and each cell's figures are closed after it. No test
    reads a figure, and drawing them is about a third of a quick-mode notebook's time."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    shell.enable_matplotlib = lambda gui=None: (gui, "agg")
    plt.show = lambda *args, **kwargs: None
    shell.events.register("post_run_cell", lambda _result: plt.close("all"))


def _snapshot(shell: Any, preload: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The grader's integrity snapshot of the shell's state, taken the way the grader takes it."""
    from IPython.utils.capture import capture_output

    from autograder.grading import integrity

    nonce = integrity.new_nonce()
    with capture_output(display=False) as captured:
        shell.run_cell(integrity.snapshot_code(nonce, preload), store_history=False, silent=True)
    return integrity.parse(captured.stdout, nonce)


def _score(cell: Any) -> dict[str, Any]:
    """A test cell's row: nbgrader's score and the grader's message."""
    from nbgrader import utils as nbutils

    from autograder.grading.results import cell_message

    score, max_score = nbutils.determine_grade(cell)
    return {"score": float(score), "max_score": float(max_score), "message": cell_message(cell)}


def last_test_cell(nb: Any) -> int:
    """The index of the last test cell of ``nb`` (-1 if it has none), by the grader's rule."""
    from autograder.grading.executor import _is_test_cell

    return max((i for i, cell in enumerate(nb.cells) if _is_test_cell(cell)), default=-1)


def grade_here(nb: Any) -> dict[str, dict[str, Any]]:
    """Run the code cells of ``nb`` up to its last test cell in a fresh IPython shell in this process;
    score the test cells. The cells after the last test cannot change a score (the grader runs them,
    and its integrity check after them only flags the submission), so they are not run."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from autograder.grading import integrity
    from autograder.grading.executor import (
        RunContext,
        _error,
        _is_test_cell,
        stderr_is_not_an_error,
    )

    shell = InteractiveShell.instance()
    shell.enable_gui = lambda gui=None: None  # as in ipykernel: the inline backend needs no event loop
    _figures_not_drawn(shell)
    baseline = _snapshot(shell, RunContext.preload)
    tests: dict[str, dict[str, Any]] = {}
    for cell in nb.cells[:last_test_cell(nb) + 1]:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        graded = _is_test_cell(cell)
        changes = integrity.compare(baseline, _snapshot(shell)) if graded and baseline is not None else []
        if integrity.affects_grading(changes):  # as the grader: a test does not run after tampering
            cell.outputs = [_error("IntegrityError", "not run: the notebook modified " + "; ".join(changes[:3]))]
            tests[cell.metadata["nbgrader"]["grade_id"]] = _score(cell)
            continue
        with capture_output(display=False) as captured:
            result = shell.run_cell(cell.source, store_history=True)
        cell.outputs = _outputs(captured, result, shell)
        if graded:
            stderr_is_not_an_error(cell)
            tests[cell.metadata["nbgrader"]["grade_id"]] = _score(cell)
    return tests


def _child(solution_path: str, submission_path: str, out: Path, student: str, env: dict[str, str]) -> None:
    import nbformat

    start = time.monotonic()
    os.environ.update(env)
    import torch

    torch.set_num_threads(int(env["OMP_NUM_THREADS"]))  # as the grader's kernels: no two children fight for a core
    os.chdir(out / "work" / student)  # the notebook's folder, as the grader's kernel has
    solution = nbformat.read(solution_path, as_version=4)
    nb = graded_notebook(solution, nbformat.read(submission_path, as_version=4))
    tests = grade_here(nb)
    use = resource.getrusage(resource.RUSAGE_SELF)  # this child's own (fork starts it at zero)
    record = {"status": "ok", "seconds": round(time.monotonic() - start, 2),
              "cpu_seconds": round(use.ru_utime + use.ru_stime, 2), "tests": tests}
    (out / f"{student}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")


def _own_stdio(log: Path) -> None:
    """The child reads nothing and writes its stray output (C code, uncaptured prints) to ``log``,
    never into the runner's replies."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(null)
    os.close(fd)


def _die_with_parent() -> None:
    """Linux: the child is killed when the runner dies (a harness timeout kills only the runner)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(spec: dict[str, Any]) -> None:
    """Grade the submissions of one spec, ``workers`` at a time; a record per submission in ``out``."""
    out = Path(spec["out"])
    (out / "logs").mkdir(parents=True, exist_ok=True)
    workers, timeout = int(spec.get("workers", 2)), float(spec.get("timeout", 600))
    threads = str(spec.get("threads") or max(1, (os.cpu_count() or 1) // workers))  # default: the grader's rule
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **{str(k): str(v) for k, v in spec.get("env", {}).items()}}
    solution = str(Path(spec["solution"]).resolve())
    todo = [(s, str(Path(p).resolve())) for s, p in spec["submissions"].items()]
    running: dict[int, tuple[str, float]] = {}
    while todo or running:
        while todo and len(running) < workers:
            student, path = todo.pop(0)
            (out / "work" / student).mkdir(parents=True)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the child: grade, write the record, leave without running the parent's exit hooks
                code = 0
                try:
                    _die_with_parent()
                    _own_stdio(out / "logs" / f"{student}.txt")
                    _child(solution, path, out, student, env)
                except BaseException as exc:  # the record says why; the parent notices no record
                    print(f"{student}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    code = 1
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            running[pid] = (student, time.monotonic())
        time.sleep(0.05)
        for pid, (student, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            late = not done and time.monotonic() - started > timeout
            if late:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if done or late:
                del running[pid]
                shutil.rmtree(out / "work" / student, ignore_errors=True)
                record = out / f"{student}.json"
                if late or not record.exists():
                    why = "timeout" if late else "crashed"
                    record.write_text(json.dumps({"status": why, "seconds": round(time.monotonic() - started, 2),
                                                  "exit": None if late else os.waitstatus_to_exitcode(status),
                                                  "tests": {}}), encoding="utf-8")


def serve() -> None:
    """One spec per line on stdin; after each, one line ``{"done": out}`` on stdout. The imports are
    paid once for every spec (the harness keeps one server per pytest process)."""
    for line in sys.stdin:
        if line.strip():
            spec = json.loads(line)
            run(spec)
            print(json.dumps({"done": spec["out"]}), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/table_runner.py SPEC.json | --serve", file=sys.stderr)
        return 2
    warm()
    if argv[0] == "--serve":
        serve()
    else:
        run(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

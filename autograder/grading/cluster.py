"""Grading on a Dask cluster: ``python -m autograder grade ... --scheduler ADDRESS``.

One Dask task grades one student with :func:`autograder.grading.worker.grade_task`.
The submission and the instructor's source folder travel inside the task, and the
:class:`~autograder.grading.worker.Outcome` (result, feedback and autograded files,
gradebook snapshot) travels back, so a grading node needs only the kit installed at
the same commit: no shared file system, no copy of ``OUT`` or of the course folder.
The process that started the run (the client) stores each outcome as it arrives.

``ADDRESS`` is one of

- ``tcp://HOST:PORT`` (or any Dask address, or a bare ``HOST:PORT``): a running
  scheduler (``dask scheduler``, then ``dask worker tcp://HOST:PORT`` on each node);
- the path of a scheduler file (JSON with an ``address``, as written by
  ``dask scheduler --scheduler-file`` or ``Client.write_scheduler_file``);
- ``local`` or ``local:N``: a ``LocalCluster`` of N worker processes (default
  ``--workers``) on this machine, started for the run and closed after it.

Failures end up as rows, never as a stopped batch: Dask moves the tasks of a worker
that dies to other workers; a task it gives up on (``KilledWorker``: its workers died
too often) or that raises becomes an ``error`` row, and a task still running past
the whole-submission limit of the local pool is cancelled, its worker's process tree
killed (the nanny starts a fresh worker), and recorded as ``timeout``; if the
scheduler goes away, the students still out become ``error`` rows (the next run
grades them). At the start the run refuses workers with more than one thread or with
other kit sources than the client's.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.grading.options import REPO_ROOT, GradeOptions
from autograder.grading.worker import Outcome

POLL_SECONDS = 0.5          # how often finished tasks are collected
WATCH_SECONDS = 2.0         # how often running tasks are checked against the hard limit
IDLE_WARNING_SECONDS = 60.0
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")
_LOCAL = re.compile(r"^local(?::(\d+))?$")


@dataclass(frozen=True)
class SchedulerTarget:
    """Where ``--scheduler`` points: a ``LocalCluster`` of ``n_workers``, or an address
    (read from ``scheduler_file`` when one was given)."""

    kind: str                      # "local" | "address" | "file"
    address: str | None = None
    scheduler_file: Path | None = None
    n_workers: int | None = None

    def describe(self) -> str:
        if self.kind == "local":
            return f"a LocalCluster of {self.n_workers} worker process(es)"
        if self.kind == "file":
            return f"scheduler {self.address} (from scheduler file {self.scheduler_file})"
        return f"scheduler {self.address}"


def parse_scheduler(spec: str, default_workers: int = 1) -> SchedulerTarget:
    """``--scheduler`` text -> :class:`SchedulerTarget`; a clear ``GradingError`` when it is none of the forms."""
    from autograder.grading.batch import GradingError

    text = (spec or "").strip()
    if not text:
        raise GradingError("--scheduler is empty: give tcp://HOST:PORT, a scheduler file, or local[:N]")
    m = _LOCAL.match(text)
    if m:
        n = int(m.group(1)) if m.group(1) else default_workers
        if n < 1:
            raise GradingError(f"--scheduler {text}: a local cluster needs at least one worker")
        return SchedulerTarget("local", n_workers=n)
    if text.startswith("local:"):
        raise GradingError(f"--scheduler {text}: expected local or local:N with N a number of workers")
    if _SCHEME.match(text):
        return SchedulerTarget("address", address=text)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            address = json.loads(path.read_text(encoding="utf-8"))["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GradingError(f"--scheduler {text}: not a Dask scheduler file (JSON with an 'address'): {exc}") from None
        if not isinstance(address, str) or not address:
            raise GradingError(f"--scheduler {text}: the scheduler file has no usable 'address'")
        return SchedulerTarget("file", address=address, scheduler_file=path.resolve())
    if _HOST_PORT.match(text):
        return SchedulerTarget("address", address=f"tcp://{text}")
    raise GradingError(f"--scheduler {text}: no such scheduler file, and not an address "
                       "(expected tcp://HOST:PORT, a scheduler file, or local[:N])")


@contextmanager
def connect(target: SchedulerTarget) -> Iterator[Any]:
    """A ``distributed.Client`` for ``target`` (and the ``LocalCluster`` it starts), closed on exit.

    Connecting waits at most Dask's ``distributed.comm.timeouts.connect`` (30 s unless
    configured, e.g. ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).
    """
    from distributed import Client, LocalCluster

    from autograder.grading.batch import GradingError

    cluster = None
    try:
        if target.kind == "local":
            try:
                cluster = LocalCluster(n_workers=target.n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1")
            except Exception as exc:
                raise GradingError(f"could not start {target.describe()}: {type(exc).__name__}: {exc}") from None
            client = Client(cluster)
        else:
            try:
                client = Client(target.address)
            except (OSError, TimeoutError, ValueError) as exc:
                raise GradingError(f"could not reach the Dask {target.describe()}: {type(exc).__name__}: {exc}. "
                                   "Is `dask scheduler` running there, and reachable from this machine?") from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def check_scheduler(spec: str, default_workers: int = 1) -> SchedulerTarget:
    """Fail fast when ``--scheduler`` names no usable cluster (bad form, missing scheduler
    file, nobody answering): a ``GradingError`` in about the connect timeout, before any
    grading work. A ``local`` target is only parsed (it is started by the run)."""
    target = parse_scheduler(spec, default_workers)
    if target.kind != "local":
        with connect(target):
            pass
    return target


def kit_fingerprint() -> str:
    """sha256 over the kit's Python sources (``autograder/``, ``gan_utils/``), to spot a node
    that runs a different version of the grader or the references."""
    digest = hashlib.sha256()
    for package in ("autograder", "gan_utils"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def hard_limit(opts: GradeOptions) -> float:
    """Seconds one submission may take in all: the local pool's limit (per notebook the
    notebook limit plus start-up allowance, plus a minute)."""
    from autograder.grading.batch import STARTUP_ALLOWANCE

    notebooks = max(1, len(list(opts.assignment_source.glob("*.ipynb"))))
    return notebooks * (opts.timeout + STARTUP_ALLOWANCE) + 60


def _check_workers(client: Any, log: Callable[[str], None], expected: str | None = None) -> tuple[int, int]:
    """Workers now connected and their threads. Refuses workers with more than one thread
    (a grading process holds one kernel and one private course at a time) and workers
    whose kit differs from this one (``expected``, default :func:`kit_fingerprint` here)."""
    from autograder.grading.batch import GradingError

    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        log("dask: no worker connected yet; the submissions wait in the scheduler until one joins")
        return 0, 0
    threaded = sorted(f"{addr} ({w.get('nthreads')} threads)" for addr, w in workers.items() if w.get("nthreads") != 1)
    if threaded:
        raise GradingError("grading needs Dask workers with one thread each (one submission per worker process); "
                           "start them with `dask worker ADDRESS --nworkers K --nthreads 1`. Not so: "
                           + ", ".join(threaded))
    mine = expected or kit_fingerprint()
    theirs = client.run(kit_fingerprint, on_error="return")
    wrong = sorted(addr for addr, fp in theirs.items() if fp != mine)
    if wrong:
        why = {addr: (f"{type(theirs[addr]).__name__}: {theirs[addr]}" if isinstance(theirs[addr], Exception)
                      else "a different version of the kit") for addr in wrong}
        raise GradingError("these Dask workers cannot grade with this version of the kit (install the same "
                           "commit with `make setup` and restart them): "
                           + "; ".join(f"{a} ({w})" for a, w in why.items()))
    return len(workers), sum(w.get("nthreads", 1) for w in workers.values())


def _running(dask_scheduler: Any = None) -> dict[str, Any]:
    """On the scheduler: each executing task's worker and seconds running; the workers' addresses.

    Runs inside the scheduler process, sent by value (:func:`_by_value`): the scheduler needs no kit.
    """
    import time as _time

    now = _time.time()
    tasks = {}
    for ws in dask_scheduler.workers.values():
        for ts, seconds in ws.executing.items():
            tasks[ts.key] = (ws.address, seconds + max(0.0, now - ws.last_seen))
    return {"tasks": tasks, "workers": sorted(dask_scheduler.workers)}


def _end_process_tree(dask_worker: Any = None) -> int:
    """On a nanny (or on a worker that has none): SIGKILL the worker process and everything
    it started (the grading kernels). A nanny then starts a fresh worker. Sent by value
    (:func:`_by_value`). Returns the pid of the worker process."""
    import os as _os

    import psutil
    from distributed import Nanny

    pid = dask_worker.pid if isinstance(dask_worker, Nanny) else _os.getpid()
    root = psutil.Process(pid)
    for proc in root.children(recursive=True):
        try:
            proc.kill()
        except psutil.Error:
            pass
    root.kill()
    return pid


def _by_value(function: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``function`` that cloudpickle sends as code rather than as a name to
    import, so the scheduler or nanny that runs it needs no copy of this module."""
    return types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__)


def _stop_worker(client: Any, address: str, log: Callable[[str], None]) -> None:
    """Kill a worker stuck on a cancelled task (Dask cannot interrupt a running task)."""
    try:
        done = client.run(_by_value(_end_process_tree), workers=[address], nanny=True, on_error="return")
        if done and not any(isinstance(v, Exception) for v in done.values()):
            return
        log(f"dask: worker {address} has no nanny; stopping the worker process itself (it will not come back)")
        client.run(_by_value(_end_process_tree), workers=[address], on_error="return")
    except Exception as exc:  # the worker may be gone already
        log(f"dask: could not stop worker {address}: {type(exc).__name__}: {exc}")


def _reason(exc: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        last = getattr(getattr(exc, "last_worker", None), "address", "an unknown worker")
        return (f"the grading worker died while grading this submission ({exc.allowed_failures + 1} attempts, "
                f"the last on {last}); Dask gave up on it")
    text = str(exc).strip()
    return f"grader failure on the cluster: {type(exc).__name__}" + (f": {text.splitlines()[-1]}" if text else "")


def run_dask(opts: GradeOptions, todo: list[str], prints: dict[str, str], isolation: str | None,
             store: Callable[[str, Outcome], None],
             failure: Callable[[str, str, str, float], Outcome],
             log: Callable[[str], None]) -> None:
    """Grade ``todo`` on the Dask cluster named by ``opts.scheduler``; ``store`` each outcome as it arrives.

    ``prints`` maps each student to the fingerprint of their submission; ``isolation``
    is passed to every task (``None``: each node probes what it can do). ``failure``
    builds the outcome of a submission that could not be graded (student, status,
    message, seconds). Every student in ``todo`` is stored exactly once. Raises
    ``GradingError`` when the cluster cannot be reached or its workers run another
    version of the kit.
    """
    from autograder.grading.worker import grade_task, read_folder

    target = parse_scheduler(opts.scheduler or "", opts.workers)
    limit = hard_limit(opts)
    source = read_folder(opts.assignment_source)
    with connect(target) as client:
        n_workers, threads = _check_workers(client, log)
        where = target.describe() + (f" at {client.scheduler.address}" if target.kind == "local" else "")
        log(f"dask: {where}: {n_workers} worker(s), {threads} thread(s); "
            f"grading {len(todo)} submission(s), at most {limit:g} s each")
        tasks = {student: (grade_task, (opts, student, prints[student],
                                        read_folder(opts.submissions / student / opts.assignment), source, isolation))
                 for student in todo}
        grade_on(client, tasks, limit, store, failure, log, opts.out / "logs" / "cluster.log",
                 prefix=f"grade-{opts.assignment}")


def grade_on(client: Any, tasks: dict[str, tuple[Callable[..., Outcome], tuple]], limit: float,
             store: Callable[[str, Outcome], None], failure: Callable[[str, str, str, float], Outcome],
             log: Callable[[str], None], trace_log: Path, prefix: str = "grade") -> None:
    """Run ``tasks`` (student -> (function, arguments), the function returning an Outcome)
    on ``client``'s cluster, one Dask task each, and ``store`` one outcome per student.

    A task running longer than ``limit`` seconds is cancelled, its worker's process tree
    killed, and the student stored as ``timeout``; a task that raises or that Dask gives
    up on (``KilledWorker``) is stored as ``error``, with the traceback in ``trace_log``.
    """
    from distributed import as_completed

    trace_log.parent.mkdir(parents=True, exist_ok=True)
    known_workers = set(client.scheduler_info(n_workers=-1)["workers"])
    run_id = uuid.uuid4().hex[:8]
    students: dict[str, str] = {}        # task key -> student
    futures: dict[str, Any] = {}         # task key -> future, while not stored
    for student, (function, args) in tasks.items():
        key = f"{prefix}-{student}-{run_id}"  # unique per run: an earlier run's results never answer
        futures[key] = client.submit(function, *args, pure=False, key=key)
        students[key] = student
    elapsed: dict[str, float] = {}
    last_watch = last_busy = time.monotonic()
    done = as_completed(list(futures.values()))
    try:
        while futures:
            batch = done.next_batch(block=False)
            for fut in batch:
                if fut.key not in futures:
                    continue  # already stored (a timeout cancelled it)
                del futures[fut.key]
                student = students[fut.key]
                outcome = _collect(fut, student, elapsed.get(fut.key, 0.0), failure, trace_log, log)
                fut.release()
                store(student, outcome)
            now = time.monotonic()
            if batch:
                last_busy = now
            if futures and now - last_watch >= WATCH_SECONDS:
                last_watch = now
                try:
                    state = client.run_on_scheduler(_by_value(_running))
                except Exception as exc:  # the scheduler went away: Dask retries, then gives the tasks up
                    if client.status in ("closing", "closed"):
                        for key in list(futures):
                            futures.pop(key)
                            store(students[key], failure(students[key], "error",
                                                         "the connection to the Dask scheduler was lost",
                                                         elapsed.get(key, 0.0)))
                        break
                    log(f"dask: the scheduler does not answer ({type(exc).__name__}: {exc}); waiting")
                    time.sleep(POLL_SECONDS)
                    continue
                workers = set(state["workers"])
                for addr in sorted(known_workers - workers):
                    log(f"dask: worker {addr} left the cluster; its tasks go to other workers")
                for addr in sorted(workers - known_workers):
                    log(f"dask: worker {addr} joined")
                known_workers = workers
                running = {k: v for k, v in state["tasks"].items() if k in futures}
                if running or workers:
                    last_busy = now
                elif now - last_busy > IDLE_WARNING_SECONDS:
                    log(f"dask: no worker connected; {len(futures)} submission(s) waiting")
                    last_busy = now
                for key, (address, seconds) in running.items():
                    elapsed[key] = seconds
                    if seconds <= limit or futures[key].done():
                        continue
                    student = students[key]
                    fut = futures.pop(key)
                    fut.cancel()
                    log(f"dask: {student} still running after {seconds:.0f} s on {address}; stopping that worker")
                    _stop_worker(client, address, log)
                    store(student, failure(student, "timeout", f"grading took longer than {limit:g} s and was stopped",
                                           seconds))
            if not batch:
                time.sleep(POLL_SECONDS)
    finally:
        for fut in futures.values():
            fut.cancel()


def _collect(fut: Any, student: str, seconds: float, failure: Callable[[str, str, str, float], Outcome],
             trace_log: Path, log: Callable[[str], None]) -> Outcome:
    """The Outcome of a finished future, or a failure outcome saying why there is none."""
    if fut.status == "finished":
        try:
            outcome = fut.result()
        except Exception as exc:  # e.g. the result could not be unpickled here
            return _failed(student, exc, seconds, failure, trace_log, log)
        if isinstance(outcome, Outcome):
            return outcome
        return failure(student, "error", f"grader failure on the cluster: the task returned {type(outcome).__name__}",
                       seconds)
    if fut.status == "cancelled":
        return failure(student, "error", "the task was cancelled: the Dask scheduler went away or was restarted", seconds)
    try:
        exc = fut.exception()
        tb = fut.traceback()
    except Exception as err:
        exc, tb = err, None
    return _failed(student, exc, seconds, failure, trace_log, log, tb)


def _failed(student: str, exc: BaseException, seconds: float, failure: Callable[[str, str, str, float], Outcome],
            trace_log: Path, log: Callable[[str], None], tb: Any = None) -> Outcome:
    reason = _reason(exc)
    with open(trace_log, "a", encoding="utf-8") as f:
        f.write(f"--- {student}: {reason}\n")
        f.write("".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__)))
    log(f"dask: {student}: {reason} (details in {trace_log})")
    return failure(student, "error", reason, seconds)

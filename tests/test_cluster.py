"""Grading on a Dask cluster (``python -m autograder grade --scheduler ...``).

This file starts a real ``LocalCluster`` (two worker processes under nannies, on
loopback) and runs the grader as a subprocess against it, on a small class of
``example`` submissions built from the committed student notebook. The class is
graded on the cluster, where one worker is SIGKILLed while it grades: the cluster run
must still give every student the grade that ``CLASS`` expects. (The local pool is
held to the same grades for the same answers by ``tests/test_autograder.py``.) Then a re-run must regrade nothing and ``--force`` must regrade,
and a scheduler that is not there must be exit code 2 with a clear message. Small
task functions instead of real grading check that the hard limit stops a task as
``timeout``, that a task that raises or whose workers keep dying becomes an
``error`` row, and that multi-threaded workers are refused. Budget: under 2 minutes
on an idle 2-core machine, about 3 under heavy load.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from autograder.grading.batch import GradingError
from autograder.grading.cluster import SchedulerTarget, grade_on, parse_scheduler
from autograder.grading.options import REPO_ROOT
from autograder.grading.worker import Outcome

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

RELEASE = REPO_ROOT / "notebooks" / "example" / "example.ipynb"
LIMITS = ["--cell-timeout", "10", "--timeout", "25", "--memory-mb", "1536", "--max-output-kb", "256"]
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"
CORRECT = "def generator_loss(fake_logits):\n    return F.softplus(-fake_logits).mean()\n"

# student -> (answer cell source, or None for the untouched release; expected auto score, status)
CLASS = {
    "correct": (CORRECT, 3.0, "ok"),
    "wrong_sign": ("def generator_loss(fake_logits):\n    return F.softplus(fake_logits).mean()\n", 0.0, "ok"),
    "blank": (None, 0.0, "ok"),
    "cell_raises": (CORRECT + "raise RuntimeError('a stray line left in the answer cell')\n", 3.0, "ok"),
}
MAX_SCORE = 5.0  # 3 automatic points and 2 for the written answer, which waits for a person


def write_class(root: Path) -> None:
    base = nbformat.read(RELEASE, as_version=4)
    for student, (answer, _, _) in CLASS.items():
        nb = copy.deepcopy(base)
        if answer is not None:
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "generator_loss_answer")
            assert STUB in cell.source
            cell.source = answer
        folder = root / student / "example"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "example.ipynb")


def grade_cmd(subs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", "--assignment", "example", "--submissions", str(subs),
            "--out", str(out), "--course-root", str(out.parent / f"{out.name}-course"), *LIMITS, *extra]


def grader_env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""), **extra)


def run_grader(subs: Path, out: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(grade_cmd(subs, out, *extra), capture_output=True, text=True, env=grader_env(**env),
                          timeout=600)


def read_grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def grade_table(out: Path) -> dict[str, tuple[float, float, float, str]]:
    """student -> (score, auto_score, max_score, status) from ``OUT/grades.csv``."""
    return {s: (float(r["score"]), float(r["auto_score"]), float(r["max_score"]), r["status"])
            for s, r in read_grades(out).items()}


EXPECTED = {s: (auto, auto, MAX_SCORE, status) for s, (_, auto, status) in CLASS.items()}


def result_times(out: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (out / "results" / "example").glob("*.json")}


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster like ``--scheduler local:2``, with Dask giving a task up after 2 worker deaths."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1")
    client = Client(lc)
    try:
        yield lc, client
    finally:
        client.close()
        lc.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    write_class(root / "submissions")
    return root, root / "submissions"


def _executing(client) -> dict[str, tuple[str, float]]:
    from autograder.grading.cluster import _running

    return client.run_on_scheduler(_running)["tasks"]


@pytest.fixture(scope="module")
def on_cluster(corpus, cluster):
    """The class graded on the cluster (fresh OUT), one worker SIGKILLed while it grades."""
    root, subs = corpus
    lc, client = cluster
    out = root / "dask"
    proc = subprocess.Popen(grade_cmd(subs, out, "--scheduler", lc.scheduler_address), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=grader_env())
    killed, orphans = None, []
    deadline = time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        busy = [(k, addr) for k, (addr, seconds) in _executing(client).items()
                if k.startswith("grade-example-") and seconds >= 1.0]
        if busy:
            key, addr = busy[0]
            pid = client.run(os.getpid, workers=[addr])[addr]
            orphans = psutil.Process(pid).children(recursive=True)
            os.kill(pid, signal.SIGKILL)
            killed = {"key": key, "worker": addr, "pid": pid}
        else:
            time.sleep(0.2)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        for child in orphans:  # grading kernels the killed worker had started, if any outlived it
            try:
                child.kill()
            except psutil.Error:
                pass
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    return out, stdout, killed


@pytest.fixture(scope="module")
def reruns(corpus, cluster, on_cluster):
    """On the cluster's OUT: a plain re-run, then ``--force`` for one student."""
    _, subs = corpus
    address = cluster[0].scheduler_address
    out, _, _ = on_cluster
    before = {"csv": (out / "grades.csv").read_text(), "times": result_times(out)}
    again = run_grader(subs, out, "--scheduler", address)
    after = {"csv": (out / "grades.csv").read_text(), "times": result_times(out)}
    forced = run_grader(subs, out, "--scheduler", address, "--force", "--student", "correct")
    return out, before, again, after, forced, result_times(out)


def test_cluster_gives_every_student_the_expected_grade(on_cluster):
    out, stdout, _ = on_cluster
    table, rows = grade_table(out), read_grades(out)
    assert set(table) == set(CLASS), stdout
    for student, expected in EXPECTED.items():
        assert table[student] == expected, (student, rows[student]["message"])
        assert list((out / "feedback" / student / "example").glob("*.html")), f"no feedback for {student}"
    run = json.loads((out / "run.json").read_text())
    assert run["graded"] == len(CLASS) and run["scheduler"].startswith("tcp://127.0.0.1:")
    assert f"dask: scheduler {run['scheduler']}: 2 worker(s)" in stdout, stdout
    print(f"\ncluster run: {run['wall_seconds']} s for {len(CLASS)} submissions")


def test_killed_worker_loses_no_student(on_cluster):
    out, stdout, killed = on_cluster
    assert killed is not None, "no task was seen running: the worker was never killed"
    assert f"worker {killed['worker']} left the cluster" in stdout, stdout
    assert not psutil.pid_exists(killed["pid"])
    grades = read_grades(out)
    assert set(grades) == set(CLASS) and all(row["status"] == "ok" for row in grades.values()), stdout


def test_cluster_results_reach_the_course_gradebook(on_cluster):
    from nbgrader.api import Gradebook

    out, _, _ = on_cluster
    grades = read_grades(out)
    with Gradebook(f"sqlite:///{out.parent / 'dask-course' / 'gradebook.db'}") as gb:
        for student in CLASS:
            assert gb.find_submission("example", student).score == pytest.approx(float(grades[student]["score"]))


def test_a_task_needs_none_of_the_client_folders(corpus, cluster, on_cluster):
    """What a grading node gets is the task's bytes: the client's paths may not exist there."""
    from autograder.grading.options import GradeOptions
    from autograder.grading.worker import grade_task, read_folder

    root, subs = corpus
    _, client = cluster
    nowhere = root / "not-on-the-node"
    opts = GradeOptions(assignment="example", submissions=subs, out=root / "unused", cell_timeout=10, timeout=25,
                        memory_mb=1536, max_output_kb=256)
    remote = replace(opts, submissions=nowhere / "submissions", out=nowhere / "out", source_root=nowhere / "solutions",
                     course_root=nowhere / "course")
    fut = client.submit(grade_task, remote, "correct", "fp", read_folder(subs / "correct" / "example"),
                        read_folder(opts.assignment_source), None, pure=False)
    outcome = fut.result(timeout=180)
    assert isinstance(outcome, Outcome)
    assert (outcome.result["auto_score"], outcome.result["status"]) == (3.0, "ok"), outcome.result["message"]
    assert any(k.startswith("feedback/correct/example/") for k in outcome.files)
    assert not nowhere.exists()


def test_rerun_grades_nothing_and_keeps_the_csv(reruns):
    _, before, again, after, _, _ = reruns
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"graded 0, skipped {len(CLASS)}" in again.stdout, again.stdout
    assert after == before


def test_force_regrades(reruns):
    out, _, _, after, forced, times = reruns
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert "graded 1, skipped 0" in forced.stdout, forced.stdout  # --student: only "correct" is looked at
    assert times["correct"] > after["times"]["correct"]
    others = {s for s in CLASS if s != "correct"}
    assert {s: times[s] for s in others} == {s: after["times"][s] for s in others}
    assert grade_table(out) == EXPECTED


def test_missing_scheduler_is_exit_2(corpus, tmp_path):
    _, subs = corpus
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_grader(subs, tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}",
                      DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"could not reach the Dask scheduler tcp://127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_parse_scheduler_forms(tmp_path):
    assert parse_scheduler("local", 3) == SchedulerTarget("local", n_workers=3)
    assert parse_scheduler("local:2", 3) == SchedulerTarget("local", n_workers=2)
    assert parse_scheduler("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert parse_scheduler("lab-01.example.edu:8786").address == "tcp://lab-01.example.edu:8786"
    good = tmp_path / "scheduler.json"
    good.write_text(json.dumps({"type": "Scheduler", "address": "tcp://10.0.0.7:40123"}))
    target = parse_scheduler(str(good))
    assert (target.kind, target.address, target.scheduler_file) == ("file", "tcp://10.0.0.7:40123", good.resolve())
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    for spec, words in [("local:0", "at least one worker"), ("local:two", "local:N"), ("", "empty"),
                        (str(bad), "not a Dask scheduler file"), (str(tmp_path / "absent.json"), "no such scheduler file")]:
        with pytest.raises(GradingError, match=words):
            parse_scheduler(spec)


def test_workers_that_cannot_grade_are_refused():
    from distributed import Client, LocalCluster

    from autograder.grading.cluster import _check_workers, kit_fingerprint

    # in-process workers; the scheduler's HTTP server on a free loopback port (8787 may be taken)
    quiet = {"dashboard_address": "127.0.0.1:0", "processes": False, "n_workers": 1}
    with LocalCluster(threads_per_worker=2, **quiet) as lc, Client(lc) as client:
        with pytest.raises(GradingError, match="one thread each.*--nthreads 1"):
            _check_workers(client, print)
    with LocalCluster(threads_per_worker=1, **quiet) as lc, Client(lc) as client:
        assert _check_workers(client, print) == (1, 1)
        with pytest.raises(GradingError, match="make setup.*a different version of the kit"):
            _check_workers(client, print, expected="0" * len(kit_fingerprint()))


def _fake_outcome(student: str, status: str = "ok", message: str = "", seconds: float = 0.0) -> Outcome:
    return Outcome({"student_id": student, "status": status, "message": message, "seconds": seconds}, {}, None)


def _grade_fakes(client, tasks, limit, tmp_path):
    stored: dict[str, list[Outcome]] = {}
    lines: list[str] = []
    t0 = time.monotonic()
    grade_on(client, tasks, limit, lambda s, o: stored.setdefault(s, []).append(o),
             lambda s, status, msg, sec: _fake_outcome(s, status, msg, sec), lines.append, tmp_path / "cluster.log")
    return stored, lines, time.monotonic() - t0


def test_hard_limit_stops_a_task_and_records_timeout(cluster, tmp_path):
    _, client = cluster

    def sleeps(student, seconds):
        import time as _time

        from autograder.grading.worker import Outcome as _Outcome

        _time.sleep(seconds)
        return _Outcome({"student_id": student, "status": "ok"}, {}, None)

    def quick(student):
        from autograder.grading.worker import Outcome as _Outcome

        return _Outcome({"student_id": student, "status": "ok"}, {"feedback/x.html": b"<p>ok</p>"}, None)

    def raises(student):
        raise ValueError(f"grader bug for {student}")

    client.wait_for_workers(2, timeout=120)
    stored, lines, seconds = _grade_fakes(client, {"sleeper": (sleeps, ("sleeper", 120)), "quick": (quick, ("quick",)),
                                                   "buggy": (raises, ("buggy",))}, 4.0, tmp_path)
    assert sorted(stored) == ["buggy", "quick", "sleeper"] and all(len(v) == 1 for v in stored.values())
    assert stored["sleeper"][0].result["status"] == "timeout"
    assert "longer than 4 s" in stored["sleeper"][0].result["message"]
    assert stored["quick"][0].files == {"feedback/x.html": b"<p>ok</p>"}
    buggy = stored["buggy"][0].result
    assert buggy["status"] == "error" and "ValueError: grader bug for buggy" in buggy["message"]
    assert "grader bug for buggy" in (tmp_path / "cluster.log").read_text()
    assert seconds < 60, f"the stuck task was not stopped promptly ({seconds:.0f} s)"
    assert any("sleeper still running" in line for line in lines), lines
    client.wait_for_workers(2, timeout=120)  # the nanny replaced the stopped worker


def test_task_whose_workers_keep_dying_is_an_error_row(cluster, tmp_path):
    _, client = cluster

    def dies(student):
        import os as _os

        _os._exit(3)

    client.wait_for_workers(2, timeout=120)
    stored, _, _ = _grade_fakes(client, {"crasher": (dies, ("crasher",))}, 600.0, tmp_path)
    result = stored["crasher"][0].result
    assert result["status"] == "error" and "worker died" in result["message"] and "2 attempts" in result["message"]
    client.wait_for_workers(2, timeout=120)

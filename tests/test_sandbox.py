"""The kernel launcher for real, in every isolation mode this machine supports.

Modes: ``namespaces`` (the grader is root), ``bwrap`` run by this test's user,
``bwrap`` run by an unprivileged user (``nobody``; when this test runs as root, in a
private mount namespace where the interpreter under ``/root`` is reachable), and
``none``. Inside each, a small Python program tries to read a hidden folder and the
instructor's solutions, to write outside its folder, counts the processes it sees
and allocates past its memory cap; then the launcher's parent is killed and the
kernel must die with it. ``none`` is the control: it must see what the others hide.
A real kernel is interrupted under bwrap, and the ``example`` assignment is graded
in bwrap mode. Budget: ~60 s.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_autograder import LIMITS, read_grades, write_corpus

from autograder.grading import sandbox
from autograder.grading.options import REPO_ROOT

SOLUTION = REPO_ROOT / "solutions" / "example" / "example.ipynb"
NOBODY = sandbox.NOBODY
VENV_BIN = os.path.dirname(sys.executable)


def _blocked_ancestor(path: str) -> str | None:
    """The first ancestor of ``path`` that other users cannot enter (``/root``), if any."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        ancestor = "/" + "/".join(parts[:i])
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


@functools.cache
def nobody_prefix() -> tuple[list[str] | None, str]:
    """A command prefix that runs a command as ``nobody`` with this interpreter reachable.

    Running as root: a private mount namespace (``unshare``) where each blocked
    ancestor of the interpreter (``/root`` above ``/root/.pyenv``) is an empty tmpfs
    with the interpreter bound back, then ``setpriv`` to uid/gid 65534 with no
    groups. The command is an unprivileged process of the host in every other way.
    Returns ``(prefix, "")`` or ``(None, why not)``.
    """
    if os.geteuid() != 0:
        return None, "this test already runs as an unprivileged user"
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        return None, "needs util-linux's unshare and setpriv"
    needed = [p for p in sandbox.interpreter_paths() if _blocked_ancestor(p)]
    blocked = sorted({_blocked_ancestor(p) for p in needed})
    lines = ["set -e"]
    for i, path in enumerate(needed):
        lines.append(f'd{i}=$(mktemp -d); mount --rbind "{path}" "$d{i}"')
    lines += [f'mount -t tmpfs -o mode=0755,size=64k tmpfs "{b}"' for b in blocked]
    for i, path in enumerate(needed):
        lines.append(f'mkdir -p "{path}"; mount --move "$d{i}" "{path}"; rmdir "$d{i}"')
    lines.append(f'exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- "$@"')
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), "sh"]
    try:
        proc = subprocess.run([*prefix, sys.executable, "-c", "import os; print(os.getuid())"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot run a command as nobody: {exc}"
    if proc.stdout.strip() != str(NOBODY):
        return None, f"cannot run a command as nobody: {proc.stderr.strip()[-300:]}"
    return prefix, ""


@dataclass
class Case:
    mode: str
    prefix: list[str]  # runs the launcher as another user (empty: as this test's user)
    kernel_uid: int


def _case(name: str) -> Case:
    if name == "namespaces":
        reason = sandbox.why_not("namespaces")
        if reason:
            pytest.skip(f"namespaces mode does not work here: {reason}")
        return Case("namespaces", [], NOBODY)
    if name == "none":
        return Case("none", [], os.getuid())
    reason = sandbox.why_not("bwrap")
    if reason:
        pytest.skip(f"bwrap mode does not work here: {reason}")
    if name == "bwrap":
        return Case("bwrap", [], os.getuid())
    prefix, why = nobody_prefix()
    if prefix is None:
        pytest.skip(why)
    probe = subprocess.run([*prefix, sys.executable, "-m", "autograder.grading.sandbox", "--probe", "bwrap"],
                           capture_output=True, text=True, timeout=60, cwd="/")
    if probe.returncode != 0:
        pytest.skip(f"bwrap does not work for nobody here: {probe.stderr.strip()[-300:]}")
    return Case("bwrap", prefix, NOBODY)


CASES = ["namespaces", "bwrap", "bwrap_unprivileged", "none"]


@pytest.fixture
def place():
    """A folder outside every cover (``/tmp`` is not scratch in these specs) that every user can enter."""
    base = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _spec(place: Path, case: Case, **extra) -> tuple[Path, Path]:
    """Work folder, secret folder, a world-writable folder outside, and the spec file."""
    work, secret, outside = place / "work", place / "secret", place / "outside"
    for folder in (work, secret, outside):
        folder.mkdir()
    (secret / "answers.txt").write_text("42")
    outside.chmod(0o777)
    os.chown(work, case.kernel_uid, -1)
    spec = {"isolate": case.mode, "cwd": str(work), "hide": [str(secret)], "uid": NOBODY, "gid": NOBODY,
            "masks": [str(REPO_ROOT), str(Path.home())], "scratch": ["/var/tmp", "/dev/shm"],
            "expose": [*sandbox.interpreter_paths(), str(REPO_ROOT / "autograder"), str(work)], **extra}
    path = place / "spec.json"
    path.write_text(json.dumps(spec))
    path.chmod(0o644)
    return work, path


PROBE = """
import json, os, sys
secret, solution, outside, scratch, port = sys.argv[1:6]
import socket
def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        return True
    except OSError:
        return False
def can_read(path):
    try:
        return bool(open(path, "rb").read(1))
    except OSError:
        return False
def can_write(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
try:
    block = bytearray(1024 ** 3)  # past a 512 MiB RLIMIT_DATA
    memory = "allocated"
except MemoryError:
    memory = "MemoryError"
try:
    with open("big.bin", "wb") as f:
        f.write(bytes(2 * 1024 ** 2))  # past a 1 MiB RLIMIT_FSIZE
    fsize = "written"
except OSError as exc:
    fsize = exc.strerror
import resource
print(json.dumps({"uid": os.getuid(), "secret": can_read(secret), "solution": can_read(solution),
                  "outside": can_write(outside), "scratch": can_write(scratch), "own": can_write("own.txt"),
                  "pids": len([p for p in os.listdir("/proc") if p.isdigit()]), "memory": memory, "fsize": fsize,
                  "core": resource.getrlimit(resource.RLIMIT_CORE), "network": can_connect(port)}))
"""


@pytest.mark.parametrize("name", CASES)
def test_private_view_and_limits(name, place):
    case = _case(name)
    work, spec = _spec(place, case, memory_mb=512, fsize_mb=1)
    token = uuid.uuid4().hex
    scratch = Path("/var/tmp") / f"sandbox-{token}"
    cmd = [*case.prefix, sys.executable, "-m", "autograder.grading.sandbox", str(spec), "--", sys.executable, "-c",
           PROBE, str(place / "secret" / "answers.txt"), str(SOLUTION), str(place / "outside" / "x.txt"), str(scratch)]
    server = socket.create_server(("127.0.0.1", 0))  # a loopback service, as a gradebook server would be
    cmd.append(str(server.getsockname()[1]))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
        seen = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
        assert proc.returncode == 0 and seen, proc.stderr[-2000:]
        assert (seen["memory"], seen["fsize"], seen["core"]) == ("MemoryError", "File too large", [0, 0]), seen
        assert seen["own"] and (work / "own.txt").read_text() == "x"
        if case.mode == "none":  # the control: the same program sees everything without isolation
            assert seen["secret"] and seen["solution"] and seen["outside"] and seen["network"], seen
            return
        assert seen["uid"] == case.kernel_uid
        assert not seen["secret"], "a hidden folder was readable"
        assert not seen["solution"], "the instructor's solutions were readable"
        assert not seen["outside"] and not (place / "outside" / "x.txt").exists(), "it wrote outside its folder"
        assert seen["scratch"] and not scratch.exists(), "its scratch folder must be private"
        assert seen["pids"] <= 3, f"it sees {seen['pids']} processes"
        assert not seen["network"], "it reached a service on the grader's loopback"
    finally:
        server.close()
        scratch.unlink(missing_ok=True)


def _processes_with(token: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("name", CASES)
def test_kernel_dies_with_its_parent(name, place):
    case = _case(name)
    work, spec = _spec(place, case)
    token = f"kernel-{uuid.uuid4().hex}"
    kernel = f"open('started', 'w').close()\nimport time\ntime.sleep(120)  # {token}"
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-m", "autograder.grading.sandbox", {str(spec)!r}, "--",
                          sys.executable, "-c", {kernel!r}])
        time.sleep(120)
    """)
    proc = subprocess.Popen([*case.prefix, sys.executable, "-c", parent], cwd="/")
    try:
        deadline = time.monotonic() + 30
        while not (work / "started").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the kernel did not start"
            time.sleep(0.05)
        assert _processes_with(token), "the kernel process is not visible from here"
        proc.kill()  # the parent (the grader) dies without cleaning up
        proc.wait()
        deadline = time.monotonic() + 10
        while _processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _processes_with(token), "the kernel outlived its parent"
    finally:
        proc.kill()
        for pid in _processes_with(token):
            os.kill(pid, signal.SIGKILL)


INTERRUPT = """
import json, sys
from jupyter_client import KernelManager

spec, work = sys.argv[1:3]

class Sandboxed(KernelManager):
    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return [sys.executable, "-m", "autograder.grading.sandbox", spec, "--", sys.executable, *cmd[1:]]

# Unix sockets, as the grader's kernels use (the sandboxed kernel has no network)
km = Sandboxed(kernel_name="python3", connection_file=work + "/.kernel.json", transport="ipc", ip=work + "/kernel-ipc")
km.start_kernel(cwd=work, extra_arguments=["--HistoryManager.hist_file=:memory:"])
kc = km.client()
kc.start_channels()
kc.wait_for_ready(timeout=60)

def run(code, interrupt_after=None):
    # stop_on_error=False, as the grader sends (nbgrader's allow_errors): with the default the
    # kernel aborts requests that reach it just after an error, and under load the second can
    msg_id = kc.execute(code, stop_on_error=False)
    if interrupt_after is not None:
        import time
        time.sleep(interrupt_after)
        km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=30)
    return reply["content"]

first = run("import time\\nfor _ in range(600):\\n    time.sleep(0.1)", interrupt_after=2.0)
second = run("open('after.txt', 'w').write(str(6 * 7))")
alive = km.is_alive()
kc.stop_channels()
km.shutdown_kernel(now=True)
print(json.dumps({"first": first.get("ename"), "second": second["status"], "alive": alive}))
"""


def test_interrupt_reaches_the_kernel_under_bwrap(place):
    case = _case("bwrap_unprivileged") if os.geteuid() == 0 and nobody_prefix()[0] else _case("bwrap")
    work, spec = _spec(place, case)
    env = dict(os.environ, HOME=str(work), JUPYTER_RUNTIME_DIR=str(work / ".runtime"), IPYTHONDIR=str(work / ".ipython"))
    proc = subprocess.run([*case.prefix, sys.executable, "-c", INTERRUPT, str(spec), str(work)],
                          capture_output=True, text=True, timeout=120, cwd="/", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"first": "KeyboardInterrupt", "second": "ok", "alive": True}, seen
    assert (work / "after.txt").read_text() == "42"


def test_probe_names_the_mode_and_refuses_what_does_not_work(tmp_path):
    probe = [sys.executable, "-m", "autograder.grading.sandbox", "--probe"]
    proc = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    best = sandbox.probe_mode()
    assert proc.stdout.strip() == best and proc.returncode == (0 if best != "none" else 1), proc.stderr
    if sandbox.why_not("namespaces") is None:  # the strongest that works is chosen
        assert best == "namespaces"
    elif sandbox.why_not("bwrap") is None:
        assert best == "bwrap" and "namespaces: " in proc.stderr  # and it says why not the stronger one
    no_bwrap = dict(os.environ, PATH=VENV_BIN)  # a machine without bubblewrap
    proc = subprocess.run([*probe, "bwrap"], capture_output=True, text=True, timeout=60, env=no_bwrap)
    assert proc.returncode == 1 and proc.stdout == "" and "bwrap is not installed" in proc.stderr
    forced = subprocess.run(probe, capture_output=True, text=True, timeout=60,
                            env=dict(no_bwrap, AUTOGRADER_ISOLATION="bwrap"))
    assert forced.returncode == 1 and "'bwrap' does not work here" in forced.stderr
    bad = subprocess.run([*probe, "chroot"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "unknown isolation mode 'chroot'" in bad.stderr
    assert sandbox.require_mode(False) == "none" and sandbox.mode_name(True) == "namespaces"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a venv that nobody cannot read")
def test_probe_says_when_python_is_not_readable(tmp_path):
    if sandbox.why_not("namespaces"):
        pytest.skip(f"namespaces mode does not work here: {sandbox.why_not('namespaces')}")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    venv.chmod(0o700)  # nobody cannot read the venv (its pyvenv.cfg, its site-packages)
    proc = subprocess.run([str(venv / "bin" / "python"), str(Path(sandbox.__file__)), "--probe", "namespaces"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'namespaces' does not work here" in proc.stderr and "nobody" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _grade_as(case: Case, place: Path) -> tuple[subprocess.CompletedProcess, Path]:
    subs, out, course, home = (place / n for n in ("submissions", "out", "course", "home"))
    write_corpus(subs, {"correct", "read_hidden"})
    for folder in (subs, out, course, home):
        folder.mkdir(exist_ok=True)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, case.kernel_uid, -1)
    env = dict(os.environ, HOME=str(home), PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    env.pop("JUPYTER_RUNTIME_DIR", None)
    if not case.prefix:  # run as this test's user: ask for bwrap (root would get namespaces)
        env["AUTOGRADER_ISOLATION"] = "bwrap"
    cmd = [*case.prefix, sys.executable, "-m", "autograder", "grade", "--assignment", "example",
           "--submissions", str(subs), "--out", str(out), "--course-root", str(course), *LIMITS, "--workers", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(home), env=env), out


def test_grading_in_bwrap_mode(place):
    unprivileged = os.geteuid() == 0 and nobody_prefix()[0] is not None
    case = _case("bwrap_unprivileged" if unprivileged else "bwrap")
    proc, out = _grade_as(case, place)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["isolation"] == "bwrap" and run["isolated_kernels"] is True, run
    grades = read_grades(out)
    assert grades["correct"]["status"] == "ok", grades["correct"]
    assert float(grades["correct"]["auto_score"]) == float(grades["correct"]["auto_max_score"]) == 3.0
    nb = json.loads((out / "autograded" / "read_hidden" / "example" / "example.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert "nothing found" in text and "HIDDEN-FOUND" not in text, text[:2000]

"""Kernel launcher: resource limits and a private view of the file system.

Run as ``python -m autograder.grading.sandbox SPEC.json -- KERNEL_CMD...``. The
launcher caps the kernel's memory with ``RLIMIT_DATA`` (heap and private mappings;
the address space is left alone because the CUDA build of torch maps several GB),
file size with ``RLIMIT_FSIZE`` and core dumps with ``RLIMIT_CORE``, asks the OS to
kill the kernel when the grader dies (``PR_SET_PDEATHSIG``), and then starts the
kernel in ``spec["cwd"]`` in one of three isolation modes (``spec["isolate"]``):

- ``"namespaces"`` (the grader runs as root): new mount, PID and network namespaces made by
  this module, the private view below, and the kernel runs as an unprivileged user
  (``spec["uid"]``, no new privileges): it cannot undo the mounts, write to the
  course files or signal the grader. Process tree: launcher (waits, exits with the
  kernel's status) -> init (PID 1 of the namespace, reaps) -> kernel.
- ``"bwrap"`` (any user, where unprivileged user namespaces are allowed): the same
  private view built by bubblewrap from the same spec lists; the kernel runs as the
  invoking user, in new user, PID, IPC and network namespaces (no further user namespaces
  where bwrap can forbid them). Process tree: bwrap (this process, exec'd) ->
  bwrap's init (PID 1) -> kernel.
- ``"none"``: limits only; the kernel replaces the launcher.

The private view (:func:`plan_view`): every file system is read-only except the
kernel's folder and empty private ``/tmp``, ``/var/tmp`` and ``/dev/shm``; the
course repository shows only the packages the kernel imports (no solutions, tests
or git history), home folders are empty, submissions and results are hidden, and
``/proc`` shows only the kernel's own processes. The kernel gets a network namespace
of its own (loopback only, down): it talks to the grader over Unix sockets in its own
folder (see ``executor.start_kernel``) and cannot reach services on the grading
machine (a course gradebook server, Jupyter, a Dask scheduler) or beyond. No new
session is started, so
jupyter_client's interrupt (SIGINT to the kernel's process group) still reaches the
kernel; the launcher and bwrap ignore it. The kernel has no controlling terminal
(jupyter_client starts it in a new session), so it cannot push input into one.

``python -m autograder.grading.sandbox --probe [MODE]`` test-runs the modes (or
only ``MODE``), prints the one kernels get here and exits 0 unless it is ``none``.
``AUTOGRADER_ISOLATION=MODE`` asks for a mode instead of the strongest that works.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import json
import os
import pwd
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

MODES: tuple[str, ...] = ("namespaces", "bwrap", "none")  # strongest first
ENV_MODE = "AUTOGRADER_ISOLATION"
REPO_ROOT = Path(__file__).resolve().parents[2]
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096
MS_REC = 1 << 14
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534
SCRATCH_BYTES = 256 * 1024 * 1024
SETUP_FAILED, EXEC_FAILED = 121, 122  # launcher exit codes: the kernel never started

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationUnavailable(RuntimeError):
    """The isolation mode asked for does not work on this machine (the message says why)."""


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {target}")


def set_pdeathsig() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def apply_limits(memory_mb: int | None, fsize_mb: int | None, nproc: int | None = None) -> None:
    """Set RLIMIT_DATA / RLIMIT_FSIZE (MiB) and RLIMIT_NPROC (``None`` = unchanged); no core dumps."""
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if fsize_mb:
        limit = int(fsize_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def mode_name(isolate: object) -> str:
    """The mode named by a spec's or an option's ``isolate`` value.

    ``True`` (older specs) means ``"namespaces"``; ``False`` / ``None`` mean ``"none"``.
    """
    if isolate is True:
        return "namespaces"
    if isolate is False or isolate is None:
        return "none"
    if isinstance(isolate, str) and isolate.strip().lower() in MODES:
        return isolate.strip().lower()
    raise ValueError(f"unknown isolation mode {isolate!r}: expected one of {', '.join(MODES)}")


# -- the private view -------------------------------------------------------------------
def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class View:
    """What the kernel sees, in mount order.

    ``covers``: (folder, writable) replaced by an empty tmpfs, outermost first;
    ``expose``: folders bound back at their own path on top of the covers;
    ``workdir``: the kernel's folder, the one writable place besides the scratch covers;
    ``hide``: folders covered by an empty read-only tmpfs last.
    """

    covers: tuple[tuple[str, bool], ...]
    expose: tuple[str, ...]
    workdir: str | None
    hide: tuple[str, ...]

    def visible(self, path: str) -> bool:
        """Whether ``path`` (a host folder) would show through the covers."""
        best: tuple[int, int] = (-1, 1)
        for cover, _ in self.covers:
            if _under(path, cover):
                best = max(best, (len(cover), 0))
        for folder in (*self.expose, *([self.workdir] if self.workdir else [])):
            if _under(path, folder):
                best = max(best, (len(folder), 1))
        return best[1] == 1 and os.path.isdir(path)


def plan_view(spec: dict, other_user: bool) -> View:
    """The view of ``spec`` (lists ``masks``, ``scratch``, ``expose``, ``hide``; ``cwd``).

    - ``masks``: folders replaced by an empty read-only tmpfs (the course repository,
      home folders). With ``other_user`` (the kernel runs as another user) any
      ancestor of an exposed path that others cannot enter (``/root`` above
      ``/root/.pyenv``) is masked too, so the exposed folder stays reachable;
    - ``scratch``: folders replaced by an empty writable tmpfs (``/tmp``, ``/dev/shm``),
      so files other processes left there are out of reach;
    - ``expose``: folders bound back (Python, the virtual environment, the course
      packages, the kernel's folder);
    - ``hide``: folders covered by an empty read-only tmpfs (submissions, results).
    """
    expose = list(dict.fromkeys(os.path.realpath(p) for p in spec.get("expose") or [] if os.path.isdir(p)))
    masks = [os.path.realpath(m) for m in spec.get("masks") or [] if os.path.isdir(m) and os.path.realpath(m) != "/"]
    if other_user:
        for path in expose:
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                ancestor = "/" + "/".join(parts[:i])
                if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                    masks.append(ancestor)
                    break
    else:  # the invoking user's own runtime folder (session bus, agents) stays out of reach
        runtime = (os.environ.get("XDG_RUNTIME_DIR"), f"/run/user/{os.getuid()}")
        masks += [os.path.realpath(p) for p in runtime if p and os.path.isdir(p) and os.path.realpath(p) != "/"]
    scratch = [os.path.realpath(t) for t in spec.get("scratch") or [] if os.path.isdir(t)]
    # a folder that is both (a home folder at /tmp) stays writable scratch
    covers = sorted({(m, False) for m in masks if m not in scratch} | {(t, True) for t in scratch},
                    key=lambda c: (len(c[0]), c))
    cwd = os.path.realpath(spec["cwd"]) if spec.get("cwd") else None
    hide = tuple(dict.fromkeys(os.path.realpath(h) for h in spec.get("hide") or []))
    return View(tuple(covers), tuple(expose), cwd, hide)


_KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
               (os.ST_NOATIME, 1 << 10), (os.ST_NODIRATIME, 1 << 11), (os.ST_RELATIME, 1 << 21))


def _mount_flags(path: str) -> int:
    """The per-mount flags of ``path`` that a remount must keep (nosuid, nodev, noexec, atime)."""
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _KEPT_FLAGS if flags & st)


def _read_only_tree() -> None:
    """Every mount of this (private) namespace read-only: the kernel writes only where the view says."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in f]
    for point in dict.fromkeys(points):
        try:
            _mount("none", point, "", MS_REMOUNT | MS_BIND | MS_RDONLY | _mount_flags(point))
        except OSError:
            if point == "/":
                raise


def _private_view(view: View) -> None:
    """Mount ``view`` in this process's (new, private) mount namespace; needs root.

    Everything is made read-only first; the covers are fresh tmpfs mounts, the exposed
    folders bound back read-only, the kernel's folder read-write.
    """
    exposed = [p for p in view.expose if p != view.workdir and any(_under(p, c) for c, _ in view.covers)]
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in [*exposed, *filter(None, [view.workdir])]}
    _read_only_tree()
    for path, writable in view.covers:
        mode = f"size={SCRATCH_BYTES},mode=1777" if writable else "size=64k,mode=0755"
        # a cover inside an earlier one (a repository checked out under /tmp) must be
        # recreated in the fresh tmpfs before it can be mounted on
        os.makedirs(path, exist_ok=True)
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, mode)
    for path in fds:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fds[path]}", path, "", MS_BIND | MS_REC)
    if view.workdir:
        _mount("none", view.workdir, "", MS_REMOUNT | MS_BIND | _mount_flags(view.workdir))
    for path, writable in view.covers:
        if not writable:
            _mount("none", path, "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in fds.values():
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for path in view.hide:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")


@functools.cache
def _bwrap_options(bwrap: str) -> frozenset[str]:
    """Options this bwrap knows (``--disable-userns`` and ``--size`` are recent)."""
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(word for line in text.splitlines() for word in line.split()[:1] if word.startswith("--"))


def bwrap_command(spec: dict, cmd: list[str], bwrap: str) -> list[str]:
    """The bwrap command line that runs ``cmd`` in the private view of ``spec``.

    The host's ``/`` is bound read-only, ``/dev`` is a fresh one with the host's GPU
    devices (NVIDIA, DRI, ROCm) bound in; then the covers, the exposed folders (read-only, the kernel's folder read-write)
    and the hidden ones, in the order of :func:`plan_view`.
    """
    view = plan_view(spec, other_user=False)
    known = _bwrap_options(bwrap)
    # no network: the kernel talks to the grader over Unix sockets in its own folder, and
    # must not reach loopback services (a course gradebook server, Jupyter, a Dask scheduler)
    args = [bwrap, "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net"]
    if "--disable-userns" in known:
        args.append("--disable-userns")
    # a fresh /dev (no host terminals) with the GPUs of the host in it
    args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for device in sorted(glob.glob("/dev/nvidia*")) + [p for p in ("/dev/dri", "/dev/kfd") if os.path.exists(p)]:
        args += ["--dev-bind", device, device]
    size = "--size" in known
    for path, writable in view.covers:
        args += ["--perms", "1777" if writable else "0755"]
        args += ["--size", str(SCRATCH_BYTES if writable else 64 * 1024)] if size else []
        args += ["--tmpfs", path]
    for path in view.expose:
        if path != view.workdir and any(_under(path, c) for c, _ in view.covers):
            args += ["--ro-bind", path, path]
    if view.workdir:
        args += ["--bind", view.workdir, view.workdir, "--chdir", view.workdir]
    args += [a for path, writable in view.covers if not writable for a in ("--remount-ro", path)]
    for path in view.hide:
        if view.visible(path):
            args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    return [*args, "--", *cmd]


# -- launching --------------------------------------------------------------------------
def _exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _init_loop(child: int) -> None:
    """PID 1 of the namespace: reap everything, exit with the kernel's status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == child:
            os._exit(_exit_status(status))


def _drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _exec_kernel(spec: dict, cmd: list[str], drop: bool) -> None:
    if drop:
        uid, gid = int(spec.get("uid", NOBODY)), int(spec.get("gid", NOBODY))
        if "-f" in cmd[:-1]:  # the kernel must read its connection file after dropping root
            os.chown(cmd[cmd.index("-f") + 1], uid, gid)
        _drop_privileges(uid, gid)
    os.chdir(spec.get("cwd") or "/")
    set_pdeathsig()
    os.execvp(cmd[0], cmd)


def _fail(message: str, code: int) -> NoReturn:
    print(f"autograder sandbox: {message}", file=sys.stderr, flush=True)
    os._exit(code)


def _launch_bwrap(spec: dict, cmd: list[str]) -> None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        _fail("isolation mode 'bwrap' asked for, but bwrap is not installed (apt-get install bubblewrap)", SETUP_FAILED)
    try:
        args = bwrap_command(spec, cmd, bwrap)
    except OSError as exc:
        _fail(f"cannot plan the private view: {exc}", SETUP_FAILED)
    # bwrap and its init share the kernel's process group: the interrupt is for the kernel
    # alone (ipykernel installs its own SIGINT handler while it runs a cell)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.execv(bwrap, args)
    except OSError as exc:
        _fail(f"cannot run {bwrap}: {exc}", EXEC_FAILED)


def launch(spec: dict, cmd: list[str]) -> None:
    """Apply the spec and replace this process by the kernel (or supervise it)."""
    mode = mode_name(spec.get("isolate"))
    apply_limits(spec.get("memory_mb"), spec.get("fsize_mb"), spec.get("nproc"))
    set_pdeathsig()
    if mode == "none":
        _exec_kernel(spec, cmd, drop=False)
    # The kernel's parent will be PID 1 of its namespace, which ipykernel's parent poller
    # reads as "the frontend died"; PR_SET_PDEATHSIG / --die-with-parent cover that case.
    os.environ.pop("JPY_PARENT_PID", None)
    if mode == "bwrap":
        _launch_bwrap(spec, cmd)
    # a network namespace of its own (loopback only, down): see bwrap_command
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET), "unshare")
    init = os.fork()
    if init == 0:  # PID 1 in the new namespace
        set_pdeathsig()
        try:
            _mount("none", "/", "", MS_REC | MS_PRIVATE)
            _private_view(plan_view(spec, other_user=True))
        except OSError as exc:  # never run a kernel that could see the hidden paths
            _fail(f"cannot build the private view: {exc}", SETUP_FAILED)
        kernel = os.fork()
        if kernel == 0:
            try:
                _exec_kernel(spec, cmd, drop=True)
            except OSError as exc:
                _fail(f"cannot start the kernel {cmd[0]} as uid {spec.get('uid', NOBODY)}: {exc}", EXEC_FAILED)
            finally:
                os._exit(EXEC_FAILED)
        _init_loop(kernel)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: None)
    while True:
        try:
            _, status = os.waitpid(init, 0)
            break
        except InterruptedError:
            continue
    os._exit(_exit_status(status))


# -- probing ----------------------------------------------------------------------------
def interpreter_paths() -> list[str]:
    """Folders a kernel of this interpreter needs: the base Python, the venv, the binary's folder."""
    paths = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


_PROBE_KERNEL = """
import importlib.util, json, os, sys
secret = sys.argv[1]
try:
    leaked = os.listdir(secret)
except OSError:
    leaked = []
open("probe.txt", "w").write("ok")
print(json.dumps({"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                  "leaked": leaked, "repo": sorted(os.listdir(sys.argv[2])),
                  "ipykernel": importlib.util.find_spec("ipykernel") is not None}))
"""


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _why_not(mode: str) -> str | None:
    """Test-run a small Python program as a kernel in ``mode``; ``None`` when it worked, else why not."""
    if mode == "none":
        return None
    if mode == "namespaces" and os.geteuid() != 0:
        return "private namespaces made by the grader need root"
    if mode == "bwrap" and shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    base = Path(tempfile.mkdtemp(prefix="autograder-probe-"))
    try:
        work, secret = base / "work", base / "secret"
        work.mkdir()
        secret.mkdir()
        (secret / "answers.txt").write_text("hidden")
        if mode == "namespaces":
            base.chmod(0o711)
            os.chown(work, NOBODY, NOBODY)
        spec = {"isolate": mode, "cwd": str(work), "hide": [str(secret)], "uid": NOBODY, "gid": NOBODY,
                "masks": [str(REPO_ROOT), str(Path.home())], "scratch": ["/tmp", "/dev/shm"],
                "expose": [*interpreter_paths(), str(REPO_ROOT / "autograder"), str(work)]}
        (base / "spec.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-I", os.path.abspath(__file__), str(base / "spec.json"), "--",
               sys.executable, "-c", _PROBE_KERNEL, str(secret), str(REPO_ROOT)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
        except subprocess.TimeoutExpired:
            return "the test kernel did not finish within 60 s"
        user = _user_name(NOBODY if mode == "namespaces" else os.getuid())
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        if proc.returncode != 0:
            if "ermission denied" in proc.stderr or proc.returncode in (126, 127):
                return (f"the kernel's Python ({sys.executable}, under {sys.base_prefix}) cannot be run by {user} "
                        f"inside the private view: {tail}; install Python and the venv where {user} can read them")
            return f"the test kernel failed (exit code {proc.returncode}): {tail or 'no message'}"
        try:
            seen = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return f"the test kernel printed no report: {proc.stdout[-200:]!r} {tail}"
        allowed = {"autograder"} | {Path(p).relative_to(REPO_ROOT).parts[0] for p in interpreter_paths()
                                    if _under(p, str(REPO_ROOT)) and p != str(REPO_ROOT)}
        problems = []
        if len(seen["pids"]) > 3:
            problems.append(f"it sees {len(seen['pids'])} processes: it is not in a new PID namespace")
        if seen["leaked"]:
            problems.append(f"it could list a hidden folder ({seen['leaked']})")
        if set(seen["repo"]) - allowed:
            problems.append(f"it could see {sorted(set(seen['repo']) - allowed)} in the course repository")
        if mode == "namespaces" and seen["uid"] != NOBODY:
            problems.append(f"it runs as uid {seen['uid']}, not as {NOBODY}")
        if not seen["ipykernel"]:
            problems.append(f"it cannot find ipykernel: the venv ({sys.prefix}) is not readable by {user} inside the view")
        if not (work / "probe.txt").exists():
            problems.append("it could not write its own folder")
        return "the test kernel ran, but " + "; ".join(problems) if problems else None
    finally:
        shutil.rmtree(base, ignore_errors=True)


@functools.cache
def why_not(mode: str) -> str | None:
    """``None`` when kernels can run in ``mode`` here, else the reason (test-run once per process)."""
    return _why_not(mode_name(mode))


def probe_mode() -> str:
    """The strongest isolation mode that actually works here (``"none"`` when neither does)."""
    return next(m for m in MODES if why_not(m) is None)


def require_mode(mode: object) -> str:
    """``mode`` (any value :func:`mode_name` accepts) when it works here; raises
    :class:`IsolationUnavailable` with the reason otherwise (never falls back)."""
    name = mode_name(mode)
    reason = why_not(name)
    if reason is not None:
        raise IsolationUnavailable(f"isolation mode {name!r} does not work here: {reason}")
    return name


def resolve_mode(requested: object = None) -> str:
    """The mode for this run's kernels: ``requested`` (checked), else ``$AUTOGRADER_ISOLATION``
    (checked), else the strongest that works (:func:`probe_mode`)."""
    if requested is None:
        requested = os.environ.get(ENV_MODE) or None
    return probe_mode() if requested is None else require_mode(requested)


def probe() -> bool:
    """Can this process give a kernel private namespaces as root (mode ``"namespaces"``)?"""
    return why_not("namespaces") is None


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        try:
            if len(argv) > 1:
                mode = require_mode(argv[1])
            else:
                if not os.environ.get(ENV_MODE):
                    for name in MODES[:-1]:
                        if why_not(name) is not None:
                            print(f"{name}: {why_not(name)}", file=sys.stderr)
                mode = resolve_mode(None)
        except (IsolationUnavailable, ValueError) as exc:
            print(exc, file=sys.stderr)
            return 1
        print(mode)
        return 0 if mode != "none" else 1
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m autograder.grading.sandbox SPEC.json -- KERNEL_CMD ...\n"
              "       python -m autograder.grading.sandbox --probe [namespaces|bwrap|none]", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    launch(spec, argv[2:])
    return 0  # not reached: launch replaces or exits the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

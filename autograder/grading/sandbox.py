"""Kernel launcher: resource limits and a private view of the file system.

Run as ``python -m autograder.grading.sandbox SPEC.json -- KERNEL_CMD...``. The
launcher

1. caps the kernel's memory with ``RLIMIT_DATA`` (heap and private mappings; the
   address space is left alone because the CUDA build of torch maps several GB),
   file size with ``RLIMIT_FSIZE`` and core dumps with ``RLIMIT_CORE``;
2. asks the OS to kill the kernel when the grader dies (``PR_SET_PDEATHSIG``);
3. when the grader runs as root (``spec["isolate"]``), moves the kernel into new
   mount and PID namespaces and gives it a private view of the file system
   (:func:`_private_view`): the course repository shows only the packages the
   kernel imports (no solutions, tests or git history), ``/tmp`` and ``/dev/shm``
   are empty, submissions and results are hidden, and ``/proc`` shows only the
   kernel's own processes. The kernel then runs as an unprivileged user
   (``spec["uid"]``, no new privileges): it cannot undo the mounts, write to the
   course files or signal the grader;
4. starts the kernel in ``spec["cwd"]``.

Process tree when isolated: launcher (waits, exits with the kernel's status) ->
init (PID 1 of the new namespace, reaps) -> kernel. Signals sent by jupyter_client
to the process group reach the kernel directly.

``python -m autograder.grading.sandbox --probe`` exits 0 when namespaces work here.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096
MS_REC = 1 << 14
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
NOBODY = 65534

_libc = ctypes.CDLL(None, use_errno=True)


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


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _private_view(masks: list[str], scratch: list[str], expose: list[str], hide: list[str]) -> None:
    """Build the kernel's view of the file system (inside its own mount namespace).

    - ``masks``: folders replaced by an empty read-only tmpfs (the course repository,
      home folders); any ancestor of an exposed path that an unprivileged user
      cannot enter (``/root`` above ``/root/.pyenv``) is masked too;
    - ``scratch``: folders replaced by an empty writable tmpfs (``/tmp``, ``/dev/shm``),
      so files other processes left there are out of reach;
    - ``expose``: folders bound back at their own path on top of the masks
      (Python, the virtual environment, the course packages, the kernel's folder);
    - ``hide``: folders covered by an empty read-only tmpfs last (submissions, results).
    """
    expose = list(dict.fromkeys(os.path.realpath(p) for p in expose if os.path.isdir(p)))
    masks = [os.path.realpath(m) for m in masks if os.path.isdir(m)]
    for path in expose:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:i])
            if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                masks.append(ancestor)
                break
    scratch = [os.path.realpath(t) for t in scratch if os.path.isdir(t)]
    fds = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in expose}
    covers = sorted({(m, False) for m in masks} | {(t, True) for t in scratch}, key=lambda c: len(c[0]))
    for path, writable in covers:
        mode = "size=256m,mode=1777" if writable else "size=64k,mode=0755"
        # a cover inside an earlier one (a repository checked out under /tmp) must be
        # recreated in the fresh tmpfs before it can be mounted on
        os.makedirs(path, exist_ok=True)
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, mode)
    for path in expose:
        if any(_under(path, c) for c, _ in covers):
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fds[path]}", path, "", MS_BIND | MS_REC)
    for path, writable in covers:
        if not writable:
            _mount("none", path, "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in fds.values():
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for path in hide:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")


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
        # Our parent is PID 1 of the namespace, which ipykernel's parent poller reads as
        # "the frontend died"; PR_SET_PDEATHSIG covers that case instead.
        os.environ.pop("JPY_PARENT_PID", None)
    os.chdir(spec.get("cwd") or "/")
    set_pdeathsig()
    os.execvp(cmd[0], cmd)


def launch(spec: dict, cmd: list[str]) -> None:
    """Apply the spec and replace this process by the kernel (or supervise it)."""
    apply_limits(spec.get("memory_mb"), spec.get("fsize_mb"), spec.get("nproc"))
    set_pdeathsig()
    if not spec.get("isolate"):
        _exec_kernel(spec, cmd, drop=False)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    init = os.fork()
    if init == 0:  # PID 1 in the new namespace
        set_pdeathsig()
        try:
            _mount("none", "/", "", MS_REC | MS_PRIVATE)
            _private_view(list(spec.get("masks") or []), list(spec.get("scratch") or []),
                          list(spec.get("expose") or []), list(spec.get("hide") or []))
        except OSError:
            os._exit(121)  # never run a kernel that could see the hidden paths
        kernel = os.fork()
        if kernel == 0:
            try:
                _exec_kernel(spec, cmd, drop=True)
            finally:
                os._exit(122)
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


def probe() -> bool:
    """Can this process give a kernel private mount and PID namespaces and a user to drop to?"""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
            inner = os.fork()
            if inner == 0:
                try:
                    _mount("none", "/", "", MS_REC | MS_PRIVATE)
                    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    os._exit(0 if os.getpid() == 1 else 3)
                except OSError:
                    os._exit(2)
            _, status = os.waitpid(inner, 0)
            os._exit(_exit_status(status))
        except OSError:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return _exit_status(status) == 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        return 0 if probe() else 1
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m autograder.grading.sandbox SPEC.json -- KERNEL_CMD ...", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    launch(spec, argv[2:])
    return 0  # not reached: launch replaces or exits the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

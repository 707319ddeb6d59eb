"""A throw-away PostgreSQL 15 server for tests.

    from pg_server import fresh_database, postgres_url   # postgres_url: a session-scoped fixture

    def test_something(postgres_url):    # "postgresql://postgres@127.0.0.1:PORT/gradebook"
        url = fresh_database(postgres_url, "case_1")   # one more empty database on that server

:func:`postgres_server` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/15/bin``
(override with ``$PG_BIN``) in a fresh folder under the system temp folder, listening on
loopback only with ``trust`` authentication, creates one database and yields its
SQLAlchemy URL; the server is stopped and the folder removed afterwards. ``initdb``
refuses to run as root, so as root every server command runs as ``nobody`` (through
``runuser``) in a folder that user owns. Tests are skipped, with the reason, when the
server binaries or the ``psycopg`` driver are missing (``scripts/setup_system.sh``
installs the Debian ``postgresql`` package).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
UNPRIVILEGED = "nobody"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (binaries, driver or user missing)."""


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "postgres", "createdb"):
        if not (PG_BIN / tool).exists():
            return (f"PostgreSQL 15 server binaries not found ({PG_BIN / tool} is missing): "
                    "run scripts/setup_system.sh as root, or apt-get install postgresql")
    try:
        import psycopg  # noqa: F401 - SQLAlchemy's driver for postgresql:// URLs
    except ImportError:
        return "the psycopg driver is not installed (pip install -r requirements.lock)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root needs runuser (util-linux) to start PostgreSQL as an unprivileged user"
        try:
            pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            return f"running as root needs the unprivileged user {UNPRIVILEGED!r} to start PostgreSQL"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], as_user: bool, timeout: float = 60) -> subprocess.CompletedProcess:
    if as_user:
        cmd = ["runuser", "-u", UNPRIVILEGED, "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/")
    if proc.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


@contextlib.contextmanager
def postgres_server(database: str = "gradebook") -> Iterator[str]:
    """Start a server, create ``database``, yield ``postgresql://postgres@127.0.0.1:PORT/<database>``."""
    reason = missing_reason()
    if reason:
        raise PostgresUnavailable(reason)
    as_user = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="pg-test-"))
    if as_user:
        user = pwd.getpwnam(UNPRIVILEGED)
        os.chown(base, user.pw_uid, user.pw_gid)
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    started = False
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
              "--locale=C", "--no-sync", "--no-instructions"], as_user)
        _run(["mkdir", "-m", "700", str(sockets)], as_user)
        for attempt in range(3):  # the port is chosen before the server binds it: retry on a clash
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {sockets} -F -c max_connections=40 -c shared_buffers=16MB"
            try:
                _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30",
                      "start"], as_user)
                started = True
                break
            except PostgresUnavailable:
                if attempt == 2:
                    text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise PostgresUnavailable(f"PostgreSQL did not start:\n{text}") from None
                time.sleep(0.5)
        _run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database], as_user)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                _run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_user)
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """A new, empty database ``name`` on the server of ``url``; returns its URL."""
    import sqlalchemy as sa

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database names here are letters, digits and _: {name!r}")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh database on a throw-away server (skips when none can start)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url

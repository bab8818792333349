"""A throwaway PostgreSQL server on 127.0.0.1 for the event-store tests and bench: Debian's
``postgresql`` package (``initdb``/``pg_ctl``), a fresh cluster in a temporary folder, a free
port, trust authentication for the superuser ``vd``; stopped and removed by :meth:`stop`.

PostgreSQL refuses to run as root: as root the cluster belongs to ``nobody`` (the server runs as
that user; the folder is chowned to it). ``have_postgresql()`` says whether ``initdb`` is here.

Fixtures (``tests/conftest.py`` imports them): ``pg_server`` is one server per session;
``event_db`` is a fresh empty database of each kind, as ``--db`` names it (a SQLite file, then a
PostgreSQL database, marked ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return versions[-1] if versions else None


def have_postgresql() -> bool:
    return _bin("initdb") is not None and _bin("pg_ctl") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """``PgServer().start()`` → a running server at ``.url``
    (``postgresql://vd@127.0.0.1:PORT/postgres``); :meth:`stop` ends it and removes its folder."""

    def __init__(self, fsync: bool = False):
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="vd-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = None
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            import pwd

            self.user = "nobody"
            ent = pwd.getpwnam(self.user)
            os.chown(self.dir, ent.pw_uid, ent.pw_gid)
        os.chmod(self.dir, 0o700)
        self.url = f"postgresql://vd@127.0.0.1:{self.port}/postgres"

    def _run(self, args, **kw):
        return subprocess.run(args, user=self.user, capture_output=True, text=True, timeout=120,
                              cwd=self.dir, env={**os.environ, "LC_ALL": "C", "TZ": "UTC"}, **kw)

    def start(self) -> "PgServer":
        r = self._run([_bin("initdb"), "-D", str(self.data), "-U", "vd", "--auth=trust",
                       "--encoding=UTF8", "--no-locale"])
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-500:]}")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir} -c fsync={'on' if self.fsync else 'off'} "
                "-c max_connections=40")
        r = self._run([_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts,
                       "-w", "-t", "60", "start"])
        if r.returncode != 0:
            log = (self.dir / "log").read_text(errors="replace")[-500:] if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()[-300:]} {log}")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not listen on 127.0.0.1")

    def stop(self) -> None:
        if self.data.exists():
            self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)

    def fresh_db(self, name: str) -> str:
        """Create database ``name``; its URL."""
        createdb = Path(os.path.realpath(_bin("initdb"))).with_name("createdb")
        r = self._run([str(createdb), "-h", "127.0.0.1", "-p", str(self.port), "-U", "vd", name])
        if r.returncode != 0:
            raise RuntimeError(f"createdb failed: {r.stderr.strip()}")
        return f"postgresql://vd@127.0.0.1:{self.port}/{name}"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true" and os.geteuid() == 0


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the session (the `postgresql` marker skips where initdb is
    missing; under CI as root a server that does not start fails the tests)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if _ci():
            pytest.fail("CI: psycopg is not installed (pip install '.[dev]')")
        pytest.skip("needs psycopg (pip install 'vd[db]')")
    srv = PgServer()
    try:
        srv.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        srv.stop()
        if _ci():
            pytest.fail(f"CI: PostgreSQL did not start: {e}")
        pytest.skip(f"PostgreSQL did not start here: {e}")
    yield srv
    srv.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def event_db(request, tmp_path):
    """A fresh, empty database of each kind (as ``--db`` names it)."""
    if request.param == "sqlite":
        return str(tmp_path / "db" / "events.db")
    return request.getfixturevalue("pg_server").fresh_db("t" + uuid.uuid4().hex[:12])

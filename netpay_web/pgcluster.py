"""Run a private PostgreSQL cluster from the system binaries (``initdb``/``pg_ctl``) in a directory of our own.

For the tests, the demo and the benchmarks: no shared server, no TCP port (a unix socket in the cluster's
directory), trust authentication for the one local user. PostgreSQL refuses to run as root, so as root the cluster
runs as the ``postgres`` system user (else ``nobody``) and its directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

__all__ = ["PgCluster", "find_pg_bin"]

_SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin", "/usr/local/bin")


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's places), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for d in _SEARCH:
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


class PgCluster:
    """One cluster: ``start()``, ``create_database(name)`` → URL, ``stop()``."""

    def __init__(self, base_dir: Path | None = None, durable: bool = True, port: int = 5432) -> None:
        self.bin = find_pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (initdb/pg_ctl not found); apt-get install postgresql")
        self._own_dir = base_dir is None
        self.base = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="netpay-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"
        self.durable = durable
        self.port = port
        self.user = "netpay"
        self._runas: str | None = None
        if os.geteuid() == 0:
            self._runas = "postgres" if _user_exists("postgres") else "nobody"
            if not self._own_dir and not self._reachable(self.base.parent):
                # e.g. under a root-only temp dir: the server's user could not enter it; use a directory of its own
                self._own_dir = True
                self.base = Path(tempfile.mkdtemp(prefix="netpay-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "run"

    def _reachable(self, path: Path) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        return subprocess.run(["test", "-x", str(path)], user=self._runas, check=False).returncode == 0

    # -- running ------------------------------------------------------------------------------------------------
    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), user=self._runas, check=True, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}
        )

    def _hand_over(self, path: Path) -> None:
        if self._runas is not None:
            pw = pwd.getpwnam(self._runas)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> PgCluster:
        self.base.mkdir(parents=True, exist_ok=True)
        self._hand_over(self.base)
        os.chmod(self.base, 0o700)
        if not (self.data / "PG_VERSION").exists():
            args = ["-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C"]
            self._run(str(self.bin / "initdb"), *args, *([] if self.durable else ["--no-sync"]))
        self.socket_dir.mkdir(exist_ok=True)
        self._hand_over(self.socket_dir)
        settings = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories='{self.socket_dir}'",
            f"-p {self.port}",
            "-c max_connections=200",
            "-c shared_buffers=64MB",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        if (self.socket_dir / f".s.PGSQL.{self.port}").exists() and self._ping():
            return self
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "postgres.log"), "-w",
                  "-t", "60", "-o", " ".join(settings), "start")  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._ping():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {self.base / 'postgres.log'}")
            time.sleep(0.05)
        return self

    def _ping(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping an old one) and return its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str, database: str = "postgres") -> str:
        """Create schema ``name`` (dropping an old one) and return a URL whose ``search_path`` is it: cheaper than a
        database per test, and as separate for the servers' tables."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{name}"')
        return self.url(database) + f"&options=-c%20search_path%3D{name}"

    def stop(self, remove: bool | None = None) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        if remove if remove is not None else self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True

"""SQLite storage for the reference servers: one file, WAL, synchronous=FULL, numbered migrations.

Migrations are a list of SQL scripts; migration i (1-based) runs once and sets ``PRAGMA user_version = i`` in the
same transaction, so a crash mid-migration leaves the database at the previous version. A database from a newer
version (user_version beyond the list) is refused.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Connector", "Database", "SchemaTooNew"]

#: Opens one more connection to a database (``timeout``: how long it waits for another writer, seconds).
Connector = Callable[[float], Any]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer version of this program."""


class Database:
    """One SQLite connection guarded by a lock; use :meth:`tx` for every write (BEGIN IMMEDIATE ... COMMIT)."""

    engine = "sqlite"

    def __init__(self, path: Path | str, migrations: Sequence[str] | None, synchronous: str = "FULL",
                 connect: Connector | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self._lock = threading.RLock()
        self._connect = connect
        self.conn = self.new_connection(timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("PRAGMA foreign_keys=ON")
        if migrations is not None:  # None: the schema is kept by the program that owns the file
            self._migrate(migrations)

    def new_connection(self, timeout: float) -> Any:
        """Another connection to the same database (autocommit, rows by name, usable from any thread): from the
        ``connect`` hook when given (e.g. an encrypted file that needs its key), else a plain SQLite one."""
        if self._connect is not None:
            return self._connect(timeout)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=timeout)
        conn.row_factory = sqlite3.Row
        return conn

    def _migrate(self, migrations: Sequence[str]) -> None:
        current = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if current > len(migrations):
            raise SchemaTooNew(f"{self.path} has schema version {current}; this program knows {len(migrations)}")
        for number in range(current + 1, len(migrations) + 1):
            script = migrations[number - 1]
            with self.tx() as c:
                for statement in _split(script):
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {number}")
        if current < len(migrations):
            # the schema's pages go into the database file now: a new database starts with an empty write-ahead log
            # (the log never shrinks by itself, so every migration's pages would stay its lowest size for good)
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all or nothing."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """The connection for a few reads in a row (under the lock)."""
        with self._lock:
            yield self.conn

    @contextmanager
    def session_lock(self, name: str) -> Iterator[bool]:
        """One process owns the file (its writers serialise on it): background work always runs (see PgDatabase)."""
        yield True

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self.conn.execute(sql, params).fetchone()

    def dump(self) -> str:
        """Every row of every table as text, for tests that prove a refused request changed nothing."""
        with self._lock:
            return "\n".join(self.conn.iterdump())

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

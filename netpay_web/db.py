"""Choose the engine: a ``postgresql://`` URL opens :class:`~netpay_web.postgres.PgDatabase`, anything else the
SQLite file; plus the few helpers whose SQL differs between the two (row-key locks, savepoints).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from netpay_web.sqlite import Database

__all__ = ["AnyDatabase", "IntegrityError", "is_postgres_url", "lock_keys", "open_db", "savepoint"]

try:
    import psycopg

    #: What a unique or foreign-key violation raises, on either engine.
    IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.errors.IntegrityError)
except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite alone still works without it
    IntegrityError = (sqlite3.IntegrityError,)

AnyDatabase = Any  # Database | PgDatabase (kept loose: the servers use the shared duck-typed API)


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def open_db(target: str | Path, migrations: Sequence[str], **kwargs: Any) -> AnyDatabase:
    """Open (creating and migrating) a database: a PostgreSQL URL or a SQLite file path."""
    if is_postgres_url(target):
        from netpay_web.postgres import PgDatabase

        return PgDatabase(str(target), migrations)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    return Database(target, migrations, **kwargs)


def lock_keys(c: Any, *keys: str) -> None:
    """Own ``keys`` (e.g. ``chain:<id>``) until the transaction ends, across processes.

    PostgreSQL: transaction-scoped advisory locks, taken in sorted order in one statement (two transactions never
    wait for each other in a circle). SQLite: nothing to do, its ``BEGIN IMMEDIATE`` already makes one writer.
    Take every key a transaction needs in one call, before reading what it will change."""
    if getattr(c, "engine", "sqlite") != "postgresql" or not keys:
        return
    ordered = sorted(set(keys))
    c.execute("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(?::text[]) AS k", (ordered,))


@contextmanager
def savepoint(c: Any) -> Iterator[None]:
    """Run a block whose failure must not spoil the enclosing transaction (PostgreSQL aborts it otherwise)."""
    if getattr(c, "engine", "sqlite") == "postgresql":
        with c.savepoint():
            yield
        return
    c.execute("SAVEPOINT sp")
    try:
        yield
    except BaseException:
        c.execute("ROLLBACK TO sp")
        c.execute("RELEASE sp")
        raise
    c.execute("RELEASE sp")

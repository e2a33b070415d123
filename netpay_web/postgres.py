"""PostgreSQL storage for the reference servers: the same migrations and SQL text as SQLite, on psycopg 3's pool.

The servers write their SQL once, in the dialect both engines speak (``?`` placeholders, ``INSERT ... ON CONFLICT DO
NOTHING``, ``RETURNING``); :func:`pg_sql` turns ``?`` into psycopg's ``%s`` and :func:`pg_ddl` makes the few type
substitutions a migration needs (``BLOB`` → ``BYTEA``, ``INTEGER`` → ``BIGINT``, a rowid key → ``BIGSERIAL``, no
``WITHOUT ROWID``). Migration i runs once, with ``schema_version`` set to i in the same transaction, under an advisory
lock so that processes starting together migrate once.

Every :meth:`PgDatabase.tx` is one READ COMMITTED transaction on a pooled connection. What SQLite's single writer
gave for free is asked for explicitly: :func:`netpay_web.db.lock_keys` takes transaction-scoped advisory locks on the
keys a transaction must own (a chain, an account, a batch id), unique constraints refuse a second row, and
compare-and-set updates refuse a stale index. Several processes may so share one database.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool

from netpay.errors import MalformedMessage
from netpay_web.sqlite import SchemaTooNew, _split

__all__ = ["PgConn", "PgDatabase", "Row", "is_postgres_url", "pg_ddl", "pg_sql"]

#: Advisory lock key under which migrations run (any constant; ``netpay`` in ASCII).
_MIGRATION_LOCK = 0x6E6574706179


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


@lru_cache(maxsize=2048)
def pg_sql(sql: str) -> str:
    """``?`` placeholders → ``%s`` (outside quoted text); a literal ``%`` is doubled for psycopg."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def pg_ddl(statement: str) -> str:
    """One SQLite migration statement in PostgreSQL's types."""
    s = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\b(?!\s*\()", "BIGSERIAL PRIMARY KEY", statement, flags=re.I)
    s = re.sub(r"\bINTEGER\b", "BIGINT", s, flags=re.I)
    s = re.sub(r"\bBLOB\b", "BYTEA", s, flags=re.I)
    s = re.sub(r"\)\s*WITHOUT\s+ROWID", ")", s, flags=re.I)
    return s


class Row(tuple):  # type: ignore[type-arg]
    """A result row read by position or by column name, like :class:`sqlite3.Row`."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    desc = cursor.description
    if desc is None:
        return tuple
    index = {col.name: i for i, col in enumerate(desc)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


class _IntegralNumericLoader(Loader):
    """``SUM`` of a BIGINT is NUMERIC in PostgreSQL; money here is integral, so read it as ``int`` like SQLite."""

    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        if "." in text or text in ("NaN", "Infinity", "-Infinity"):
            from decimal import Decimal

            return Decimal(text)
        return int(text)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _IntegralNumericLoader)


class PgConn:
    """The connection a transaction body sees: ``execute``/``executemany`` with SQLite's SQL text."""

    engine = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor(row_factory=_row_factory)
        try:
            cur.execute(pg_sql(sql), params or None)
        except psycopg.DataError as exc:
            # SQLite stores a NUL in text, PostgreSQL refuses it: the same input answers the same 400 on both engines
            # (an endpoint should refuse it first; this keeps a missed one from answering 500)
            if "NUL" in str(exc):
                raise MalformedMessage("text may not hold NUL characters") from None
            raise
        return cur

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor(row_factory=_row_factory)
        rows = list(seq)
        if rows:
            cur.executemany(pg_sql(sql), rows)
        return cur

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside rolls back only what it did (the outer one goes on)."""
        with self.raw.transaction():
            yield


class PgDatabase:
    """A pool of connections to one PostgreSQL database, migrated with the same list as the SQLite file."""

    engine = "postgresql"

    def __init__(self, url: str, migrations: Sequence[str], min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.path = None
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=True,
            name="netpay",
        )
        self._local_lock = threading.RLock()
        self._migrate(migrations)

    def _migrate(self, migrations: Sequence[str]) -> None:
        with self.tx() as c:
            c.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            row = c.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                c.execute("INSERT INTO schema_version (version) VALUES (0)")
                current = 0
            else:
                current = int(row[0])
            if current > len(migrations):
                raise SchemaTooNew(f"the database has schema version {current}; this program knows {len(migrations)}")
            for number in range(current + 1, len(migrations) + 1):
                for statement in _split(migrations[number - 1]):
                    c.raw.execute(pg_ddl(statement))  # type: ignore[call-overload]
                c.execute("UPDATE schema_version SET version = ?", (number,))

    @property
    def lock(self) -> threading.RLock:
        """A process-local lock (kept for callers that serialised on SQLite's connection); it guards nothing in
        the database: use :func:`netpay_web.db.lock_keys` inside a transaction."""
        return self._local_lock

    @contextmanager
    def tx(self) -> Iterator[PgConn]:
        """A write transaction on a pooled connection: all or nothing."""
        with self.pool.connection() as conn, conn.transaction():
            yield PgConn(conn)

    @contextmanager
    def reader(self) -> Iterator[PgConn]:
        """A connection for a few reads (autocommit: each statement sees the latest commits)."""
        with self.pool.connection() as conn:
            yield PgConn(conn)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        with self.reader() as c:
            return c.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        with self.reader() as c:
            row: Row | None = c.execute(sql, params).fetchone()
            return row

    @contextmanager
    def session_lock(self, name: str) -> Iterator[bool]:
        """Try to own ``name`` across processes for the block (a session advisory lock); yields whether it did.

        Background rounds (spend reports, redemption) run under it so that they run once, not once per process; a
        process that dies frees it with its connection."""
        with self.pool.connection() as conn:
            got = bool(conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (name,)).fetchone()[0])  # type: ignore[index]
            try:
                yield got
            finally:
                if got:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (name,))

    def dump(self) -> str:
        """Every row of every table as text, sorted (for tests that prove a refused request changed nothing)."""
        lines: list[str] = []
        with self.reader() as c:
            tables = [
                r[0]
                for r in c.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                    "ORDER BY table_name"
                ).fetchall()
            ]
            for table in tables:
                rows = c.execute(f'SELECT * FROM "{table}"').fetchall()
                lines += sorted(f"{table}: {tuple(r)!r}" for r in rows)
        return "\n".join(lines)

    def close(self) -> None:
        self.pool.close()

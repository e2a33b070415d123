"""SQLite storage: numbered migrations run once, a newer schema is refused, transactions are all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from netpay_web.sqlite import Database, SchemaTooNew

MIGRATIONS = ["CREATE TABLE t (x INTEGER NOT NULL)", "ALTER TABLE t ADD COLUMN y TEXT"]


def test_migrations_run_once_and_set_the_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", MIGRATIONS)
    assert db.one("PRAGMA user_version")[0] == 2
    with db.tx() as c:
        c.execute("INSERT INTO t (x, y) VALUES (1, 'a')")
    db.close()
    db = Database(tmp_path / "a.db", MIGRATIONS)  # re-open: nothing re-runs
    assert [tuple(r) for r in db.query("SELECT x, y FROM t")] == [(1, "a")]
    assert db.one("PRAGMA journal_mode")[0] == "wal"
    assert db.one("PRAGMA synchronous")[0] == 2  # FULL


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Database(tmp_path / "a.db", MIGRATIONS).close()
    with pytest.raises(SchemaTooNew):
        Database(tmp_path / "a.db", MIGRATIONS[:1])


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", MIGRATIONS)
    before = db.dump()
    with pytest.raises(ZeroDivisionError), db.tx() as c:
        c.execute("INSERT INTO t (x) VALUES (1)")
        raise ZeroDivisionError
    assert db.dump() == before

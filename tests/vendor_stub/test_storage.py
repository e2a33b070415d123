"""The vendor database: numbered migrations and the group-commit writer (durable, batched, isolated)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from netpay_web.sqlite import SchemaTooNew
from vendor_stub.storage import MIGRATIONS, Store


def test_migrations_set_the_schema_version_and_refuse_newer(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")
    assert store.one("PRAGMA user_version")[0] == len(MIGRATIONS)  # type: ignore[index]
    assert store.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: a commit is on disk
    store.close()
    conn = sqlite3.connect(tmp_path / "v.sqlite3")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew):
        Store(tmp_path / "v.sqlite3")


def test_group_commit_batches_concurrent_writers_and_isolates_failures(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        for i in range(25):

            def put(c: sqlite3.Connection, key: str = f"k{n}-{i}") -> None:
                c.execute("INSERT INTO meta (key, value) VALUES (?, 'v')", (key,))

            store.write(put)

            def bad(c: sqlite3.Connection) -> None:
                c.execute("INSERT INTO meta (key, value) VALUES ('bad', 'v')")
                raise ValueError("refused after writing: must roll back only this job")

            try:
                store.write(bad)
            except ValueError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.query("SELECT key FROM meta WHERE key LIKE 'k%'")
    assert len(rows) == 200 and len(errors) == 200
    assert store.one("SELECT 1 FROM meta WHERE key = 'bad'") is None
    assert store.writer.commits < store.writer.jobs  # several jobs shared one durable commit
    store.close()
    # a fresh connection sees every committed row
    again = Store(tmp_path / "v.sqlite3")
    assert len(again.query("SELECT key FROM meta WHERE key LIKE 'k%'")) == 200
    again.close()

"""The vendor database: numbered migrations and the group-commit writer (durable, batched, isolated)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from netpay_web.sqlite import SchemaTooNew
from vendor_stub.storage import CHECKPOINT_EVERY, MIGRATIONS, Store


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


def test_run_now_commits_in_the_caller_and_rolls_back_a_refused_job(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")

    def put(c: sqlite3.Connection) -> str:
        c.execute("INSERT INTO meta (key, value) VALUES ('now', 'v')")
        return threading.current_thread().name

    ran, result, error = store.writer.run_now(put)
    assert ran and error is None and result == threading.current_thread().name  # no hand-off to the writer

    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO meta (key, value) VALUES ('bad', 'v')")
        raise ValueError("refused")

    ran, _, error = store.writer.run_now(bad)
    assert ran and isinstance(error, ValueError)
    store.close()
    again = Store(tmp_path / "v.sqlite3")  # the committed row is on disk, the refused one is not
    assert again.one("SELECT value FROM meta WHERE key = 'now'") is not None
    assert again.one("SELECT 1 FROM meta WHERE key = 'bad'") is None
    again.close()


def test_run_now_steps_aside_while_another_process_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")
    other = sqlite3.connect(tmp_path / "v.sqlite3", isolation_level=None)  # e.g. `netpay-vendor redeem`
    other.execute("BEGIN IMMEDIATE")
    ran, _, _ = store.writer.run_now(lambda c: c.execute("INSERT INTO meta (key, value) VALUES ('x', 'v')"))
    assert not ran  # it did not wait for the other writer (that would block the event loop)
    other.execute("ROLLBACK")
    other.close()
    # run_now commits as durably as the writer thread does
    now_conn = store.writer._now_conn
    assert now_conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert now_conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    ran, _, error = store.writer.run_now(lambda c: c.execute("INSERT INTO meta (key, value) VALUES ('x', 'v')"))
    assert ran and error is None
    store.close()


def test_idle_checkpoints_keep_the_write_ahead_log_short(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")
    inline = 0
    for i in range(10 * CHECKPOINT_EVERY):

        def put(c: sqlite3.Connection, key: str = f"k{i}") -> None:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, "x" * 3000))

        ran, _, error = store.writer.run_now(put)
        assert error is None
        if ran:
            inline += 1
        else:  # the writer thread is checkpointing right now: queue the write instead
            store.write(put)
        time.sleep(0.001)  # idle moments, as between a lone customer's payments
    assert inline > 5 * CHECKPOINT_EVERY
    assert store.writer.checkpoints >= 5
    assert len(store.query("SELECT key FROM meta WHERE key LIKE 'k%'")) == 10 * CHECKPOINT_EVERY
    # without checkpoints the log would hold every page written (two 4 kB pages per row: over 2.5 MB)
    assert (tmp_path / "v.sqlite3-wal").stat().st_size < 3 * CHECKPOINT_EVERY * 2 * 4200
    store.close()

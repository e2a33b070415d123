"""The vendor's SQLite database: numbered migrations, a reader connection, and a group-commit writer.

Every accepted payment must be on disk before its receipt leaves. Committing each payment on its own would cost one
fsync per request; instead :class:`GroupCommitter` runs the writes of all payments that are waiting in ONE
transaction (each in its own savepoint, so one failure does not spoil the rest), commits it with
``synchronous=FULL``, and only then wakes their request threads.

After every few lone commits (:meth:`GroupCommitter.run_now`) the writer thread checkpoints the write-ahead log once
it is idle, so the log starts again from its beginning: a commit then overwrites blocks the file already has instead
of also journalling the file growing. Under a steady load of group commits SQLite's automatic checkpoint does it, as
a checkpoint in between would hold the next batch up.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from netpay_web.db import is_postgres_url, open_db
from netpay_web.sqlite import Connector, Database

__all__ = ["MIGRATIONS", "CommitJob", "GroupCommitter", "PgWriter", "Store"]

T = TypeVar("T")

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: the whole first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE chains (
        chain_id TEXT PRIMARY KEY,
        certificate TEXT NOT NULL,
        coin_value INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('held', 'released', 'closed')),
        base_index INTEGER NOT NULL,
        base_payword TEXT NOT NULL,
        base_source TEXT NOT NULL CHECK (base_source IN ('touchstone', 'release', 'lower_bound')),
        base_release TEXT,
        previous_vendor TEXT,
        last_index INTEGER NOT NULL,
        last_payword TEXT NOT NULL,
        exact INTEGER NOT NULL,
        acquired_at INTEGER NOT NULL,
        released_to TEXT,
        release TEXT,
        released_at INTEGER
    );
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        quote_id TEXT NOT NULL UNIQUE,
        request_digest TEXT NOT NULL,
        item_id TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        receipt TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE spends (
        spend_id INTEGER PRIMARY KEY,
        payment_id TEXT NOT NULL REFERENCES payments(payment_id),
        chain_id TEXT NOT NULL REFERENCES chains(chain_id),
        from_index INTEGER NOT NULL,
        to_index INTEGER NOT NULL,
        payword TEXT NOT NULL,
        coins INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        reported_at INTEGER,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'submitted', 'redeemed', 'rejected')),
        batch_id TEXT,
        reason TEXT,
        evidence TEXT,
        settled_at INTEGER,
        UNIQUE (chain_id, to_index),
        CHECK (from_index < to_index)
    );
    CREATE INDEX spends_unreported ON spends(spend_id) WHERE reported_at IS NULL;
    CREATE INDEX spends_status ON spends(status);
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'done')),
        result TEXT,
        processed_at INTEGER
    );
    """,
    # 2: the paid API: which resource each one-use access token was spent on (issue 23)
    """
    CREATE TABLE api_uses (
        receipt_id TEXT PRIMARY KEY,
        resource TEXT NOT NULL,
        used_at INTEGER NOT NULL
    );
    """,
    # 3: refund requests and decisions (vendor_stub.refunds), and which receipts opened their item
    """
    CREATE TABLE refunds (
        refund_id TEXT PRIMARY KEY,
        receipt_id TEXT NOT NULL UNIQUE,
        receipt_digest TEXT NOT NULL,
        receipt TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused')),
        decision TEXT,
        requested_at INTEGER NOT NULL,
        decided_at INTEGER,
        credited_at INTEGER
    );
    CREATE INDEX refunds_uncredited ON refunds(status, credited_at);
    CREATE TABLE opened (receipt_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
    """,
    # 4: the custody window the broker gave this vendor (its number) and the broker-signed grant that named it the
    # chain's custodian, shown to the previous custodian in the release request
    """
    ALTER TABLE chains ADD COLUMN custody_window INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE chains ADD COLUMN custody_grant TEXT;
    """,
    # 5: metered sessions (vendor_stub.metered): one per opening payment, its units counted by each unit's payment;
    # one-time access codes (vendor_stub.handover)
    """
    CREATE TABLE metered_sessions (
        session_id TEXT PRIMARY KEY,
        item_id TEXT NOT NULL,
        unit_amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        cap_units INTEGER NOT NULL,
        units_paid INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'ended')),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK (units_paid <= cap_units)
    );
    -- one-time codes that hand an access token to an item page without the token in a URL (vendor_stub.handover)
    CREATE TABLE access_codes (
        code_hash TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    """,
    # 6: "Pay with my NetPay account" (vendor_stub.hosted) kept on disk, so a restarted shop or another of its processes
    # finishes an authorization it started and honours a grant another took: authorizations under way (the hash of
    # their state, the PKCE verifier, the item to pay once back), and the broker-signed grants this shop accepted, each
    # once (grant_id), with the hash of the browser session that uses it; a newer grant of the chain ends the older
    """
    CREATE TABLE hosted_pending (
        state_hash TEXT PRIMARY KEY,
        verifier TEXT NOT NULL,
        item_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE hosted_grants (
        grant_id TEXT PRIMARY KEY,
        chain_id TEXT NOT NULL,
        from_index INTEGER NOT NULL,
        to_index INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        grant_wire TEXT NOT NULL,
        session_hash TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('active', 'ended')),
        accepted_at INTEGER NOT NULL,
        CHECK (from_index < to_index)
    );
    CREATE INDEX hosted_grants_by_chain ON hosted_grants(chain_id, status);
    """,
]


@dataclass(slots=True)
class _Job(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    on_done: Callable[[_Job[Any]], None] | None = None


CommitJob = _Job


#: Commits between the writer's idle-time checkpoints (each restarts the write-ahead log from its beginning).
CHECKPOINT_EVERY = 16
#: Queued to ask the writer thread for a checkpoint once it is idle.
_CHECKPOINT: Any = object()


class GroupCommitter:
    """One writer thread that commits every waiting job in a single durable transaction."""

    def __init__(self, db: Database, max_batch: int = 256, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self._db = db
        self._checkpoint_every = checkpoint_every
        self._uncheckpointed = 0
        self.checkpoints = 0
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()  # None: stop
        self._max = max_batch
        self._stopped = False
        self.commits = 0
        self.jobs = 0
        self.inline_commits = 0  # of the commits, those run_now made in its caller's thread
        # run_now's own connection: the same durability settings, but it never waits for a lock (busy timeout 0)
        self._now_conn = db.new_connection(timeout=0)
        for setting in ("synchronous", "foreign_keys"):
            value = int(db.conn.execute(f"PRAGMA {setting}").fetchone()[0])
            self._now_conn.execute(f"PRAGMA {setting} = {value}")
        self._now_conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints are the writer thread's, never inline
        self._thread = threading.Thread(target=self._run, name="vendor-group-commit", daemon=True)
        self._thread.start()

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` inside a write transaction; return once that transaction is committed to disk."""
        if self._stopped:
            raise RuntimeError("the database writer is stopped")
        job: _Job[T] = _Job(fn)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def submit(self, fn: Callable[[sqlite3.Connection], Any], on_done: Callable[[_Job[Any]], None]) -> None:
        """Queue ``fn`` without waiting; ``on_done(job)`` runs in the writer thread once it is committed (or
        failed: ``job.error``)."""
        if self._stopped:
            raise RuntimeError("the database writer is stopped")
        self._queue.put(_Job(fn, on_done=on_done))

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        with self._db.lock:
            self._now_conn.close()

    def run_now(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None, BaseException | None]:
        """Run ``fn(conn)`` in a durable transaction in the calling thread, if the writer is idle right now.

        Returns ``(ran, result, error)``; ``ran`` is False (nothing done) when jobs are queued, the writer holds the
        database, or another process is writing: then use :meth:`run` or :meth:`submit`. A lone request so skips
        two thread hand-offs; it costs the caller the commit's fsync, which it would wait for anyway.
        """
        if self._stopped or not self._queue.empty():
            return False, None, None
        lock = self._db.lock  # taken by every write in this process, so only another process can make us wait
        if not lock.acquire(blocking=False):
            return False, None, None
        conn = self._now_conn
        try:
            if self._stopped:  # stop() closes this connection under the lock
                return False, None, None
            try:
                conn.execute("BEGIN IMMEDIATE")  # busy timeout 0: never wait for another process's write lock
            except sqlite3.OperationalError:
                return False, None, None
            try:
                result = fn(conn)
            except BaseException as exc:  # the job's own refusal
                conn.execute("ROLLBACK")
                return True, None, exc
            try:
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return True, None, exc
            self.commits += 1
            self.jobs += 1
            self.inline_commits += 1
            self._uncheckpointed += 1
        finally:
            lock.release()
        if self._uncheckpointed >= self._checkpoint_every:
            self._queue.put(_CHECKPOINT)  # the writer thread does it once it is idle
        return True, result, None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            asked = first is _CHECKPOINT
            batch = [] if asked else [first]
            stop = False
            while len(batch) < self._max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt is _CHECKPOINT:
                    asked = True
                else:
                    batch.append(nxt)
            if batch:
                self._commit(batch)
            if stop:
                return
            # Only when lone commits (run_now) ask for it: under a steady load of group commits a checkpoint would
            # hold the next batch up; SQLite's automatic checkpoint looks after the log then.
            if asked and self._queue.empty():
                self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the log into the database file while nobody waits for the writer. Under the database lock: a write
        that came in meanwhile would be appended and keep the log from starting again from its beginning."""
        self._uncheckpointed = 0
        try:
            with self._db.lock:
                self._db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except sqlite3.Error as exc:  # e.g. busy: the next idle moment tries again
            log.info("checkpoint skipped: %s", exc)

    def _commit(self, batch: list[_Job[Any]]) -> None:
        conn = self._db.conn
        with self._db.lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                for job in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        job.result = job.fn(conn)
                    except BaseException as exc:  # the job's own refusal; the others go on
                        conn.execute("ROLLBACK TO job")
                        job.error = exc
                    conn.execute("RELEASE job")
                conn.execute("COMMIT")
                self.commits += 1
                self._uncheckpointed += 1
                self.jobs += len(batch)
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for job in batch:
                    if job.error is None:
                        job.error = exc
        for job in batch:
            job.done.set()
            if job.on_done is not None:
                try:
                    job.on_done(job)
                except Exception:  # a callback must never stop the writer
                    log.exception("commit callback failed")


class PgWriter:
    """The writer for PostgreSQL: each job is its own transaction on a pooled connection (the server does the group
    commit of concurrent transactions itself); :meth:`submit` runs jobs on a few threads of its own."""

    def __init__(self, db: Any, threads: int = 4) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._db = db
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vendor-pg-writer")
        self._stopped = False
        self.commits = 0
        self.jobs = 0
        self.inline_commits = 0
        self.checkpoints = 0

    def run(self, fn: Callable[[Any], T]) -> T:
        if self._stopped:
            raise RuntimeError("the database writer is stopped")
        with self._db.tx() as c:
            result = fn(c)
        self.commits += 1
        self.jobs += 1
        return result

    def run_now(self, fn: Callable[[Any], T]) -> tuple[bool, T | None, BaseException | None]:
        if self._stopped:
            return False, None, None
        try:
            result = self.run(fn)
        except BaseException as exc:
            return True, None, exc
        self.inline_commits += 1
        return True, result, None

    def submit(self, fn: Callable[[Any], Any], on_done: Callable[[_Job[Any]], None]) -> None:
        if self._stopped:
            raise RuntimeError("the database writer is stopped")
        job: _Job[Any] = _Job(fn, on_done=on_done)

        def go() -> None:
            try:
                job.result = self.run(fn)
            except BaseException as exc:
                job.error = exc
            job.done.set()
            try:
                on_done(job)
            except Exception:
                log.exception("commit callback failed")

        self._pool.submit(go)

    def stop(self) -> None:
        self._stopped = True
        self._pool.shutdown(wait=True)


class Store:
    """The database plus a separate read connection (WAL lets reads run while the writer commits).

    ``target`` is the SQLite file, or a ``postgresql://`` URL: then the tables live in PostgreSQL, several vendor
    processes may share them (``shared`` is True), and the chain state each process keeps in memory is only a cache
    that the database confirms on every write (see :mod:`vendor_stub.custody`). ``connect`` opens connections to
    ``target`` for a host that keeps the vendor's tables in a database of its own and creates them itself (the
    wallet's vault, see :mod:`wallet_app.peer.vaultdb`)."""

    def __init__(self, target: Path | str, connect: Connector | None = None) -> None:
        self.shared = is_postgres_url(target)
        self._reader: Any = None
        self._read_lock = threading.Lock()
        if self.shared:
            self.db: Any = open_db(str(target), MIGRATIONS)
            self.writer: Any = PgWriter(self.db)
            return
        path = Path(target)
        # With ``connect`` (a host's own file, e.g. the wallet's encrypted vault) the host keeps the schema.
        self.db = Database(path, None if connect else MIGRATIONS, connect=connect)
        self._reader = self.db.new_connection(timeout=30)
        self.writer = GroupCommitter(self.db)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._reader is None:
            return self.db.query(sql, params)  # type: ignore[no-any-return]
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._reader is None:
            return self.db.one(sql, params)
        with self._read_lock:
            return self._reader.execute(sql, params).fetchone()

    def session_lock(self, name: str) -> Any:
        """Own ``name`` across processes for a block (background rounds run once); see ``PgDatabase.session_lock``."""
        return self.db.session_lock(name)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self.writer.run(fn)

    def get_meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        def go(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                      (key, value, value))  # fmt: skip

        self.write(go)

    def dump(self) -> str:
        return self.db.dump()

    def close(self) -> None:
        self.writer.stop()
        if self._reader is not None:
            with self._read_lock:
                self._reader.close()
        self.db.close()

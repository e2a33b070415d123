"""The encrypted vault: one SQLCipher database (WAL) opened with a raw 256-bit key (no KDF on open).

Opening is verify-first: the key is checked against the header's key check value, then the file is opened
**read-only** and checked (page authentication of every page, schema version) before it is opened for writing, so
a wrong key, a damaged file or a vault from a newer version raise a typed error and leave the file byte-for-byte
unchanged. An exclusive OS lock on ``vault.lock`` keeps a second wallet process out.

Intents (:meth:`Vault.journal`) are how a write that must be durable at once stays cheap: the intent is one row,
committed and fsync'd on its own; applying it to the tables follows in the vault's next transaction (a deferred
write), and whatever was not applied when the process died is applied when the vault next opens, before anything
else reads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlcipher3

from netpay.errors import WalletLocked as WalletLockedError
from wallet_app.keys import VaultHeader
from wallet_app.vault.errors import VaultDamaged, VaultInUse, VaultMissing, VaultTooNew, VaultWriteFailed, WrongKey
from wallet_app.vault.schema import MIGRATIONS

__all__ = [
    "DB_FILE",
    "HEADER_FILE",
    "LOCK_FILE",
    "IntentApplier",
    "ProcessLock",
    "Vault",
    "open_connection",
    "verify_database",
]

DB_FILE = "vault.db"
HEADER_FILE = "vault.json"
LOCK_FILE = "vault.lock"
PAGE_SIZE = 4096
#: Commits between background checkpoints. A checkpointed write-ahead log is written again from its start, and
#: overwriting blocks the file already has makes each fsync'd commit about half as dear as appending to it.
CHECKPOINT_EVERY = 16
#: How long the worker lets a payment thread finish before it does the deferred work (seconds).
WORKER_DELAY_S = 0.02

log = logging.getLogger(__name__)

#: Applies one intent's payload to the tables, inside the transaction that also deletes the intent.
IntentApplier = Callable[[Any, dict[str, Any]], None]
#: A deferred write: ``(write, hook run after it commits, required)``. A required one (an intent) that fails stops
#: the vault until it succeeds; another one that fails is logged and dropped.
_Job = tuple[Callable[[Any], object], Callable[[], None] | None, bool]


def _key_pragma(key: bytes | bytearray) -> str:
    return f"PRAGMA key = \"x'{bytes(key).hex()}'\""


def open_connection(path: Path, key: bytes | bytearray, timeout: float) -> Any:
    """Another connection to an open vault (autocommit, any thread, rows by name, foreign keys on)."""
    conn = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=timeout)
    try:
        conn.execute(_key_pragma(key))
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlcipher3.Row
    except BaseException:
        conn.close()
        raise
    return conn


class ProcessLock:
    """An exclusive, non-blocking OS lock on a file; released when the process dies, even by SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise VaultInUse(f"another NetPay Wallet is already running with the vault in {self.path.parent}") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def verify_database(
    path: Path, key: bytes | bytearray, known_versions: int = len(MIGRATIONS), writable: bool = False
) -> int:
    """Open ``path`` read-only with ``key``; check every page's authentication and the schema version.

    Returns the schema version. Raises :class:`VaultDamaged` or :class:`VaultTooNew`. Writes nothing, unless
    ``writable``: then it opens for writing, which a database with a log left by a crash needs (only a writer can
    recover the log's transactions) and which may write to it (use it on a copy).
    """
    size = path.stat().st_size
    if size == 0 or size % PAGE_SIZE:
        raise VaultDamaged(f"the vault file is truncated ({size} bytes is not a whole number of pages)")
    target = str(path) if writable else f"file:{path}?mode=ro"
    conn = sqlcipher3.connect(target, uri=not writable, isolation_level=None)
    try:
        conn.execute(_key_pragma(key))
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            problems = conn.execute("PRAGMA cipher_integrity_check").fetchall()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlcipher3.DatabaseError as exc:
            raise VaultDamaged(f"the vault file is damaged: {exc}") from None
        if problems:
            raise VaultDamaged(f"the vault file is damaged: {problems[0][0]}")
        if version > known_versions:
            raise VaultTooNew(
                f"the vault has schema version {version}; this wallet knows up to {known_versions}",
                version=version,
            )
        return version
    finally:
        conn.close()


class Vault:
    """An open vault connection with write transactions; every method is thread-safe."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self.header_path = self.directory / HEADER_FILE
        self._lock = threading.RLock()
        self.conn: Any = None
        self._depth = 0  # nesting of _use() in the thread holding _lock
        self._deferred: list[_Job] = []
        self._commits = 0  # since the last checkpoint
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._appliers: dict[str, IntentApplier] = {}
        self._wal: int | None = None  # descriptor of the write-ahead log, for journal()'s fsync
        self._opens = 0  # times opened: with _written, what version() hands out
        self._written = 0  # commits so far (deferred ones too) ...
        self._synced = 0  # ... and how many of them an fsync of the log has made durable

    def exists(self) -> bool:
        return self.path.exists() and self.header_path.exists()

    def read_header(self) -> VaultHeader:
        if not self.header_path.exists():
            raise VaultMissing()
        return VaultHeader.read(self.header_path)

    @property
    def is_open(self) -> bool:
        return self.conn is not None

    def create(self, key: bytes | bytearray, header: VaultHeader) -> None:
        """Make a new empty vault with ``key`` and write its header."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(DB_FILE + ".new")
        tmp.unlink(missing_ok=True)
        conn = sqlcipher3.connect(str(tmp), isolation_level=None)
        conn.execute(_key_pragma(key))
        conn.execute(f"PRAGMA cipher_page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode = WAL")
        self._migrate(conn)
        conn.close()
        os.chmod(tmp, 0o600)
        header.with_check(key).write(self.header_path)
        os.replace(tmp, self.path)

    def open(self, key: bytes | bytearray, header: VaultHeader | None = None) -> None:
        """Verify, then open for writing and run pending migrations."""
        header = header or self.read_header()
        if not self.path.exists():
            raise VaultMissing(f"the vault file {self.path} is missing")
        if not header.matches(key):
            raise WrongKey()
        # After a crash the write-ahead log may hold committed transactions that only a writer can recover, and
        # a writer that closes writes the log into the database: the checks then run on a copy, so a refused open
        # leaves the vault's files as they were. The process lock keeps the files as the copy saw them.
        recovering = any(
            (f := self.path.with_name(DB_FILE + suffix)).exists() and f.stat().st_size > 0
            for suffix in ("-wal", "-journal")
        )
        if recovering:
            self._verify_copy(key)
        else:
            verify_database(self.path, key)
        conn = sqlcipher3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=5)
        try:
            conn.execute(_key_pragma(key))
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) > len(MIGRATIONS):
                raise VaultTooNew()
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # Checkpoints run on the vault's worker thread every CHECKPOINT_EVERY commits (off the payment path);
            # the automatic one (inside whichever commit crosses it) stays as a backstop only.
            conn.execute("PRAGMA wal_autocheckpoint = 2000")
            self._migrate(conn)
            conn.row_factory = sqlcipher3.Row
            self._apply_left_intents(conn)
            if recovering:
                # What the last process wrote may still be in the page cache only: make it durable (a checkpoint
                # fsyncs the log, then the database) before recovery re-sends any spend it journalled.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            raise VaultDamaged(f"the vault file is damaged: {exc}") from None
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        self._opens += 1

    def _verify_copy(self, key: bytes | bytearray) -> None:
        """:func:`verify_database` on a copy of the vault and its log, made in a private directory beside it."""
        with tempfile.TemporaryDirectory(prefix=".open-check-", dir=self.directory) as tmp:
            copy = Path(tmp) / DB_FILE
            for suffix in ("", "-wal", "-journal"):
                source = self.path.with_name(DB_FILE + suffix)
                if source.exists():
                    shutil.copyfile(source, copy.with_name(DB_FILE + suffix))
            verify_database(copy, key, writable=True)

    @staticmethod
    def _migrate(conn: Any) -> None:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number in range(current + 1, len(MIGRATIONS) + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self.conn is not None:
                with contextlib.suppress(WalletLockedError, VaultWriteFailed), self._use():
                    pass  # runs any deferred writes first
                # What could not run stays undone: the intents are still in their table and are applied at the
                # next open; a receipt is fetched again by recovery.
                self._deferred.clear()
                with contextlib.suppress(sqlcipher3.Error):
                    self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.conn.close()
                self.conn = None
                if self._wal is not None:  # the log is removed with the last connection; a new one comes on open
                    os.close(self._wal)
                    self._wal = None
                self._written = self._synced = 0
                self._commits = 0
        self._wake.set()  # the worker sees the vault closed and ends

    @contextlib.contextmanager
    def _use(self) -> Iterator[Any]:
        """The connection, under the lock; the outermost use first runs any deferred writes, so every read and
        write sees them (read-your-writes, whichever thread asks)."""
        with self._lock:
            conn = self._require()
            self._depth += 1
            try:
                if self._depth == 1 and self._deferred:
                    self._run_deferred(conn)
                yield conn
            finally:
                self._depth -= 1

    @contextlib.contextmanager
    def tx(self, durable: bool = False) -> Iterator[Any]:
        """A write transaction: all or nothing.

        Every commit survives the process being killed (it is in the write-ahead log). With ``durable`` the log is
        also fsync'd before this returns, so it survives a power cut: used for the spend journal and coin
        purchases, whose loss could reuse an index. Other writes can be redone by recovery.
        """
        with self._use() as conn:
            if durable:
                conn.execute("PRAGMA synchronous = FULL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                self._commits += 1
                self._written += 1
                if durable:  # the FULL commit fsync'd the whole log
                    self._synced = self._written
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous = NORMAL")
            if self._commits >= CHECKPOINT_EVERY:
                self._kick()

    # ----- intents ----------------------------------------------------------------------------------------------
    def on_intent(self, kind: str, applier: IntentApplier) -> None:
        """Register how intents of ``kind`` are applied. Register before :meth:`open`: opening applies the intents
        a killed process left behind."""
        self._appliers[kind] = applier

    def journal(self, kind: str, payload: dict[str, Any], at_once: bool = False) -> None:
        """Record an intent durably (the log is fsync'd before this returns), then apply it like a deferred write:
        in the vault's next transaction, whichever thread runs it. Until then every use of the vault applies it
        first, so nobody reads the tables without it.

        ``at_once``: apply it in the transaction that is fsync'd instead, with ``payload["at_once"] = True`` for
        the applier (no intents row; a bigger commit now, none later). For a caller whose next payment usually
        follows at once (a program paying call after call), where the deferred write would only move into that
        next payment with a commit of its own; a person's purchase keeps the small commit, and the rest is done
        after the answer.

        The intent is committed with ``synchronous = NORMAL`` and the log then fsync'd as a whole, which makes it
        exactly as durable as a ``FULL`` commit, without holding the vault lock during the fsync.
        """
        if kind not in self._appliers:
            raise KeyError(f"no applier for intents of kind {kind!r}")
        if at_once:
            with self.tx() as c:
                self._appliers[kind](c, {**payload, "at_once": True})
            self._sync_log()  # an fsync error is raised: then nothing may be sent
            return
        with self.tx() as c:
            seq = c.execute(
                "INSERT INTO intents (kind, payload) VALUES (?, ?)", (kind, json.dumps(payload, separators=(",", ":")))
            ).lastrowid
        with self._lock:  # only once committed
            self._deferred.append((lambda c: self._apply_intent(c, seq, kind, payload), None, True))
        self._sync_log()  # an fsync error is raised: then nothing may be sent
        with self._lock:
            self._kick()

    @property
    def generation(self) -> int:
        """How many times this vault has been opened: what a caller caches from tables only it writes (an
        allowance, say) holds while this is unchanged; another open (after a lock, or a restored backup) may have
        other rows."""
        return self._opens

    def version(self) -> tuple[int, int] | None:
        """A token that changes with every commit (and every open): two equal tokens mean nothing was written in
        between, so a read made at the first still holds at the second. None while writes wait to be applied or the
        vault is closed: read the tables then. For a caller that reads the same thing twice in one operation."""
        with self._lock:
            if self.conn is None or self._deferred:
                return None
            return (self._opens, self._written)

    def _sync_log(self) -> None:
        """fsync the write-ahead log: every commit made before this call is then durable. Runs without the vault
        lock (others may use the vault meanwhile) on a duplicate descriptor that no close() can pull away.
        An fsync on any descriptor of a file flushes all of that file's written data."""
        with self._lock:
            if self.conn is None or self._synced == self._written:
                return
            if self._wal is None:
                self._wal = os.open(self.path.with_name(DB_FILE + "-wal"), os.O_RDONLY)
            fd, upto = os.dup(self._wal), self._written
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self._lock:
            self._synced = max(self._synced, upto)

    def _apply_intent(self, conn: Any, seq: int, kind: str, payload: dict[str, Any]) -> None:
        self._appliers[kind](conn, payload)
        conn.execute("DELETE FROM intents WHERE seq = ?", (seq,))

    def _apply_left_intents(self, conn: Any) -> None:
        """At open: apply, in order, the intents a killed process recorded but did not apply."""
        rows = conn.execute("SELECT seq, kind, payload FROM intents ORDER BY seq").fetchall()
        unknown = {row["kind"] for row in rows} - self._appliers.keys()
        if unknown:  # checked before anything is applied: nothing is half done
            kinds = ", ".join(sorted(unknown))
            raise VaultDamaged(f"the vault holds unfinished work this wallet cannot finish ({kinds})")
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._apply_intent(conn, row["seq"], row["kind"], json.loads(row["payload"]))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def defer(self, fn: Callable[[Any], object], after: Callable[[], None] | None = None) -> None:
        """Run ``fn(conn)`` in its own (non-durable) write transaction soon, on the vault's worker thread, or
        before the next use of the vault by any thread, whichever comes first; then ``after()``.

        Only for writes that recovery redoes if the process dies first (a receipt: the pending spend is re-sent
        and the vendor answers with the same receipt). A failing deferred write is logged and dropped, unless an
        intent before it could not be applied: then it waits behind that intent (see :meth:`_run_deferred`).
        """
        with self._lock:
            self._require()
            self._deferred.append((fn, after, False))
            self._kick()

    def flush(self) -> None:
        """Do the worker's pending work now, in this thread: deferred writes, a due checkpoint, and an fsync of
        the log so that the next journal entry's fsync has only itself to write."""
        with self._use() as conn:
            self._checkpoint_if_due(conn)
        self._sync_log()

    def _checkpoint_if_due(self, conn: Any) -> None:
        if self._commits >= CHECKPOINT_EVERY:
            with contextlib.suppress(sqlcipher3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._commits = 0

    def _kick(self) -> None:
        """Wake the worker (starting it if needed). Call with ``_lock`` held."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="vault-writer", daemon=True)
            self._worker.start()
        self._wake.set()

    def _run_deferred(self, conn: Any) -> None:
        """Run the deferred writes in order, each in its own transaction.

        An intent that cannot be applied (a full disk, say) stays queued with everything after it, and
        :class:`VaultWriteFailed` is raised: to this use of the vault and to every later one until it applies, so
        nobody reads or writes the tables without it (a spend from tables that lack an earlier spend could reuse
        its indexes). Its row stays in ``intents``, so the next open applies it even if this process never can.
        """
        jobs, self._deferred = self._deferred, []
        for done, (fn, after, required) in enumerate(jobs):
            try:
                conn.execute("BEGIN IMMEDIATE")
                fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlcipher3.Error):
                        conn.execute("ROLLBACK")
                if required or not isinstance(exc, Exception):
                    self._deferred = jobs[done:] + self._deferred
                if not isinstance(exc, Exception):
                    raise
                if required:
                    log.error("a journalled vault change could not be applied: %s", exc)
                    raise VaultWriteFailed() from exc
                log.exception("a deferred vault write failed (recovery redoes it)")
                continue
            self._commits += 1
            self._written += 1
            if after is not None:
                try:
                    after()
                except Exception:  # the caller that happened to run the write must not see its hook fail
                    log.exception("the hook after a deferred vault write failed")

    def _work(self) -> None:
        """The worker: runs deferred writes and checkpoints while the payment threads do other things."""
        while True:
            self._wake.wait()
            self._wake.clear()
            # Let the thread that deferred the work answer its caller first; if the vault is used again
            # meanwhile, that use runs the deferred writes itself.
            time.sleep(WORKER_DELAY_S)
            with self._lock:
                if self.conn is None:
                    self._worker = None
                    return
                try:
                    with self._use() as conn:
                        self._checkpoint_if_due(conn)
                except VaultWriteFailed:
                    continue  # logged; the next use of the vault tries again
            # Idle time: make the deferred writes durable now, not in the next payment's journal fsync.
            with contextlib.suppress(OSError):
                self._sync_log()

    def _require(self) -> Any:
        if self.conn is None:
            raise WalletLockedError()
        return self.conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._use() as conn:
            return list(conn.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._use() as conn:
            return conn.execute(sql, params).fetchone()

    def rekey(self, new_key: bytes | bytearray) -> None:
        """Re-encrypt every page with ``new_key`` (atomic: SQLCipher rewrites inside one transaction)."""
        with self._use() as conn:
            conn.execute(f"PRAGMA rekey = \"x'{bytes(new_key).hex()}'\"")

    def export_to(self, target: Path, key: bytes | bytearray) -> None:
        """Write a copy of the whole vault to ``target`` encrypted with ``key``."""
        with self._use() as conn:
            target.unlink(missing_ok=True)
            conn.execute(f"ATTACH DATABASE ? AS export KEY \"x'{bytes(key).hex()}'\"", (str(target),))
            try:
                conn.execute("SELECT sqlcipher_export('export')")
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                conn.execute(f"PRAGMA export.user_version = {version}")
            finally:
                conn.execute("DETACH DATABASE export")

    def dump(self) -> str:
        """Every row as SQL text (tests compare dumps to prove nothing changed)."""
        with self._use() as conn:
            lines = [f"user_version={conn.execute('PRAGMA user_version').fetchone()[0]}"]
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                for row in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                    lines.append(f"{name}: {tuple(row)!r}")
            return "\n".join(lines)


def prepare_restored(path: Path, export_key: bytes | bytearray, new_key: bytes | bytearray) -> None:
    """Check a database taken out of a backup, migrate it, mark every chain for resync, re-key it to ``new_key``."""
    verify_database(path, export_key)
    conn = sqlcipher3.connect(str(path), isolation_level=None)
    try:
        conn.execute(_key_pragma(export_key))
        conn.execute("PRAGMA journal_mode = DELETE")
        Vault._migrate(conn)
        conn.execute("UPDATE chains SET needs_resync = 1 WHERE status IN ('active', 'buying', 'closing')")
        conn.execute(f"PRAGMA rekey = \"x'{bytes(new_key).hex()}'\"")
    except sqlcipher3.DatabaseError as exc:
        raise VaultDamaged(f"the backup's vault is damaged: {exc}") from None
    finally:
        conn.close()
    os.chmod(path, 0o600)

"""The peer's records in the wallet's SQLCipher vault: nothing a wallet sells, earns or signs with lies in a plain file.

The vendor desk that serves the shared files (``vendor_stub``, the same code a shop runs) keeps its tables in the
vault under names prefixed ``peer_`` (vault migration 9): :class:`PeerConnection` hands the desk's SQL to SQLCipher
with those names, and SQLCipher's errors as the ``sqlite3`` ones the desk catches. The peer's signing key and
access-token secret are rows of ``peer_secrets``; the shared files are rows of ``peer_shares``.

Wallets from before kept all this beside the vault in plain files (``<data dir>/peer/``: ``vendor.sqlite3``,
``shares.json``, ``vendor_key``, ``access_secret``, ``port``). :func:`import_plain_records` moves them into the vault
once, in one transaction, and deletes them; a damaged or tampered set is refused whole (nothing imported, nothing
deleted) with a clear error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlcipher3

from netpay.errors import MalformedMessage, WalletLocked

__all__ = ["PEER_TABLES", "PeerConnection", "PeerVault", "import_plain_records", "new_secret", "peer_sql"]

#: The vendor desk's tables; in the vault each is ``peer_<name>``.
PEER_TABLES = ("meta", "chains", "payments", "spends", "batches", "api_uses", "refunds", "opened", "metered_sessions",
               "access_codes", "hosted_pending", "hosted_grants")  # fmt: skip
_NAMES = re.compile(r"\b(" + "|".join(PEER_TABLES) + r")\b")
#: The plain files of wallets from before (inside ``<data dir>/peer``).
PLAIN_FILES = ("vendor.sqlite3", "vendor.sqlite3-wal", "vendor.sqlite3-shm", "shares.json", "vendor_key",
               "access_secret", "port")  # fmt: skip
_HEX = re.compile(r"\A[0-9a-f]{64}\Z")


@functools.lru_cache(maxsize=2048)
def peer_sql(sql: str) -> str:
    """The desk's SQL on the vault's ``peer_`` tables (its statements are a fixed set, so this is cached)."""
    return _NAMES.sub(r"peer_\1", sql)


def _as_sqlite(exc: BaseException) -> BaseException:
    kind = getattr(sqlite3, type(exc).__name__, sqlite3.DatabaseError)
    return kind(*exc.args) if isinstance(kind, type) and issubclass(kind, BaseException) else exc


class PeerConnection:
    """A SQLCipher connection to the vault that runs the vendor desk's SQL on the ``peer_`` tables."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        try:
            return self._conn.execute(peer_sql(sql), params)
        except sqlcipher3.Error as exc:
            raise _as_sqlite(exc) from None

    def executemany(self, sql: str, rows: Any) -> Any:
        try:
            return self._conn.executemany(peer_sql(sql), rows)
        except sqlcipher3.Error as exc:
            raise _as_sqlite(exc) from None

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)

    @property
    def row_factory(self) -> Any:
        return self._conn.row_factory

    @row_factory.setter
    def row_factory(self, value: Any) -> None:
        self._conn.row_factory = value

    def iterdump(self) -> Any:
        return self._conn.iterdump()

    def close(self) -> None:
        with contextlib.suppress(sqlcipher3.Error):
            self._conn.close()


class PeerVault:
    """The peer's view of the open vault: its secrets, its shared files and connections for its vendor desk."""

    def __init__(self, session: Any) -> None:
        self.session = session  # a wallet_app.vault.VaultSession

    @property
    def vault(self) -> Any:
        if not self.session.unlocked:
            raise WalletLocked("the vault is locked: unlock the wallet to share files")
        return self.session.vault

    @property
    def path(self) -> Path:
        return Path(self.session.vault.path)

    def connect(self, timeout: float) -> PeerConnection:
        """A connection for the vendor desk's store (``vendor_stub.storage.Store(path, connect=...)``)."""
        return PeerConnection(self.session.connect(timeout))

    def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The secret ``name`` (made by ``make`` and stored on first use)."""
        with self.vault.tx(durable=True) as c:
            row = c.execute("SELECT value FROM peer_secrets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return bytes(row[0])
            value = make()
            c.execute("INSERT INTO peer_secrets(name, value) VALUES (?, ?)", (name, value))
            return value

    def setting(self, key: str, default: Any = None) -> Any:
        """A wallet setting (the vault's ``settings`` table, JSON values)."""
        row = self.vault.one("SELECT value_json FROM settings WHERE key = ?", (key,))
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        with self.vault.tx() as c:
            c.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value_json = "
                      "excluded.value_json", (key, json.dumps(value)))  # fmt: skip

    def shares(self) -> list[dict[str, Any]]:
        rows = self.vault.query("SELECT item_id, path, title, description, size, sha256, price, currency, device, "
                                "inode, mtime_ns FROM peer_shares")  # fmt: skip
        return [dict(zip(_SHARE_COLUMNS, row, strict=True)) for row in rows]

    def put_share(self, share: dict[str, Any]) -> None:
        with self.vault.tx() as c:
            _insert_share(c, share)

    def delete_share(self, item_id: str) -> bool:
        with self.vault.tx() as c:
            return int(c.execute("DELETE FROM peer_shares WHERE item_id = ?", (item_id,)).rowcount) > 0

    def clear_shares(self) -> None:
        with self.vault.tx() as c:
            c.execute("DELETE FROM peer_shares")


_SHARE_COLUMNS = ("item_id", "path", "title", "description", "size", "sha256", "price", "currency", "device",
                  "inode", "mtime_ns")  # fmt: skip


def _insert_share(c: Any, share: dict[str, Any]) -> None:
    c.execute(
        "INSERT INTO peer_shares(item_id, path, title, description, size, sha256, price, currency, device, inode, "
        "mtime_ns, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(item_id) DO UPDATE SET "
        "path = excluded.path, title = excluded.title, description = excluded.description, size = excluded.size, "
        "price = excluded.price, currency = excluded.currency, device = excluded.device, inode = excluded.inode, "
        "mtime_ns = excluded.mtime_ns",
        (*(share[k] for k in _SHARE_COLUMNS), int(time.time())),
    )


# -- the one-time import of a wallet's plain peer files ----------------------------------------------------------------
def import_plain_records(session: Any, folder: Path) -> dict[str, int] | None:
    """Move the plain peer files in ``folder`` into the open vault, then delete them. None when there is nothing
    to import. All or nothing: any damaged part raises :class:`~netpay.errors.MalformedMessage` (code
    ``malformed``, field naming the file) before anything is written, and the files stay where they are."""
    folder = Path(folder)
    if not any((folder / name).exists() for name in PLAIN_FILES):
        return None
    if not session.unlocked:
        raise WalletLocked("the vault is locked: unlock the wallet first")
    key = _read_secret(folder / "vendor_key", "vendor_key")
    access = _read_secret(folder / "access_secret", "access_secret")
    shares = _read_shares(folder / "shares.json")
    tables = _read_tables(folder / "vendor.sqlite3")
    counts = {"shares": len(shares), **{t: len(rows[1]) for t, rows in tables.items()}}
    with session.vault.tx(durable=True) as c:
        if (
            c.execute("SELECT COUNT(*) FROM peer_secrets").fetchone()[0]
            or c.execute("SELECT COUNT(*) FROM peer_payments").fetchone()[0]
        ):
            raise MalformedMessage("the vault already holds a peer's records; the old plain files were left in "
                                   f"{folder} for you to look at", field="peer")  # fmt: skip
        for name, value in (("signing_key", key), ("access_secret", access)):
            if value is not None:
                c.execute("INSERT INTO peer_secrets(name, value) VALUES (?, ?)", (name, value))
        for share in shares:
            _insert_share(c, share)
        for table in PEER_TABLES:  # parents first: chains and payments before the spends that name them
            if table not in tables:
                continue
            columns, rows = tables[table]
            marks = ", ".join("?" for _ in columns)
            c.executemany(f"INSERT INTO peer_{table}({', '.join(columns)}) VALUES ({marks})", rows)
    for name in PLAIN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    return counts


def _read_secret(path: Path, field: str) -> bytes | None:
    if not path.exists():
        return None
    data = path.read_bytes()
    if len(data) != 32:
        raise MalformedMessage(f"{path} is damaged (expected 32 bytes); nothing was imported", field=field)
    return data


def _read_shares(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedMessage(f"{path} is not a share list; nothing was imported", field="shares.json") from None
    if not isinstance(raw, list):
        raise MalformedMessage(f"{path} is not a share list; nothing was imported", field="shares.json")
    out = []
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != set(_SHARE_COLUMNS):
            raise MalformedMessage(f"{path} has an entry that is not a shared file; nothing was imported",
                                   field="shares.json")  # fmt: skip
        ints = ("size", "price", "device", "inode", "mtime_ns")
        texts = ("item_id", "path", "title", "description", "sha256", "currency")
        if not all(type(entry[k]) is int for k in ints) or not all(isinstance(entry[k], str) for k in texts):
            raise MalformedMessage(f"{path} has an entry with a field of the wrong type; nothing was imported",
                                   field="shares.json")  # fmt: skip
        if not _HEX.match(entry["sha256"]) or entry["item_id"] != entry["sha256"][:32] or entry["price"] <= 0:
            raise MalformedMessage(f"{path} has an entry whose id, hash or price is wrong; nothing was imported",
                                   field="shares.json")  # fmt: skip
        if _still_same(entry):  # a file changed or gone since it was shared is not shared again
            out.append(entry)
    return out


def _still_same(entry: dict[str, Any]) -> bool:
    try:
        st = os.stat(entry["path"], follow_symlinks=False)
    except OSError:
        return False
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (entry["device"], entry["inode"], entry["size"],
                                                                   entry["mtime_ns"])  # fmt: skip


def _read_tables(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row of the old desk's tables, after bringing the file to the desk's last schema (read in a copy, so a
    refused import leaves the file as it was)."""
    if not path.exists():
        return {}
    import shutil
    import tempfile

    from vendor_stub.storage import MIGRATIONS

    with tempfile.TemporaryDirectory(prefix=".peer-import-", dir=path.parent) as tmp:
        copy = Path(tmp) / path.name
        for suffix in ("", "-wal"):
            if path.with_name(path.name + suffix).exists():
                shutil.copyfile(path.with_name(path.name + suffix), copy.with_name(copy.name + suffix))
        try:
            conn = sqlite3.connect(str(copy), isolation_level=None)
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version > len(MIGRATIONS) or conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("not a peer database this wallet knows")
                for number in range(version + 1, len(MIGRATIONS) + 1):
                    conn.executescript(MIGRATIONS[number - 1])
                out = {}
                for table in PEER_TABLES:
                    cur = conn.execute(f"SELECT * FROM {table}")
                    out[table] = ([d[0] for d in cur.description], cur.fetchall())
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise MalformedMessage(f"{path} is damaged ({exc}); nothing was imported", field="vendor.sqlite3") from None
    return out


def new_secret() -> bytes:
    return secrets.token_bytes(32)

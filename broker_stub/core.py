"""The running broker: settings, database, signing key, broker id and operator token, shared by every service."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from broker_stub.settings import BrokerSettings
from broker_stub.storage import open_database
from netpay.encoding import canonical_json
from netpay.errors import CurrencyMismatch, IdempotencyConflict, MalformedMessage
from netpay.keys import SigningKey, load_or_create_key
from netpay.money import Money
from netpay_web.db import AnyDatabase

__all__ = [
    "IDEMPOTENCY_KEY_MAX",
    "BrokerCore",
    "check_idempotency_key",
    "load_idempotent",
    "request_hash",
    "save_idempotent",
]


def request_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of a request, to recognise a retried request."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


class BrokerCore:
    """State shared by all services of one broker instance."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.key: SigningKey = load_or_create_key(settings.key_path)
        self.db: AnyDatabase = open_database(settings.database)
        self.broker_id = self._broker_id()
        self.operator_token = self._operator_token()
        self.passwords = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )

    # -- identity -----------------------------------------------------------------------------------------------
    def _broker_id(self) -> str:
        row = self.db.one("SELECT value FROM meta WHERE key = 'broker_id'")
        if row is not None:
            return str(row[0])
        broker_id = self.settings.broker_id or "broker-" + hashlib.sha256(self.key.public.raw).hexdigest()[:12]
        with self.db.tx() as c:
            c.execute("INSERT INTO meta (key, value) VALUES ('broker_id', ?) ON CONFLICT DO NOTHING", (broker_id,))
        row = self.db.one("SELECT value FROM meta WHERE key = 'broker_id'")
        assert row is not None
        return str(row[0])

    def _operator_token(self) -> str:
        path = self.settings.operator_token_path
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, token.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return token

    # -- helpers ------------------------------------------------------------------------------------------------
    def now(self) -> int:
        return int(self.settings.clock())

    def money(self, amount: int) -> Money:
        return Money(amount, self.settings.currency)

    def require_currency(self, amount: Money, field: str) -> None:
        if amount.currency != self.settings.currency:
            raise CurrencyMismatch(
                f"{field} is in {amount.currency}; this broker works in {self.settings.currency}",
                field=field,
                expected=self.settings.currency,
            )

    def close(self) -> None:
        self.db.close()


def load_idempotent(
    conn: sqlite3.Connection, account_id: str, endpoint: str, key: str, req_hash: str
) -> tuple[int, Any] | None:
    """The stored answer to an earlier request with this idempotency key, or None. Other body → conflict."""
    row = conn.execute(
        "SELECT request_hash, status, response FROM idempotency WHERE account_id = ? AND endpoint = ? AND key = ?",
        (account_id, endpoint, key),
    ).fetchone()
    if row is None:
        return None
    if row[0] != req_hash:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request", key=key)
    return int(row[1]), json.loads(row[2])


def save_idempotent(
    conn: sqlite3.Connection, account_id: str, endpoint: str, key: str, req_hash: str, status: int, response: Any
) -> None:
    conn.execute(
        "INSERT INTO idempotency (account_id, endpoint, key, request_hash, status, response) VALUES (?,?,?,?,?,?)",
        (account_id, endpoint, key, req_hash, status, json.dumps(response)),
    )


#: An Idempotency-Key is 1 to IDEMPOTENCY_KEY_MAX printable ASCII characters (space to tilde).
IDEMPOTENCY_KEY_MAX = 128


def check_idempotency_key(key: str | None) -> str:
    if key is None or not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not all(" " <= ch <= "~" for ch in key):
        raise MalformedMessage(
            f"the Idempotency-Key header is required (1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters)",
            field="Idempotency-Key",
        )
    return key

"""The signed, versioned revocation list of chains and vendors. ``serial`` grows with every revocation."""

from __future__ import annotations

import sqlite3
from typing import Any

from broker_stub.core import BrokerCore
from netpay.messages import RevocationList
from netpay.signed import Signed

__all__ = ["RevocationService", "revoke"]


def revoke(conn: sqlite3.Connection, kind: str, ident: str, reason: str, at: int) -> None:
    """Add a chain (hex id) or vendor to the list inside the caller's transaction; already listed is a no-op."""
    conn.execute(
        "INSERT INTO revocations (kind, ident, reason, at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
        (kind, ident, reason, at),
    )
    if kind == "chain":
        conn.execute("UPDATE chains SET revoked = 1 WHERE chain_id = ?", (ident,))
    else:
        conn.execute("UPDATE vendors SET revoked = 1 WHERE vendor_id = ?", (ident,))


class RevocationService:
    """Builds and signs the current revocation list."""

    def __init__(self, core: BrokerCore) -> None:
        self.core = core
        self._cache: tuple[int, dict[str, Any]] | None = None

    def current(self) -> dict[str, Any]:
        rows = self.core.db.query("SELECT serial, kind, ident FROM revocations ORDER BY serial")
        serial = rows[-1][0] if rows else 0
        if self._cache is not None and self._cache[0] == serial:
            return self._cache[1]
        body = RevocationList(
            broker_id=self.core.broker_id,
            serial=serial,
            issued_at=self.core.now(),
            chains=tuple(bytes.fromhex(r[2]) for r in rows if r[1] == "chain"),
            vendors=tuple(r[2] for r in rows if r[1] == "vendor"),
        )
        wire = Signed.sign(body, self.core.key).to_wire()
        self._cache = (serial, wire)
        return wire

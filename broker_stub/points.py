"""Verified payword points per chain: the cache that makes the broker hash every part of a chain at most once.

Each chain starts with one point, (0, W_0). Verifying W_t walks from W_t down to the nearest verified point below t
(``t - k`` hashes) and stores (t, W_t), so a later claim above t starts from there.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import struct

from netpay.chain import DOMAIN
from netpay.errors import InvalidPayword

__all__ = ["known_point", "verify_point", "walk"]

#: u32be(i) for every position used so far, so a step costs no struct.pack (grown on demand).
_INDEX: list[bytes] = []


def _index_bytes(upto: int) -> list[bytes]:
    if len(_INDEX) < upto:
        _INDEX.extend(struct.pack(">I", i) for i in range(len(_INDEX), upto))
    return _INDEX


def walk(chain_id: bytes, value: bytes, high: int, low: int) -> bytes:
    """W_low from W_high = ``value``; the same function as :meth:`netpay.chain.ChainHasher.walk`, with the index
    encodings precomputed (this loop is the whole cost of redemption)."""
    copy = hashlib.sha256(DOMAIN + chain_id).copy
    index = _index_bytes(high)
    for i in range(high - 1, low - 1, -1):
        h = copy()
        h.update(index[i] + value)
        value = h.digest()
    return value


def known_point(conn: sqlite3.Connection, chain_id: str, index: int) -> tuple[int, bytes]:
    """The highest verified point at or below ``index``."""
    row = conn.execute(
        "SELECT idx, payword FROM chain_points WHERE chain_id = ? AND idx <= ? ORDER BY idx DESC LIMIT 1",
        (chain_id, index),
    ).fetchone()
    return int(row[0]), bytes(row[1])


def verify_point(conn: sqlite3.Connection, chain_id: str, index: int, payword: bytes) -> bool:
    """Check that ``payword`` is W_index of the chain; store it. Returns True when it was new (hashes spent)."""
    k, value = known_point(conn, chain_id, index)
    if k == index:
        if not hmac.compare_digest(value, payword):
            raise InvalidPayword(f"payword at index {index} does not match the verified one", index=index)
        return False
    computed = walk(bytes.fromhex(chain_id), payword, index, k)
    if not hmac.compare_digest(computed, value):
        raise InvalidPayword(f"payword at index {index} does not hash back to index {k}", index=index)
    conn.execute("INSERT INTO chain_points (chain_id, idx, payword) VALUES (?,?,?)", (chain_id, index, payword))
    return True

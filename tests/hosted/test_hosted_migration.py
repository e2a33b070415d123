"""Broker migration 7: custody rows that hosted grants wrote before grants were custody windows (open, no upper bound)
get their grant's bounds, so the one window rule pays their coins as it pays new ones."""

from __future__ import annotations

from pathlib import Path

from broker_stub.storage import MIGRATIONS, open_database
from netpay_web.db import open_db
from tests.support.postgres import database_url_for, postgres_enabled


def test_windows_of_earlier_grants_get_their_bounds(tmp_path: Path) -> None:
    target: Path | str = database_url_for(tmp_path) if postgres_enabled() else tmp_path / "broker.sqlite3"
    old = open_db(target, MIGRATIONS[:6])
    with old.tx() as c:
        c.execute("INSERT INTO accounts VALUES ('acc', 'alice', 'x', 0)")
        c.execute("INSERT INTO hosted_chains (chain_id, account_id, seed_nonce, seed_sealed, free_index, created_at) "
                  "VALUES ('aa', 'acc', ?, ?, 40, 0)", (b"n", b"s"))  # fmt: skip
        grants = [("g1", "news", 0, 30, "ended", 3, 1), ("g2", "cards", 3, 33, "ended", 33, 2),
                  ("g3", "news", 33, 53, "active", None, 3)]  # fmt: skip
        for gid, vendor, lo, hi, status, end, at in grants:
            c.execute("INSERT INTO hosted_grants (grant_id, account_id, vendor_id, chain_id, from_index, to_index, "
                      "coin_value, issued_at, expires_at, status, end_index, wire) VALUES (?,?,?,?,?,?,1,?,9,?,?,'{}')",
                      (gid, "acc", vendor, "aa", lo, hi, at, status, end))  # fmt: skip
            c.execute("INSERT INTO custody (chain_id, seq, vendor_id, claimed_at, lower_index) VALUES (?,?,?,?,?)",
                      ("aa", at, vendor, at, lo))  # fmt: skip
        c.execute("INSERT INTO custody (chain_id, seq, vendor_id, claimed_at, lower_index) VALUES ('bb', 1, 'x', 0, 0)")
    old.close()
    db = open_database(target)
    try:
        rows = db.query("SELECT chain_id, seq, lower_index, lower_source, upper_index, upper_source FROM custody "
                        "ORDER BY chain_id, seq")  # fmt: skip
        assert [tuple(r) for r in rows] == [
            ("aa", 1, 0, "grant", 3, "release"),  # ended with its shop's release at 3
            ("aa", 2, 3, "grant", 33, "grant"),  # ended without a release: the top of its slice
            ("aa", 3, 33, "grant", 53, "grant"),  # active
            ("bb", 1, 0, "reported", None, None),  # not a hosted chain: as it was
        ]
    finally:
        db.close()

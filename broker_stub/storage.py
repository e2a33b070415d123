"""The broker's SQLite schema (numbered migrations) and how to open it.

One file in the data dir, WAL, synchronous=FULL (see :class:`netpay_web.sqlite.Database`). Ids of chains are
lowercase hex text; paywords are 32-byte blobs; money is integer minor units in the broker's one currency.
"""

from __future__ import annotations

from pathlib import Path

from netpay_web.sqlite import Database

__all__ = ["MIGRATIONS", "open_database"]

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL);
CREATE TABLE idempotency (
    account_id TEXT NOT NULL, endpoint TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
    status INTEGER NOT NULL, response TEXT NOT NULL, PRIMARY KEY (account_id, endpoint, key));
CREATE TABLE topups (
    topup_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts, amount INTEGER NOT NULL,
    card_last4 TEXT NOT NULL, charge_id TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE chains (
    chain_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts, touchstone BLOB NOT NULL,
    length INTEGER NOT NULL, coin_value INTEGER NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    certificate TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active', custodian TEXT,
    reported_index INTEGER NOT NULL DEFAULT 0, reported_payword BLOB NOT NULL,
    closing_since INTEGER, final_index INTEGER, refund INTEGER, closed_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX chains_by_account ON chains (account_id);
CREATE TABLE chain_points (
    chain_id TEXT NOT NULL, idx INTEGER NOT NULL, payword BLOB NOT NULL, PRIMARY KEY (chain_id, idx))
    WITHOUT ROWID;
CREATE TABLE vendors (
    vendor_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, public_key TEXT NOT NULL, origins TEXT NOT NULL,
    api_url TEXT NOT NULL, payment_url TEXT NOT NULL, certificate TEXT NOT NULL, registered_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE custody (
    chain_id TEXT NOT NULL, seq INTEGER NOT NULL, vendor_id TEXT NOT NULL, claimed_at INTEGER NOT NULL,
    lower_index INTEGER NOT NULL, PRIMARY KEY (chain_id, seq));
CREATE TABLE nonces (vendor_id TEXT NOT NULL, nonce TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (vendor_id, nonce)) WITHOUT ROWID;
CREATE TABLE spend_reports (
    vendor_id TEXT NOT NULL, report_id TEXT NOT NULL, request_hash TEXT NOT NULL, response TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (vendor_id, report_id));
CREATE TABLE batches (
    vendor_id TEXT NOT NULL, batch_id TEXT NOT NULL, request_hash TEXT NOT NULL, response TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (vendor_id, batch_id));
CREATE TABLE redeemed (
    chain_id TEXT NOT NULL, from_index INTEGER NOT NULL, to_index INTEGER NOT NULL, vendor_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, amount INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (chain_id, from_index))
    WITHOUT ROWID;
CREATE TABLE releases (
    chain_id TEXT NOT NULL, released_by TEXT NOT NULL, released_to TEXT NOT NULL, last_index INTEGER NOT NULL,
    wire TEXT NOT NULL, PRIMARY KEY (chain_id, released_by, last_index));
CREATE TABLE double_spends (
    id INTEGER PRIMARY KEY, chain_id TEXT NOT NULL, vendor_id TEXT NOT NULL, from_index INTEGER NOT NULL,
    to_index INTEGER NOT NULL, evidence TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE payouts (
    payout_id TEXT PRIMARY KEY, vendor_id TEXT NOT NULL, amount INTEGER NOT NULL, bank_ref TEXT NOT NULL,
    at INTEGER NOT NULL);
CREATE TABLE revocations (
    serial INTEGER PRIMARY KEY, kind TEXT NOT NULL, ident TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL,
    UNIQUE (kind, ident));
CREATE TABLE ledger_txns (
    txn_id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
    description TEXT NOT NULL);
CREATE TABLE ledger_entries (
    txn_id INTEGER NOT NULL REFERENCES ledger_txns, account TEXT NOT NULL, sub TEXT NOT NULL DEFAULT '',
    amount INTEGER NOT NULL);
CREATE INDEX ledger_by_account ON ledger_entries (account, sub);
CREATE INDEX ledger_by_txn ON ledger_entries (txn_id);
"""

# Cash-outs: the account balance paid back to a card that paid into the account. ``card_hash`` (a keyed hash of
# the card number, never the number) lets the broker check that a cash-out goes back to a card that topped up.
_V2 = """
ALTER TABLE topups ADD COLUMN card_hash TEXT;
CREATE TABLE cashouts (
    cashout_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts, amount INTEGER NOT NULL,
    card_last4 TEXT NOT NULL, credit_id TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX cashouts_by_account ON cashouts (account_id);
"""

# P2P (issue 20): the broker as the Central Indexing Server. A peer is also a row of ``vendors`` (so custody,
# redemption and certificates work unchanged); ``peers`` ties it to the customer account that runs it and records
# when it last answered; ``peer_listings`` are the files it offers. Portable SQL (PostgreSQL support in parallel).
_V3 = """
CREATE TABLE peers (
    peer_id TEXT PRIMARY KEY, account_id TEXT NOT NULL UNIQUE REFERENCES accounts, registered_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL);
CREATE TABLE peer_listings (
    peer_id TEXT NOT NULL REFERENCES peers, item_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, price INTEGER NOT NULL, listed_at INTEGER NOT NULL,
    PRIMARY KEY (peer_id, item_id));
CREATE INDEX peer_listings_by_title ON peer_listings (title);
"""

#: Migration i (1-based) brings the schema to version i. Append only; never edit a released one.
MIGRATIONS: list[str] = [_V1, _V2, _V3]


def open_database(path: Path) -> Database:
    """Open (creating and migrating as needed) the broker database at ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Database(path, MIGRATIONS)

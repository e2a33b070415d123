"""The broker's schema (numbered migrations, one text for SQLite and PostgreSQL) and how to open it.

By default one SQLite file in the data dir, WAL, synchronous=FULL (see :class:`netpay_web.sqlite.Database`); with a
``postgresql://`` URL the same migrations on PostgreSQL (:mod:`netpay_web.postgres`, which maps BLOB → BYTEA,
INTEGER → BIGINT and a rowid key → BIGSERIAL). Ids of chains are
lowercase hex text; paywords are 32-byte blobs; money is integer minor units in the broker's one currency.
"""

from __future__ import annotations

from pathlib import Path

from netpay_web.db import AnyDatabase, open_db

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

# Refunds a shop granted (broker_stub.refunds): one per (shop, refund) and one per (shop, receipt).
_V3 = """
CREATE TABLE refunds (
    vendor_id TEXT NOT NULL, refund_id TEXT NOT NULL, receipt_id TEXT NOT NULL, amount INTEGER NOT NULL,
    request_hash TEXT NOT NULL, response TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (vendor_id, refund_id),
    UNIQUE (vendor_id, receipt_id));
"""

# Hosted e-wallets (Mobile-NetPay): chains the broker generates and keeps for an account (seed sealed with AES-GCM
# under a key file in the data dir), one-use authorization codes (only their hash kept), and grants: slices of a
# hosted chain handed to a vendor. ``free_index``: coins above it have never been handed out.
_V4 = """
CREATE TABLE hosted_chains (
    chain_id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts, seed_nonce BLOB NOT NULL,
    seed_sealed BLOB NOT NULL, free_index INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE INDEX hosted_chains_by_account ON hosted_chains (account_id);
CREATE TABLE hosted_codes (
    code_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, vendor_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL, budget INTEGER NOT NULL, duration_s INTEGER NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, used_at INTEGER);
CREATE TABLE hosted_grants (
    grant_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, vendor_id TEXT NOT NULL, chain_id TEXT NOT NULL,
    from_index INTEGER NOT NULL, to_index INTEGER NOT NULL, coin_value INTEGER NOT NULL, issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'active', end_index INTEGER, ended_at INTEGER,
    end_reason TEXT, wire TEXT NOT NULL);
CREATE INDEX hosted_grants_by_account ON hosted_grants (account_id);
CREATE INDEX hosted_grants_by_chain ON hosted_grants (chain_id, status);
"""

# 5: custody windows (each custodian's lower and upper index, and where each came from), claims refused for coins
# outside the claimant's windows (the signed batch kept as evidence), and custody overlaps charged to the account that
# bought the chain. Plain ALTER TABLE ... ADD COLUMN and CREATE TABLE, portable to PostgreSQL.
_V5 = """
ALTER TABLE custody ADD COLUMN lower_source TEXT NOT NULL DEFAULT 'reported';
ALTER TABLE custody ADD COLUMN upper_index INTEGER;
ALTER TABLE custody ADD COLUMN upper_source TEXT;
CREATE TABLE refused_claims (
    id INTEGER PRIMARY KEY, chain_id TEXT NOT NULL, vendor_id TEXT NOT NULL, batch_id TEXT NOT NULL,
    from_index INTEGER NOT NULL, to_index INTEGER NOT NULL, reason TEXT NOT NULL, evidence TEXT NOT NULL,
    request TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX refused_claims_by_chain ON refused_claims (chain_id);
CREATE TABLE custody_overlaps (
    id INTEGER PRIMARY KEY, chain_id TEXT NOT NULL, account_id TEXT NOT NULL, vendor_id TEXT NOT NULL,
    batch_id TEXT NOT NULL, from_index INTEGER NOT NULL, to_index INTEGER NOT NULL, amount INTEGER NOT NULL,
    evidence TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX custody_overlaps_by_account ON custody_overlaps (account_id);
"""

# P2P (issue 20): the broker as the Central Indexing Server. A peer is also a row of ``vendors`` (so custody,
# redemption and certificates work unchanged); ``peers`` ties it to the customer account that runs it and records
# when it last answered; ``peer_listings`` are the files it offers. Portable SQL (PostgreSQL support in parallel).
_V6 = """
CREATE TABLE peers (
    peer_id TEXT PRIMARY KEY, account_id TEXT NOT NULL UNIQUE REFERENCES accounts, registered_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL);
CREATE TABLE peer_listings (
    peer_id TEXT NOT NULL REFERENCES peers, item_id TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, price INTEGER NOT NULL, listed_at INTEGER NOT NULL,
    PRIMARY KEY (peer_id, item_id));
CREATE INDEX peer_listings_by_title ON peer_listings (title);
"""

# Hosted grants are custody windows (broker_stub.windows): windows a grant opened before this migration get the
# grant's bounds, both hard (lower ``grant``; upper the top of an active grant, or where an ended one ended: its
# vendor's release, or the top of the slice). Written before windows had upper bounds, they were all left open.
_V7 = """
UPDATE custody SET lower_source = 'grant',
    upper_index = (SELECT CASE WHEN g.status = 'active' OR g.end_index IS NULL THEN g.to_index ELSE g.end_index END
        FROM hosted_grants g WHERE g.chain_id = custody.chain_id AND g.vendor_id = custody.vendor_id
        AND g.from_index = custody.lower_index ORDER BY g.issued_at DESC LIMIT 1),
    upper_source = (SELECT CASE WHEN g.status = 'active' OR g.end_index IS NULL OR g.end_index = g.to_index
        THEN 'grant' ELSE 'release' END
        FROM hosted_grants g WHERE g.chain_id = custody.chain_id AND g.vendor_id = custody.vendor_id
        AND g.from_index = custody.lower_index ORDER BY g.issued_at DESC LIMIT 1)
WHERE chain_id IN (SELECT chain_id FROM hosted_chains);
"""

#: Migration i (1-based) brings the schema to version i. Append only; never edit a released one.
MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7]


def open_database(target: Path | str) -> AnyDatabase:
    """Open (creating and migrating as needed) the broker database: a SQLite file path or a PostgreSQL URL."""
    return open_db(target, MIGRATIONS)

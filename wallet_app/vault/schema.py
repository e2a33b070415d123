"""Numbered vault migrations. Migration i (1-based) runs once, in one transaction that also sets
``PRAGMA user_version = i``; a vault with a higher user_version than this list is refused (written by a newer wallet).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

_V1 = """
CREATE TABLE brokers (
    broker_id TEXT PRIMARY KEY, url TEXT NOT NULL, name TEXT NOT NULL, public_key TEXT NOT NULL,
    info_json TEXT NOT NULL, trusted INTEGER NOT NULL DEFAULT 0, added_at INTEGER NOT NULL
);
CREATE TABLE accounts (
    broker_id TEXT PRIMARY KEY REFERENCES brokers(broker_id), username TEXT NOT NULL, password TEXT NOT NULL,
    account_id TEXT, token TEXT, token_expires_at INTEGER
);
CREATE TABLE chains (
    chain_id TEXT PRIMARY KEY, broker_id TEXT NOT NULL, length INTEGER NOT NULL,
    coin_amount INTEGER NOT NULL, currency TEXT NOT NULL, seed BLOB NOT NULL, traversal BLOB NOT NULL,
    position INTEGER NOT NULL, certificate_json TEXT, idempotency_key TEXT NOT NULL, request_json TEXT NOT NULL,
    status TEXT NOT NULL, holder TEXT, needs_resync INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0, refund_amount INTEGER
);
CREATE TABLE spends (
    payment_id TEXT PRIMARY KEY, quote_id TEXT NOT NULL, quote_digest TEXT NOT NULL, vendor_id TEXT NOT NULL,
    vendor_name TEXT NOT NULL, vendor_key TEXT NOT NULL, payment_url TEXT NOT NULL, item_url TEXT NOT NULL,
    title TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, via TEXT NOT NULL, origin TEXT,
    payment_json TEXT NOT NULL, status TEXT NOT NULL, receipt_json TEXT, access_token TEXT, error_code TEXT,
    api_url_json TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX spends_quote ON spends(vendor_id, quote_id) WHERE status IN ('pending', 'settled');
CREATE TABLE spend_segments (
    payment_id TEXT NOT NULL REFERENCES spends(payment_id), chain_id TEXT NOT NULL REFERENCES chains(chain_id),
    from_index INTEGER NOT NULL, to_index INTEGER NOT NULL, vendor_id TEXT NOT NULL,
    rewound INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (payment_id, chain_id)
);
CREATE INDEX spend_segments_chain ON spend_segments(chain_id);
CREATE TABLE allowances (
    vendor_id TEXT PRIMARY KEY, vendor_name TEXT NOT NULL, max_amount INTEGER NOT NULL,
    daily_amount INTEGER NOT NULL, currency TEXT NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE revocations (
    broker_id TEXT PRIMARY KEY, serial INTEGER NOT NULL, list_json TEXT NOT NULL, fetched_at INTEGER NOT NULL
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, kind TEXT NOT NULL, detail_json TEXT NOT NULL
)
"""

# Indexes so that no hot query reads whole spend rows. A spend's payment_json (a few KB) sits in overflow pages
# *before* status, created_at and the rest, so scanning spends for those columns decrypts every overflow page of
# every spend: with 3,000 spends, choosing chains or checking an allowance took ~30 ms each; with these, ~0.02 ms
# and ~0.3 ms. ``spends_status`` also serves the (status, payment_id) look-ups of the balance sums.
_V2 = """
CREATE INDEX spends_status ON spends(status, payment_id);
CREATE INDEX spends_allowance_day ON spends(vendor_id, via, created_at, status, currency, amount);
CREATE INDEX spends_created ON spends(created_at)
"""

# Intents: the durable record of a write whose table updates are applied a moment later (see
# ``Vault.journal``). A payment's intent is one small row, so its fsync'd commit writes one page instead of the dozen
# that the spend, its segments, the chain and five indexes dirty; those follow in the next, unsynced transaction.
# ``chains_resync``: every payment asks whether a chain of its broker awaits a resync; with this index the answer no
# longer reads each chain row (seed, traversal, certificate).
_V3 = """
CREATE TABLE intents (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL);
CREATE INDEX chains_resync ON chains(broker_id) WHERE needs_resync = 1
"""

# The broker accounts as last fetched (balance, statement, the account's chains), so the window shows them at once and
# offline; ``recoveries``: chains bought on the account that this wallet does not hold (a lost or older wallet),
# handed back to the broker by the Recover flow, until the broker has closed them.
_V4 = """
CREATE TABLE broker_accounts (
    broker_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, currency TEXT NOT NULL, statement_json TEXT NOT NULL,
    chains_json TEXT NOT NULL, fetched_at INTEGER NOT NULL
);
CREATE TABLE recoveries (
    chain_id TEXT PRIMARY KEY, broker_id TEXT NOT NULL, length INTEGER NOT NULL, coin_amount INTEGER NOT NULL,
    currency TEXT NOT NULL, custodian TEXT, reported_index INTEGER NOT NULL, status TEXT NOT NULL,
    refund_amount INTEGER, started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
)
"""

# Custody refusals (issue 14): a vendor that refused a chain for custody (``custody_conflict``, ``revoked``) with a
# signed refusal is never offered that chain again. Keyed by vendor first: choosing chains asks "which chains did
# this vendor refuse?" on every payment.
_V5 = """
CREATE TABLE chain_refusals (
    vendor_id TEXT NOT NULL, chain_id TEXT NOT NULL, code TEXT NOT NULL, payment_id TEXT NOT NULL,
    at INTEGER NOT NULL, PRIMARY KEY (vendor_id, chain_id)
)
"""

# Refund requests (issue 21): one per purchase, with the shop's signed decision and whether the broker credited it.
_V6 = """
CREATE TABLE refund_requests (
    payment_id TEXT PRIMARY KEY REFERENCES spends(payment_id), refund_id TEXT NOT NULL, vendor_id TEXT NOT NULL,
    vendor_name TEXT NOT NULL, title TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
    reason TEXT NOT NULL, status TEXT NOT NULL, credit TEXT, decision_json TEXT, requested_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
)
"""

# Subscriptions (issue 21): a time pass renewed under a cap per renewal until cancelled.
_V7 = """
CREATE TABLE subscriptions (
    subscription_id TEXT PRIMARY KEY, vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL, api_url_json TEXT NOT NULL,
    item_id TEXT NOT NULL, title TEXT NOT NULL, price INTEGER NOT NULL, max_price INTEGER NOT NULL,
    currency TEXT NOT NULL, renews_at INTEGER NOT NULL, status TEXT NOT NULL, note TEXT NOT NULL,
    renewals INTEGER NOT NULL, last_payment_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
)
"""

# Metered sessions (issue 21, seed 000): one per session the customer approved; its units are ordinary spends
# (quote id ``<session>.<n>``, via 'metered'), the first the approved purchase itself.
_V8 = """
CREATE TABLE metered_sessions (
    session_id TEXT PRIMARY KEY, vendor_id TEXT NOT NULL, vendor_name TEXT NOT NULL, api_url_json TEXT NOT NULL,
    origin TEXT NOT NULL, item_id TEXT NOT NULL, title TEXT NOT NULL, unit TEXT NOT NULL, unit_s INTEGER,
    unit_amount INTEGER NOT NULL, currency TEXT NOT NULL, cap_units INTEGER NOT NULL, units_paid INTEGER NOT NULL,
    status TEXT NOT NULL, end_reason TEXT NOT NULL, access_token TEXT NOT NULL, approved_via TEXT NOT NULL,
    opening_payment_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
)
"""

# P2P-NetPay selling (issue 20) in the vault instead of plain files beside it: the files the user shares
# (``peer_shares``), the peer's signing key and access-token secret (``peer_secrets``), and the tables of the vendor
# desk that serves them -- vendor_stub's schema (its migrations 1-4) with every name prefixed ``peer_``
# (wallet_app.peer.vaultdb maps the desk's SQL onto them): what it sold, its receipts, the coins it took and their
# redemption. As a buyer, ``peer_downloads`` remembers which quote paid for which peer's file (the receipt itself is
# the spend's), so a broken download resumes without paying twice.
_V9 = """
CREATE TABLE peer_shares (
    item_id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, price INTEGER NOT NULL, currency TEXT NOT NULL,
    device INTEGER NOT NULL, inode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, added_at INTEGER NOT NULL
);
CREATE TABLE peer_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE peer_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE peer_chains (
    chain_id TEXT PRIMARY KEY, certificate TEXT NOT NULL, coin_value INTEGER NOT NULL, currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('held', 'released', 'closed')), base_index INTEGER NOT NULL,
    base_payword TEXT NOT NULL,
    base_source TEXT NOT NULL CHECK (base_source IN ('touchstone', 'release', 'lower_bound')),
    base_release TEXT, previous_vendor TEXT, last_index INTEGER NOT NULL, last_payword TEXT NOT NULL,
    exact INTEGER NOT NULL, acquired_at INTEGER NOT NULL, released_to TEXT, release TEXT, released_at INTEGER,
    custody_window INTEGER NOT NULL DEFAULT 0, custody_grant TEXT
);
CREATE TABLE peer_payments (
    payment_id TEXT PRIMARY KEY, quote_id TEXT NOT NULL UNIQUE, request_digest TEXT NOT NULL,
    item_id TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, receipt TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE peer_spends (
    spend_id INTEGER PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES peer_payments(payment_id),
    chain_id TEXT NOT NULL REFERENCES peer_chains(chain_id), from_index INTEGER NOT NULL, to_index INTEGER NOT NULL,
    payword TEXT NOT NULL, coins INTEGER NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
    created_at INTEGER NOT NULL, reported_at INTEGER,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'submitted', 'redeemed', 'rejected')),
    batch_id TEXT, reason TEXT, evidence TEXT, settled_at INTEGER,
    UNIQUE (chain_id, to_index), CHECK (from_index < to_index)
);
CREATE INDEX peer_spends_unreported ON peer_spends(spend_id) WHERE reported_at IS NULL;
CREATE INDEX peer_spends_status ON peer_spends(status);
CREATE TABLE peer_batches (
    batch_id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done')), result TEXT, processed_at INTEGER
);
CREATE TABLE peer_api_uses (receipt_id TEXT PRIMARY KEY, resource TEXT NOT NULL, used_at INTEGER NOT NULL);
CREATE TABLE peer_refunds (
    refund_id TEXT PRIMARY KEY, receipt_id TEXT NOT NULL UNIQUE, receipt_digest TEXT NOT NULL, receipt TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused')), decision TEXT,
    requested_at INTEGER NOT NULL, decided_at INTEGER, credited_at INTEGER
);
CREATE INDEX peer_refunds_uncredited ON peer_refunds(status, credited_at);
CREATE TABLE peer_opened (receipt_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE peer_downloads (
    peer_id TEXT NOT NULL, item_id TEXT NOT NULL, quote_id TEXT NOT NULL, listing_json TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (peer_id, item_id)
)
"""

# The vendor desk's migration 5 (metered sessions, one-time access codes) mirrored for the peer's desk, as in V9.
_V10 = """
CREATE TABLE peer_metered_sessions (
    session_id TEXT PRIMARY KEY, item_id TEXT NOT NULL, unit_amount INTEGER NOT NULL, currency TEXT NOT NULL,
    cap_units INTEGER NOT NULL, units_paid INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'ended')),
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, CHECK (units_paid <= cap_units)
);
CREATE TABLE peer_access_codes (code_hash TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at INTEGER NOT NULL);
"""

# The vendor desk's migration 6 (hosted e-wallet authorizations and grants) mirrored for the peer's desk, as in V9.
_V11 = """
CREATE TABLE peer_hosted_pending (
    state_hash TEXT PRIMARY KEY, verifier TEXT NOT NULL, item_id TEXT NOT NULL, expires_at INTEGER NOT NULL
);
CREATE TABLE peer_hosted_grants (
    grant_id TEXT PRIMARY KEY, chain_id TEXT NOT NULL, from_index INTEGER NOT NULL, to_index INTEGER NOT NULL,
    expires_at INTEGER NOT NULL, grant_wire TEXT NOT NULL, session_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'ended')), accepted_at INTEGER NOT NULL,
    CHECK (from_index < to_index)
);
CREATE INDEX peer_hosted_grants_by_chain ON peer_hosted_grants(chain_id, status);
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11]

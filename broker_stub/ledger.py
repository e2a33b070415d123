"""The broker's double-entry ledger.

Every money movement is one transaction whose entries sum to zero, written with :func:`post` inside the same database
transaction as the state change it records (SQLite or PostgreSQL: the SQL is the same). Entries are signed:
positive = debit, negative = credit.

Accounts (``sub`` names the customer account or vendor where it matters):

- ``card_clearing`` (asset): money received from the test card processor.
- ``customer_funds`` (liability, per account): what the broker owes customers; their balance.
- ``coins_outstanding`` (liability): face value of issued coins not yet redeemed or refunded.
- ``vendor_payables`` (liability, per vendor): redeemed coins not yet paid out.
- ``fees`` (revenue): the redemption fee kept by the broker.
- ``payouts`` (asset outflow): money sent to vendors' (test) bank accounts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ACCOUNTS", "Leg", "TrialBalance", "UnbalancedTransaction", "balance_of", "post", "trial_balance"]

ACCOUNTS = ("card_clearing", "customer_funds", "coins_outstanding", "vendor_payables", "fees", "payouts")


class UnbalancedTransaction(RuntimeError):
    """A programming error: a ledger transaction whose entries do not sum to zero."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One entry: ``amount`` > 0 debits ``account``, < 0 credits it."""

    account: str
    amount: int
    sub: str = ""


def post(conn: sqlite3.Connection, at: int, kind: str, ref: str, description: str, legs: Sequence[Leg]) -> int:
    """Write one balanced transaction; raise :class:`UnbalancedTransaction` (rolling back the caller) if not."""
    if sum(leg.amount for leg in legs) != 0 or not legs:
        raise UnbalancedTransaction(f"{kind} {ref} does not balance")
    for leg in legs:
        if leg.account not in ACCOUNTS:
            raise UnbalancedTransaction(f"unknown ledger account {leg.account}")
    row = conn.execute(
        "INSERT INTO ledger_txns (at, kind, ref, description) VALUES (?, ?, ?, ?) RETURNING txn_id",
        (at, kind, ref, description),
    ).fetchone()
    txn_id = int(row[0])
    conn.executemany(
        "INSERT INTO ledger_entries (txn_id, account, sub, amount) VALUES (?, ?, ?, ?)",
        [(txn_id, leg.account, leg.sub, leg.amount) for leg in legs if leg.amount],
    )
    return txn_id


def balance_of(conn: sqlite3.Connection, account: str, sub: str | None = None) -> int:
    """Debit-positive balance of an account (of one sub-account when ``sub`` is given)."""
    if sub is None:
        row = conn.execute("SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = ?", (account,))
    else:
        row = conn.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = ? AND sub = ?", (account, sub)
        )
    return int(row.fetchone()[0])


@dataclass(frozen=True, slots=True)
class TrialBalance:
    """Per-account debit-positive totals; ``balanced`` when they sum to zero and every transaction does."""

    accounts: dict[str, int]
    total: int
    unbalanced_txns: list[int]
    transactions: int

    @property
    def balanced(self) -> bool:
        return self.total == 0 and not self.unbalanced_txns


def trial_balance(conn: sqlite3.Connection) -> TrialBalance:
    accounts = dict.fromkeys(ACCOUNTS, 0)
    for row in conn.execute("SELECT account, SUM(amount) FROM ledger_entries GROUP BY account"):
        accounts[row[0]] = int(row[1])
    bad = [
        int(r[0])
        for r in conn.execute("SELECT txn_id FROM ledger_entries GROUP BY txn_id HAVING SUM(amount) != 0 LIMIT 100")
    ]
    count = int(conn.execute("SELECT COUNT(*) FROM ledger_txns").fetchone()[0])
    return TrialBalance(accounts, sum(accounts.values()), bad, count)

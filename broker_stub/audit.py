"""The audit: trial balance of the ledger plus the invariants that tie it to the broker's records.

Checks: every ledger transaction sums to zero and so do all accounts; coins issued = redeemed + refunded +
outstanding (face values, from the chain records) and outstanding equals the ledger's ``coins_outstanding``; no
coin is paid twice (no two redeemed ranges of a chain overlap); no chain has more coins redeemed plus refunded than
it holds, nor a redeemed coin above its final index; no customer balance is negative except by a custody-overlap
charge; every custody overlap paid to a vendor was charged to the buyer's account.
"""

from __future__ import annotations

from typing import Any

from broker_stub.core import BrokerCore
from broker_stub.ledger import trial_balance

__all__ = ["audit_report"]


def audit_report(core: BrokerCore) -> dict[str, Any]:
    """The trial balance and invariant checks as JSON; ``balanced`` is True only if everything holds."""
    with core.db.tx() as conn:
        if getattr(conn, "engine", "sqlite") == "postgresql":  # one snapshot for every figure below
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tb = trial_balance(conn)
        issued = int(conn.execute("SELECT COALESCE(SUM(length * coin_value), 0) FROM chains").fetchone()[0])
        redeemed = int(conn.execute("SELECT COALESCE(SUM(amount), 0) FROM redeemed").fetchone()[0])
        refunded = int(conn.execute("SELECT COALESCE(SUM(refund), 0) FROM chains").fetchone()[0])
        overlaps = int(
            conn.execute(
                "SELECT COUNT(*) FROM redeemed a JOIN redeemed b ON a.chain_id = b.chain_id "
                "AND a.from_index < b.from_index AND b.from_index < a.to_index"
            ).fetchone()[0]
        )
        beyond = int(
            conn.execute(
                "SELECT COUNT(*) FROM redeemed r JOIN chains c ON c.chain_id = r.chain_id "
                "WHERE c.final_index IS NOT NULL AND r.to_index > c.final_index"
            ).fetchone()[0]
        )
        overdrawn = int(
            conn.execute(
                "SELECT COUNT(*) FROM chains c WHERE COALESCE((SELECT SUM(to_index - from_index) FROM redeemed r "
                "WHERE r.chain_id = c.chain_id), 0) + COALESCE(c.length - c.final_index, 0) > c.length"
            ).fetchone()[0]
        )
        negative = int(
            conn.execute(
                "SELECT COUNT(*) FROM (SELECT sub, SUM(amount) AS s FROM ledger_entries "
                "WHERE account = 'customer_funds' GROUP BY sub) AS balances WHERE s > 0 "
                "AND sub NOT IN (SELECT account_id FROM custody_overlaps)"
            ).fetchone()[0]
        )
        overlap_coins = int(conn.execute("SELECT COALESCE(SUM(amount), 0) FROM custody_overlaps").fetchone()[0])
        overlap_charged = int(
            conn.execute(
                "SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e JOIN ledger_txns t ON t.txn_id = e.txn_id "
                "WHERE t.kind = 'custody_overlap' AND e.account = 'customer_funds'"
            ).fetchone()[0]
        )
    outstanding = -tb.accounts["coins_outstanding"]
    checks = {
        "ledger_balanced": tb.balanced,
        "coins_conserved": issued + overlap_charged == redeemed + overlap_coins + refunded + outstanding,
        "no_coin_paid_twice": overlaps == 0,
        "no_refunded_coin_redeemed": beyond == 0,
        "no_chain_overdrawn": overdrawn == 0,
        "no_negative_customer_balance": negative == 0,
        "overlaps_charged": overlap_coins == overlap_charged,
    }
    return {
        "balanced": all(checks.values()),
        "currency": core.settings.currency,
        "accounts": tb.accounts,
        "total": tb.total,
        "transactions": tb.transactions,
        "unbalanced_transactions": tb.unbalanced_txns,
        "coins": {
            "issued": issued,
            "redeemed": redeemed,
            "refunded": refunded,
            "outstanding": outstanding,
            "overlaps_paid": overlap_coins,
            "overlaps_charged": overlap_charged,
        },
        "checks": checks,
    }

"""Redemption: verify vendors' claims, pay each coin inside the claimant's custody windows, charge overlaps.

A batch is one SQLite transaction and one ledger transaction. Each claim is checked in order: the chain exists and
the claim is within its length; the vendor has held custody of it; an attached release is genuine and fits the
chain's custody (it bounds the windows of its hand-off); the coins were not refunded by a close; the payword hashes
back to the nearest verified point below it (:mod:`broker_stub.points`); the claim lies inside the vendor's own
custody windows (:mod:`broker_stub.windows`) -- the part outside is refused as ``outside_custody`` and the signed
batch kept as evidence; no part was redeemed by this vendor before (``already_redeemed``).

Coins inside the claimant's window that another vendor was already paid for, inside that vendor's window, were
spent twice by the customer while a custodian could not be reached (the overlap rule): the claimant is paid as well,
the chain is revoked, and the overlap is charged to the account that bought the chain (ledger kind
``custody_overlap``: debit ``customer_funds[account]``, with the evidence in ``custody_overlaps``). The charge is
made in full even if it takes the account's balance below zero: the negative balance is what the customer owes the
broker, shown on the statement, and the next top-up pays it back first.

A batch retried with the same ``batch_id`` and bytes gets the stored answer. If no claim of a batch is accepted and
nothing was recorded, the batch is refused as a whole with the first claim's error (4xx) and ``details.result``
holding the signed per-claim result; nothing is stored.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from broker_stub import ledger, windows
from broker_stub.core import BrokerCore, request_hash
from broker_stub.custody import CustodyService
from broker_stub.ledger import Leg
from broker_stub.points import verify_point
from broker_stub.revocation import revoke
from broker_stub.vendors import VendorService
from netpay.errors import (
    Conflict,
    Forbidden,
    InvalidPayword,
    MalformedMessage,
    NetPayError,
    NotFound,
    ReplayedRequest,
    Revoked,
)
from netpay.keys import VerifyKey
from netpay.messages import ClaimResult, RedemptionBatch, RedemptionClaim, RedemptionResult
from netpay.signed import Signed
from netpay_web.db import lock_keys

__all__ = ["REASON_ERRORS", "RedemptionService"]

#: Claim rejection reasons and the error a whole batch is refused with when its first claim fails for it.
REASON_ERRORS: dict[str, type[NetPayError]] = {
    "unknown_chain": NotFound,
    "out_of_range": MalformedMessage,
    "not_custodian": Forbidden,
    "refunded": Revoked,
    "already_redeemed": Conflict,
    "invalid_payword": InvalidPayword,
    "bad_evidence": MalformedMessage,
    "outside_custody": Forbidden,
}


@dataclass(slots=True)
class _Paid:
    """What one claim earns: from the chain's coins and from the buyer's account (custody overlaps)."""

    from_coins: int = 0
    from_account: int = 0
    account_id: str = ""
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.from_coins + self.from_account


class _Reject(Exception):
    def __init__(self, reason: str, message: str, evidence: dict[str, Any] | None = None, pinned: bool = False):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.evidence = evidence or {}
        self.pinned = pinned


class RedemptionService:
    """``POST /v1/redemptions``."""

    def __init__(self, core: BrokerCore, vendors: VendorService) -> None:
        self.core = core
        self.vendors = vendors

    def redeem(self, data: Any) -> tuple[int, dict[str, Any]]:
        signed = Signed.from_wire(data, RedemptionBatch, "body")
        return self.redeem_signed(signed, request_hash(data))

    def redeem_signed(self, signed: Signed[RedemptionBatch], req: str) -> tuple[int, dict[str, Any]]:
        batch = signed.body
        vendor = self.vendors.vendor_row(batch.vendor_id)
        signed.require_signer(VerifyKey.from_hex(vendor["public_key"]))
        now = self.core.now()
        with self.core.db.tx() as c:
            # one batch id and every chain it claims belong to this transaction alone (across processes)
            lock_keys(
                c, f"batch:{batch.vendor_id}:{batch.batch_id}", *(f"chain:{cl.chain_id.hex()}" for cl in batch.claims)
            )
            row = c.execute(
                "SELECT request_hash, response FROM batches WHERE vendor_id = ? AND batch_id = ?",
                (batch.vendor_id, batch.batch_id),
            ).fetchone()
            if row is not None:
                if row[0] != req:
                    raise ReplayedRequest("this batch_id was used for another batch", batch_id=batch.batch_id)
                return 200, json.loads(row[1])
            if vendor["revoked"]:
                raise Revoked("this vendor is revoked", vendor_id=batch.vendor_id)
            results: list[ClaimResult] = []
            total = 0
            recorded = False
            first_reject: _Reject | None = None
            for claim in batch.claims:
                try:
                    paid = self._claim(c, signed, claim, now)
                except _Reject as rej:
                    first_reject = first_reject or rej
                    recorded = recorded or rej.pinned
                    results.append(
                        ClaimResult(
                            claim.chain_id,
                            claim.from_index,
                            claim.to_index,
                            "rejected",
                            self.core.money(0),
                            rej.reason,
                            rej.evidence,
                        )
                    )
                    continue
                total += paid.total
                results.append(
                    ClaimResult(
                        claim.chain_id,
                        claim.from_index,
                        claim.to_index,
                        "accepted",
                        self.core.money(paid.total),
                        paid.reason,
                        paid.evidence,
                    )
                )
            result = Signed.sign(
                RedemptionResult(batch.batch_id, batch.vendor_id, tuple(results), now), self.core.key
            ).to_wire()
            if total == 0 and not recorded:
                assert first_reject is not None
                exc = REASON_ERRORS[first_reject.reason](first_reject.message)
                exc.details = {"reason": first_reject.reason, "result": result}
                raise exc
            if total:
                fee = total * self.core.settings.redemption_fee_bps // 10_000
                ledger.post(
                    c,
                    now,
                    "redemption",
                    f"{batch.vendor_id}/{batch.batch_id}",
                    f"Redemption batch {batch.batch_id} of {batch.vendor_id}",
                    [
                        Leg("coins_outstanding", total),
                        Leg("vendor_payables", -(total - fee), batch.vendor_id),
                        Leg("fees", -fee),
                    ],
                )
            c.execute(
                "INSERT INTO batches (vendor_id, batch_id, request_hash, response, at) VALUES (?,?,?,?,?)",
                (batch.vendor_id, batch.batch_id, req, json.dumps(result), now),
            )
        return 200, result

    def _claim(self, c: sqlite3.Connection, signed: Signed[RedemptionBatch], claim: RedemptionClaim, now: int
               ) -> _Paid:  # fmt: skip
        batch = signed.body
        cid = claim.chain_id.hex()
        chain = c.execute(
            "SELECT length, coin_value, final_index, reported_index, account_id FROM chains WHERE chain_id = ?", (cid,)
        ).fetchone()
        if chain is None:
            raise _Reject("unknown_chain", "no such chain")
        if claim.to_index > chain[0]:
            raise _Reject("out_of_range", "to_index is beyond the chain's length", {"length": chain[0]})
        if (
            c.execute(
                "SELECT 1 FROM custody WHERE chain_id = ? AND vendor_id = ? LIMIT 1", (cid, batch.vendor_id)
            ).fetchone()
            is None
        ):
            raise _Reject("not_custodian", "this vendor never held custody of the chain")
        if claim.release is not None:
            self._store_release(c, cid, batch.vendor_id, claim)
        if chain[2] is not None and claim.to_index > chain[2]:
            raise _Reject(
                "refunded",
                "these coins were returned to the customer when the chain was closed",
                {"final_index": chain[2]},
            )
        self._verify(c, cid, claim)
        wins = windows.load(c, cid)
        reach = windows.effective_uppers(wins, chain[2] if chain[2] is not None else chain[0])
        inside = windows.covered(wins, reach, batch.vendor_id, claim.from_index, claim.to_index)
        outside = windows.subtract(claim.from_index, claim.to_index, inside)
        if not inside:
            window_evidence = [w.to_json(r) for w, r in zip(wins, reach, strict=True)]
            evidence = {"outside": [list(p) for p in outside], "windows": window_evidence}
            self._keep_refused(c, signed, claim, "outside_custody", evidence, now)
            raise _Reject("outside_custody", "these coins are outside this vendor's custody windows", evidence, True)
        own = self._redeemed_by(c, cid, batch.vendor_id, claim.from_index, claim.to_index)
        if own is not None:
            raise _Reject("already_redeemed", "these coins were already redeemed by this vendor", {"redeemed": own})
        value = int(chain[1])
        paid = _Paid(account_id=str(chain[4]))
        overlaps: list[dict[str, Any]] = []
        for lo, hi in inside:
            others = c.execute(
                "SELECT vendor_id, from_index, to_index, batch_id FROM redeemed WHERE chain_id = ? AND from_index < ? "
                "AND to_index > ? ORDER BY from_index",
                (cid, hi, lo),
            ).fetchall()
            taken = [(max(lo, int(o[1])), min(hi, int(o[2]))) for o in others]
            for a, b in taken:
                first = next(o for o in others if int(o[1]) < b and int(o[2]) > a)
                overlaps.append(
                    {"from_index": a, "to_index": b, "redeemed": {"vendor_id": first[0], "from_index": first[1],
                                                                   "to_index": first[2], "batch_id": first[3]}}
                )  # fmt: skip
            for a, b in windows.subtract(lo, hi, taken):
                c.execute(
                    "INSERT INTO redeemed (chain_id, from_index, to_index, vendor_id, batch_id, amount, at) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (cid, a, b, batch.vendor_id, batch.batch_id, (b - a) * value, now),
                )
                paid.from_coins += (b - a) * value
        if overlaps or outside:
            window_evidence = [w.to_json(r) for w, r in zip(wins, reach, strict=True)]
        if overlaps:
            evidence = self._overlap_evidence(c, cid, batch, claim, overlaps, window_evidence)
            for o in overlaps:
                amount = (o["to_index"] - o["from_index"]) * value
                paid.from_account += amount
                # The charge buys the twice-spent coins back into coins_outstanding; the batch then redeems them.
                ledger.post(
                    c,
                    now,
                    "custody_overlap",
                    f"{cid}/{batch.vendor_id}/{batch.batch_id}/{o['from_index']}",
                    f"Coins {o['from_index'] + 1}-{o['to_index']} of chain {cid[:8]} were spent twice, at "
                    f"{o['redeemed']['vendor_id']} and at {batch.vendor_id}",
                    [Leg("customer_funds", amount, paid.account_id), Leg("coins_outstanding", -amount)],
                )
                c.execute(
                    "INSERT INTO custody_overlaps (chain_id, account_id, vendor_id, batch_id, from_index, to_index, "
                    "amount, evidence, at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (cid, paid.account_id, batch.vendor_id, batch.batch_id, o["from_index"], o["to_index"], amount,
                     json.dumps(evidence), now),
                )  # fmt: skip
            revoke(c, "chain", cid, "custody_overlap", now)
            paid.reason, paid.evidence = "custody_overlap", evidence
        if outside:
            evidence = {"outside": [list(p) for p in outside], "windows": window_evidence, **paid.evidence}
            self._keep_refused(c, signed, claim, "outside_custody", evidence, now)
            paid.reason, paid.evidence = "outside_custody", evidence
        top = inside[-1][1]
        if top > chain[3]:
            point = (
                (claim.payword,)
                if top == claim.to_index
                else c.execute("SELECT payword FROM chain_points WHERE chain_id = ? AND idx = ?", (cid, top)).fetchone()
            )
            if point is not None:
                c.execute(
                    "UPDATE chains SET reported_index = ?, reported_payword = ? WHERE chain_id = ?",
                    (top, point[0], cid),
                )
        return paid

    @staticmethod
    def _redeemed_by(c: sqlite3.Connection, cid: str, vendor_id: str, lo: int, hi: int) -> dict[str, Any] | None:
        """An earlier payment of these coins to ``vendor_id`` (from the chain or as an overlap), or None."""
        row = c.execute(
            "SELECT from_index, to_index, batch_id FROM redeemed WHERE chain_id = ? AND vendor_id = ? "
            "AND from_index < ? AND to_index > ? UNION ALL "
            "SELECT from_index, to_index, batch_id FROM custody_overlaps WHERE chain_id = ? AND vendor_id = ? "
            "AND from_index < ? AND to_index > ? LIMIT 1",
            (cid, vendor_id, hi, lo, cid, vendor_id, hi, lo),
        ).fetchone()
        if row is not None:
            return {"vendor_id": vendor_id, "from_index": row[0], "to_index": row[1], "batch_id": row[2]}
        return None

    @staticmethod
    def _keep_refused(c: sqlite3.Connection, signed: Signed[RedemptionBatch], claim: RedemptionClaim, reason: str,
                      evidence: dict[str, Any], now: int) -> None:  # fmt: skip
        """Keep the vendor's signed batch as evidence of a claim reaching outside its custody."""
        c.execute(
            "INSERT INTO refused_claims (chain_id, vendor_id, batch_id, from_index, to_index, reason, evidence, "
            "request, at) VALUES (?,?,?,?,?,?,?,?,?)",
            (claim.chain_id.hex(), signed.body.vendor_id, signed.body.batch_id, claim.from_index, claim.to_index,
             reason, json.dumps(evidence), json.dumps(signed.to_wire()), now),
        )  # fmt: skip

    @staticmethod
    def _verify(c: sqlite3.Connection, cid: str, claim: RedemptionClaim) -> None:
        try:
            verify_point(c, cid, claim.to_index, claim.payword)
        except InvalidPayword as exc:
            raise _Reject("invalid_payword", exc.message) from None

    @staticmethod
    def _store_release(c: sqlite3.Connection, cid: str, vendor_id: str, claim: RedemptionClaim) -> None:
        assert claim.release is not None
        rel = claim.release.body
        if rel.chain_id.hex() != cid or vendor_id not in (rel.released_by, rel.released_to):
            raise _Reject("bad_evidence", "the release names another chain, or neither side of it is this vendor")
        try:
            outcome = CustodyService.record_release(c, claim.release)
        except NetPayError as exc:
            raise _Reject("bad_evidence", exc.message) from None
        if outcome not in ("recorded", "known"):
            raise _Reject("bad_evidence", f"the release does not fit the chain's custody ({outcome})",
                          {"reason": outcome})  # fmt: skip

    @staticmethod
    def _overlap_evidence(
        c: sqlite3.Connection,
        cid: str,
        batch: RedemptionBatch,
        claim: RedemptionClaim,
        overlaps: list[dict[str, Any]],
        window_evidence: list[dict[str, Any]],
    ) -> dict[str, Any]:
        releases = [json.loads(r[0]) for r in c.execute("SELECT wire FROM releases WHERE chain_id = ?", (cid,))]
        return {
            "chain_id": cid,
            "overlaps": overlaps,
            "claim": {
                "vendor_id": batch.vendor_id,
                "batch_id": batch.batch_id,
                "from_index": claim.from_index,
                "to_index": claim.to_index,
                "payword": claim.payword.hex(),
            },
            "windows": window_evidence,
            "releases": releases,
        }

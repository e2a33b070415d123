"""Redemption: verify vendors' claims, pay each coin to at most one vendor, pin double spends with evidence.

A batch is one SQLite transaction and one ledger transaction. Each claim is checked in order: the chain exists and
the claim is within its length; the vendor has held custody of it; the coins were not refunded by a close; no part
of the range was redeemed before (by the same vendor: ``already_redeemed``; by another: ``double_spend``, which is
recorded with evidence and revokes the chain); and the payword hashes back to the nearest verified point below it
(:mod:`broker_stub.points`). A batch retried with the same ``batch_id`` and bytes gets the stored answer.

If no claim of a batch is accepted and nothing was recorded, the batch is refused as a whole with the first claim's
error (4xx) and ``details.result`` holding the signed per-claim result; nothing is stored.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from broker_stub import ledger
from broker_stub.core import BrokerCore, request_hash
from broker_stub.hosted import outside_grants
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
}


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
                    amount = self._claim(c, batch, claim, now)
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
                total += amount
                results.append(
                    ClaimResult(claim.chain_id, claim.from_index, claim.to_index, "accepted", self.core.money(amount))
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

    def _claim(self, c: sqlite3.Connection, batch: RedemptionBatch, claim: RedemptionClaim, now: int) -> int:
        cid = claim.chain_id.hex()
        chain = c.execute(
            "SELECT length, coin_value, final_index, reported_index FROM chains WHERE chain_id = ?", (cid,)
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
        if (why := outside_grants(c, batch.vendor_id, cid, claim.from_index, claim.to_index)) is not None:
            raise _Reject("not_custodian", why)  # a hosted chain: only the coins of this vendor's grants
        if chain[2] is not None and claim.to_index > chain[2]:
            raise _Reject(
                "refunded",
                "these coins were returned to the customer when the chain was closed",
                {"final_index": chain[2]},
            )
        other = c.execute(
            "SELECT vendor_id, from_index, to_index, batch_id FROM redeemed WHERE chain_id = ? AND from_index < ? "
            "AND to_index > ? LIMIT 1",
            (cid, claim.to_index, claim.from_index),
        ).fetchone()
        if other is not None:
            first = {"vendor_id": other[0], "from_index": other[1], "to_index": other[2], "batch_id": other[3]}
            if other[0] == batch.vendor_id:
                raise _Reject(
                    "already_redeemed", "these coins were already redeemed by this vendor", {"redeemed": first}
                )
            self._verify(c, cid, claim)  # only a genuine payword is evidence of a double spend
            evidence = self._pin(c, cid, batch, claim, first, now)
            raise _Reject("double_spend", "these coins were already redeemed by another vendor", evidence, True)
        self._verify(c, cid, claim)
        if claim.release is not None:
            self._store_release(c, cid, claim)
        amount = (claim.to_index - claim.from_index) * int(chain[1])
        c.execute(
            "INSERT INTO redeemed (chain_id, from_index, to_index, vendor_id, batch_id, amount, at) "
            "VALUES (?,?,?,?,?,?,?)",
            (cid, claim.from_index, claim.to_index, batch.vendor_id, batch.batch_id, amount, now),
        )
        if claim.to_index > chain[3]:
            c.execute(
                "UPDATE chains SET reported_index = ?, reported_payword = ? WHERE chain_id = ?",
                (claim.to_index, claim.payword, cid),
            )
        return amount

    @staticmethod
    def _verify(c: sqlite3.Connection, cid: str, claim: RedemptionClaim) -> None:
        try:
            verify_point(c, cid, claim.to_index, claim.payword)
        except InvalidPayword as exc:
            raise _Reject("invalid_payword", exc.message) from None

    def _store_release(self, c: sqlite3.Connection, cid: str, claim: RedemptionClaim) -> None:
        assert claim.release is not None
        rel = claim.release.body
        key = c.execute("SELECT public_key FROM vendors WHERE vendor_id = ?", (rel.released_by,)).fetchone()
        if key is None or claim.release.signer.hex != key[0] or rel.chain_id.hex() != cid:
            raise _Reject("bad_evidence", "the release is not signed by the vendor it names, or names another chain")
        c.execute(
            "INSERT INTO releases (chain_id, released_by, released_to, last_index, wire) VALUES (?,?,?,?,?) "
            "ON CONFLICT DO NOTHING",
            (cid, rel.released_by, rel.released_to, rel.last_index, json.dumps(claim.release.to_wire())),
        )

    def _pin(
        self,
        c: sqlite3.Connection,
        cid: str,
        batch: RedemptionBatch,
        claim: RedemptionClaim,
        first: dict[str, Any],
        now: int,
    ) -> dict[str, Any]:
        custody = [
            {"vendor_id": r[0], "claimed_at": r[1], "lower_index": r[2]}
            for r in c.execute(
                "SELECT vendor_id, claimed_at, lower_index FROM custody WHERE chain_id = ? ORDER BY seq", (cid,)
            )
        ]
        releases = [json.loads(r[0]) for r in c.execute("SELECT wire FROM releases WHERE chain_id = ?", (cid,))]
        evidence = {
            "chain_id": cid,
            "redeemed": first,
            "claim": {
                "vendor_id": batch.vendor_id,
                "batch_id": batch.batch_id,
                "from_index": claim.from_index,
                "to_index": claim.to_index,
                "payword": claim.payword.hex(),
            },
            "custody": custody,
            "releases": releases,
        }
        c.execute(
            "INSERT INTO double_spends (chain_id, vendor_id, from_index, to_index, evidence, at) VALUES (?,?,?,?,?,?)",
            (cid, batch.vendor_id, claim.from_index, claim.to_index, json.dumps(evidence), now),
        )
        revoke(c, "chain", cid, "double_spend", now)
        return evidence

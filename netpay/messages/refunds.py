"""Refunds (Kravitz, seed 003: refunds decoupled from payment): the shop's signed decision on a customer's request.

A :class:`RefundDecision` is bound to the receipt it answers by the receipt's digest (SHA-256 of the receipt's signed
bytes). ``granted`` decisions go to the broker, which credits the broker account that bought the receipt's chains
from the shop's payable; the shop never learns that account (it names only the chains, as the receipt does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from netpay.encoding import FieldReader
from netpay.errors import MalformedMessage
from netpay.messages.fields import ID_LEN, MAX_SEGMENTS, read_time
from netpay.messages.purchase import SegmentRef
from netpay.money import Money
from netpay.signed import Body

__all__ = ["MAX_REASON", "RefundDecision"]

#: Longest reason (the customer's, or the shop's) a refund message carries.
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class RefundDecision(Body):
    """A shop's signed answer to a refund request: ``granted`` (``amount`` goes back) or ``refused`` (amount 0).

    ``segments`` repeat the receipt's: the broker credits the account that bought those chains.
    """

    TYPE = "refund_decision"
    refund_id: str
    vendor_id: str
    receipt_id: str
    receipt_digest: bytes
    decision: Literal["granted", "refused"]
    amount: Money
    segments: tuple[SegmentRef, ...]
    reason: str
    decided_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "vendor_id": self.vendor_id,
            "receipt_id": self.receipt_id,
            "receipt_digest": self.receipt_digest.hex(),
            "decision": self.decision,
            "amount": self.amount.to_json(),
            "segments": [s.to_json() for s in self.segments],
            "reason": self.reason,
            "decided_at": self.decided_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        refund_id = r.text("refund_id", ID_LEN)
        vendor_id = r.text("vendor_id", ID_LEN)
        receipt_id = r.text("receipt_id", ID_LEN)
        digest = r.hex("receipt_digest", 32)
        decision = r.text("decision", 16)
        amount = Money.from_json(r.raw("amount"), f"{where}.amount")
        segments = tuple(r.items("segments", SegmentRef.from_json, MAX_SEGMENTS, min_items=1))
        reason = r.text("reason", MAX_REASON, min_len=0)
        decided_at = read_time(r, "decided_at")
        r.done()
        if decision not in ("granted", "refused"):
            raise MalformedMessage(f"{where}.decision must be granted or refused", field=f"{where}.decision")
        if (decision == "granted") != (amount.amount > 0):
            raise MalformedMessage(f"{where}.amount must be positive when granted and 0 when refused",
                                   field=f"{where}.amount")  # fmt: skip
        return cls(refund_id, vendor_id, receipt_id, digest, decision, amount, segments, reason,
                   decided_at)  # fmt: skip

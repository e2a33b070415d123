"""Settlement between vendors and the broker: spend reports, redemption batches and their results, and a vendor's
requests about its own account and payouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader
from netpay.errors import MalformedMessage
from netpay.messages.custody import CustodyRelease
from netpay.messages.fields import ID_LEN, MAX_BATCH, read_time
from netpay.money import Money
from netpay.signed import Body, Signed

__all__ = [
    "ClaimResult",
    "RedemptionBatch",
    "RedemptionClaim",
    "RedemptionResult",
    "SpendEntry",
    "SpendReport",
    "VendorRequest",
]


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """One accepted spend: coins ``from_index+1 .. to_index`` of a chain, proven by W_to_index."""

    chain_id: bytes
    from_index: int
    to_index: int
    payword: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "payword": self.payword.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> SpendEntry:
        r = FieldReader(data, where)
        obj = cls(
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.integer("from_index", 0, MAX_CHAIN_LENGTH),
            r.integer("to_index", 1, MAX_CHAIN_LENGTH),
            r.hex("payword", PAYWORD_BYTES),
        )
        r.done()
        if obj.from_index >= obj.to_index:
            raise MalformedMessage(f"{where} must have from_index < to_index", field=where)
        return obj


@dataclass(frozen=True, slots=True)
class SpendReport(Body):
    """A vendor's signed report of spends it accepted ("almost on-line"): the broker's lower bound per chain."""

    TYPE = "spend_report"
    report_id: str
    vendor_id: str
    entries: tuple[SpendEntry, ...]
    reported_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "vendor_id": self.vendor_id,
            "entries": [e.to_json() for e in self.entries],
            "reported_at": self.reported_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("report_id", ID_LEN),
            r.text("vendor_id", ID_LEN),
            tuple(r.items("entries", SpendEntry.from_json, MAX_BATCH, min_items=1)),
            read_time(r, "reported_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class RedemptionClaim:
    """A vendor's claim for coins ``from_index+1 .. to_index`` of a chain, with an optional custody release."""

    chain_id: bytes
    from_index: int
    to_index: int
    payword: bytes
    release: Signed[CustodyRelease] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "payword": self.payword.hex(),
            "release": self.release.to_wire() if self.release else None,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RedemptionClaim:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        from_index = r.integer("from_index", 0, MAX_CHAIN_LENGTH)
        to_index = r.integer("to_index", 1, MAX_CHAIN_LENGTH)
        payword = r.hex("payword", PAYWORD_BYTES)
        raw = r.raw("release", optional=True)
        release = Signed.from_wire(raw, CustodyRelease, f"{where}.release") if raw is not None else None
        r.done()
        if from_index >= to_index:
            raise MalformedMessage(f"{where} must have from_index < to_index", field=where)
        return cls(chain_id, from_index, to_index, payword, release)


@dataclass(frozen=True, slots=True)
class RedemptionBatch(Body):
    """A vendor's signed batch of claims. ``batch_id`` makes it idempotent."""

    TYPE = "redemption_batch"
    batch_id: str
    vendor_id: str
    claims: tuple[RedemptionClaim, ...]
    created_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "vendor_id": self.vendor_id,
            "claims": [c.to_json() for c in self.claims],
            "created_at": self.created_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("batch_id", ID_LEN),
            r.text("vendor_id", ID_LEN),
            tuple(r.items("claims", RedemptionClaim.from_json, MAX_BATCH, min_items=1)),
            read_time(r, "created_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The broker's answer to one claim: accepted with the amount credited, or rejected with a reason code."""

    chain_id: bytes
    from_index: int
    to_index: int
    status: Literal["accepted", "rejected"]
    amount: Money
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "status": self.status,
            "amount": self.amount.to_json(),
            "reason": self.reason,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ClaimResult:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        from_index = r.integer("from_index", 0, MAX_CHAIN_LENGTH)
        to_index = r.integer("to_index", 0, MAX_CHAIN_LENGTH)
        status = r.text("status", 16)
        amount = Money.from_json(r.raw("amount"), f"{where}.amount")
        reason = r.text("reason", 64, optional=True)
        evidence = r.raw("evidence")
        r.done()
        if status not in ("accepted", "rejected") or not isinstance(evidence, dict):
            raise MalformedMessage(f"{where} has a bad status or evidence", field=where)
        return cls(chain_id, from_index, to_index, status, amount, reason, evidence)


@dataclass(frozen=True, slots=True)
class RedemptionResult(Body):
    """The broker's signed answer to a redemption batch, one result per claim, in order."""

    TYPE = "redemption_result"
    batch_id: str
    vendor_id: str
    results: tuple[ClaimResult, ...]
    processed_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "vendor_id": self.vendor_id,
            "results": [c.to_json() for c in self.results],
            "processed_at": self.processed_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("batch_id", ID_LEN),
            r.text("vendor_id", ID_LEN),
            tuple(r.items("results", ClaimResult.from_json, MAX_BATCH)),
            read_time(r, "processed_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class VendorRequest(Body):
    """A vendor's signed request about its own broker account: ``action`` is ``account`` or ``payout``.

    For a payout, ``amount`` is what to pay out (``None``: everything payable).
    """

    TYPE = "vendor_request"
    vendor_id: str
    action: str
    nonce: str
    requested_at: int
    amount: Money | None = None

    def to_body(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "action": self.action,
            "nonce": self.nonce,
            "requested_at": self.requested_at,
            "amount": self.amount.to_json() if self.amount else None,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        vendor_id = r.text("vendor_id", ID_LEN)
        action = r.text("action", 16)
        nonce = r.text("nonce", ID_LEN)
        at = read_time(r, "requested_at")
        raw = r.raw("amount", optional=True)
        r.done()
        if action not in ("account", "payout"):
            raise MalformedMessage(f"{where}.action must be 'account' or 'payout'", field=f"{where}.action")
        amount = Money.from_json(raw, f"{where}.amount") if raw is not None else None
        if amount is not None and amount.amount <= 0:
            raise MalformedMessage(f"{where}.amount must be positive", field=f"{where}.amount")
        return cls(vendor_id, action, nonce, at, amount)

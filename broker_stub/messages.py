"""Signed vendor requests specific to the broker (vendor account statement and payouts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from netpay.encoding import FieldReader
from netpay.errors import MalformedMessage
from netpay.money import Money
from netpay.signed import Body

__all__ = ["VendorRequest"]


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
        vendor_id = r.text("vendor_id", 64)
        action = r.text("action", 16)
        nonce = r.text("nonce", 64)
        at = r.integer("requested_at", 0, 2**40)
        raw = r.raw("amount", optional=True)
        r.done()
        if action not in ("account", "payout"):
            raise MalformedMessage(f"{where}.action must be 'account' or 'payout'", field=f"{where}.action")
        amount = Money.from_json(raw, f"{where}.amount") if raw is not None else None
        if amount is not None and amount.amount <= 0:
            raise MalformedMessage(f"{where}.amount must be positive", field=f"{where}.amount")
        return cls(vendor_id, action, nonce, at, amount)

"""The purchase prompt as the GUI sees it: who asks (as certified by the broker), for what, at what price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netpay.messages import BusinessModel
from netpay.money import Money

__all__ = ["Prompt", "PromptStatus"]

PromptStatus = Literal["pending", "paying", "paid", "declined", "expired", "failed"]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A purchase waiting for the customer. Read-only snapshot; answer it with the coordinator's approve/decline."""

    prompt_id: str
    origin: str  # the page origin, one of the certificate's origins
    vendor_id: str
    vendor_name: str  # display name from the broker-signed vendor certificate
    item_id: str
    item_title: str
    price: Money
    balance: Money  # unspent coins now, in the price's currency
    balance_after: Money  # balance - price (negative: not enough coins)
    model: BusinessModel
    created_at: int
    expires_at: int
    navigation: bool  # came from the navigation fallback or a netpay: link (never auto-paid)
    status: PromptStatus = "pending"
    advice: str | None = None  # no combination of coins makes the price: what to buy instead (shown, Pay off)

    @property
    def affordable(self) -> bool:
        return self.balance_after.amount >= 0 and self.advice is None

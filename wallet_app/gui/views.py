"""Plain, Qt-free view objects of the windows that the wallet services do not already define."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netpay.money import Money

__all__ = ["CardDetails", "PromptView", "SettingsView"]


@dataclass(frozen=True)
class CardDetails:
    """Test card details entered in the Buy coins dialog."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass(frozen=True)
class PromptView:
    """A purchase waiting for the customer's decision."""

    prompt_id: str
    vendor_id: str
    vendor_name: str
    origin: str
    title: str
    price: Money
    balance_after: Money
    expires_at: int
    advice: str | None = None  # no coins make the price exactly: what to buy (Pay stays off)
    model: Any = None  # the quote's BusinessModel: a bundle's items, a metered session's unit and cap


@dataclass
class SettingsView:
    """The wallet settings the Settings dialog edits."""

    callback_port: int = 8765
    auto_lock_minutes: int = 15
    start_with_system: bool = False
    notifications: bool = True

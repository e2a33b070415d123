"""Plain data the wallet services hand to the GUI and the browser hand-off: no database rows, no secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netpay.messages import Quote, Receipt, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed

__all__ = [
    "ActivityEntry",
    "AllowanceInfo",
    "BalanceLine",
    "BrokerInfo",
    "BuyProgress",
    "ChainSummary",
    "CheckedQuote",
    "PaidQuote",
    "PayVia",
]

PayVia = Literal["prompt", "allowance", "uri"]


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """What ``GET /v1/info`` says about a broker, shown to the user before they trust it."""

    broker_id: str
    name: str
    url: str
    public_key_hex: str
    fingerprint: str
    currencies: tuple[str, ...]
    coin_values: tuple[Money, ...]
    chain_length_min: int
    chain_length_max: int
    chain_length_default: int
    trusted: bool = False
    username: str | None = None  # the account logged in at this broker, if any


@dataclass(frozen=True, slots=True)
class BalanceLine:
    """Unspent coins at one broker in one currency."""

    broker_id: str
    currency: str
    unspent: Money
    pending: Money  # reserved by payments not yet settled
    chains: int


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """One chain as the user sees it (never the seed)."""

    chain_id: str
    broker_id: str
    coin_value: Money
    length: int
    position: int  # coins used (settled + pending + burned)
    settled: int
    pending: int
    burned: int
    unspent: int
    status: str  # buying | active | exhausted | returned
    holder: str | None  # vendor id holding custody, as far as the wallet knows
    needs_resync: bool
    expires_at: int
    revoked: bool = False  # on its broker's revocation list: never used again, its coins not counted as unspent
    holder_revoked: bool = False  # the vendor holding it is on the revocation list


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One line of history: a payment (settled / pending / released / burned), a purchase of coins or a refund."""

    at: int
    kind: str  # payment | buy | return | restore
    status: str
    amount: Money
    vendor_id: str | None
    vendor_name: str | None
    title: str | None
    via: str | None
    ref: str  # payment id, chain id ...
    access_token: str | None = None
    item_url: str | None = None


@dataclass(frozen=True, slots=True)
class AllowanceInfo:
    """An allowance granted to a vendor: maximum price per purchase, budget per day, what was spent today."""

    vendor_id: str
    vendor_name: str
    max_price: Money
    daily_budget: Money
    spent_today: Money
    created_at: int


@dataclass(frozen=True, slots=True)
class CheckedQuote:
    """A quote that passed every check of :meth:`WalletService.check_quote`: safe to show in a prompt."""

    quote: Signed[Quote]
    vendor_certificate: Signed[VendorCertificate]
    broker_id: str
    vendor_name: str
    origin: str
    price: Money
    affordable: bool  # the wallet holds coins that make the price exactly
    remaining_after: Money  # unspent coins at this broker/currency after paying
    covered_by_allowance: bool
    change_advice: str | None = None  # set when no combination of coins makes the price: what to buy instead


@dataclass(frozen=True, slots=True)
class PaidQuote:
    """The outcome of a settled payment."""

    payment_id: str
    receipt: Signed[Receipt]
    access_token: str
    item_url: str
    amount: Money
    via: PayVia


@dataclass(frozen=True, slots=True)
class BuyProgress:
    """Progress of :meth:`WalletService.buy_coins`: stage is ``generating``, ``sending``, ``storing`` or ``done``."""

    stage: str
    done: int
    total: int

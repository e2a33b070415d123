"""Plain data the wallet services hand to the GUI and the browser hand-off: no database rows, no secrets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from netpay.messages import Quote, Receipt, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed

__all__ = [
    "AccountView",
    "ActivityEntry",
    "AllowanceInfo",
    "BalanceLine",
    "BrokerInfo",
    "BuyProgress",
    "ChainSummary",
    "CheckedQuote",
    "HostedView",
    "PaidQuote",
    "PayVia",
    "RecoverableChain",
    "StatementLine",
]

PayVia = Literal[
    "prompt", "allowance", "uri", "api", "subscription", "metered"
]  # api: paid by a program (wallet_app.client,
# netpay-wallet pay); subscription: a time pass renewed under its cap; metered: a unit of an approved session


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
class StatementLine:
    """One movement of a broker account's money, as the broker's statement gives it. ``kind`` is the broker's:
    ``topup``, ``purchase``, ``refund``, ``cashout`` or any other (shown as the broker describes it)."""

    at: int
    kind: str
    amount: Money  # positive: money in; negative: money out
    description: str
    ref: str


@dataclass(frozen=True, slots=True)
class HostedView:
    """The account's hosted e-wallet at a broker: coins not yet granted, the unspent part of active grants, and the
    chains that may be returned (those still active)."""

    balance: Money
    granted: Money
    active_chains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccountView:
    """The account at one broker as last fetched: balance and statement (newest last)."""

    broker_id: str
    broker_name: str
    username: str
    balance: Money
    entries: tuple[StatementLine, ...]
    fetched_at: int
    #: The hosted e-wallet at this broker (for phones and other computers), as last fetched this session.
    hosted: HostedView | None = None


@dataclass(frozen=True, slots=True)
class RecoverableChain:
    """A chain bought on the account that this wallet does not hold, with what the broker knows of it."""

    chain_id: str
    broker_id: str
    coin_value: Money
    length: int
    reported_index: int  # the last index vendors reported (a lower bound of what was spent)
    custodian: str | None  # the vendor holding it, as the broker knows
    status: str  # active | closing (at the broker) | recovering (handed back by this wallet, grace period running)
    custodian_name: str | None = None  # the custodian's name as the broker certified it

    @property
    def at_most(self) -> Money:
        """The most the broker can refund: the coins above the last reported index."""
        return self.coin_value * (self.length - self.reported_index)


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One line of history: a payment (settled / pending / released / burned), a purchase of coins or a refund."""

    at: int
    kind: str  # payment | buy | return (a refund) | cashout | restore
    status: str
    amount: Money
    vendor_id: str | None
    vendor_name: str | None
    title: str | None
    via: str | None
    ref: str  # payment id, chain id ...
    access_token: str | None = None
    item_url: str | None = None
    broker_id: str | None = None


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

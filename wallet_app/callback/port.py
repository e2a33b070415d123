"""What the callback needs from the wallet core, as a small typed port.

The purchase coordinator talks to the wallet only through :class:`WalletPort`, so its security checks can be read
(and tested) on their own. :class:`wallet_app.callback.services_adapter.ServicesWalletPort` implements the port on top
of the wallet core's :class:`wallet_app.services.WalletService`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from netpay.keys import VerifyKey
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed

__all__ = ["PaidResult", "QuoteCheck", "WalletPort"]


@dataclass(frozen=True, slots=True)
class PaidResult:
    """What a page may learn after a purchase was paid: the receipt's access token and where the item is."""

    access_token: str
    item_url: str
    receipt_id: str
    valid_until: int | None = None
    session_id: str | None = None  # a metered item's first unit: the session it opened


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    """The core's verdict on a quote that passed its checks."""

    remaining_after: Money  # unspent coins (price's currency) after paying; negative when not enough
    covered_by_allowance: bool
    advice: str | None = None  # no combination of the wallet's coins makes the price: what to buy instead


class WalletPort(Protocol):
    """The wallet operations the callback uses. Every method may raise a :class:`netpay.errors.NetPayError`."""

    def trusted_broker_keys(self) -> Sequence[VerifyKey]:
        """Public keys of the brokers this wallet trusts (vendor certificates must be signed by one)."""
        ...

    def is_locked(self) -> bool:
        """True while the vault is locked (no payment can be made, nothing may be revealed)."""
        ...

    def check_quote(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str) -> QuoteCheck:
        """The core's own checks (trust, revocation, expiry, not already paid); raises on refusal, changes nothing."""
        ...

    def covers(self, vendor_id: str, price: Money) -> bool:
        """True if the vendor's allowance covers ``price`` now. Such a purchase goes straight to :meth:`pay`,
        which makes every check of :meth:`check_quote` itself (and the allowance's again, under its lock)."""
        ...

    def pay(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str, *, via: str) -> PaidResult:
        """Pay ``quote`` (journal, send, store the receipt). ``via``: "allowance", "prompt" or "uri"."""
        ...

    def grant_allowance(self, vendor_id: str, display_name: str, max_price: Money, budget: Money) -> None:
        """Let ``vendor_id`` be paid without a prompt up to ``max_price`` per purchase and ``budget`` per day."""
        ...

    def pay_metered_unit(self, session_id: str, unit_no: int, origin: str) -> dict[str, Any]:
        """Pay (or, if paid, answer) unit ``unit_no`` of a metered session the customer approved, no prompt."""
        ...

    def end_metered(self, session_id: str, origin: str) -> dict[str, Any]:
        """End a metered session of the page at ``origin``: nothing more is paid for it."""
        ...

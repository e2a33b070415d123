"""Adapter from the callback's :class:`~wallet_app.callback.port.WalletPort` to the wallet core's service API.

The trusted broker keys are remembered from the last time the vault was open, so a page's certificate can still be
checked (and an uncertified page refused) while the wallet is locked, before anyone is asked to unlock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from netpay.errors import WalletLocked
from netpay.keys import VerifyKey
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.callback.port import PaidResult, QuoteCheck
from wallet_app.services import WalletService

__all__ = ["ServicesWalletPort"]


class ServicesWalletPort:
    """:class:`WalletPort` over a :class:`WalletService`."""

    def __init__(self, service: WalletService) -> None:
        self.service = service
        self._keys: tuple[VerifyKey, ...] = ()
        self._lock = threading.Lock()

    def trusted_broker_keys(self) -> Sequence[VerifyKey]:
        try:
            keys = self.service.trusted_broker_keys()  # in memory while unlocked: no vault read per purchase
        except WalletLocked:
            with self._lock:
                return self._keys
        with self._lock:
            self._keys = keys
        return keys

    def is_locked(self) -> bool:
        return bool(self.service.state != "unlocked")

    def check_quote(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str) -> QuoteCheck:
        # The signed objects as they are: the core's signature memo knows them (the Offer was parsed through it).
        checked = self.service.check_quote(quote, certificate, origin)
        remaining = checked.remaining_after
        if not checked.affordable and checked.change_advice is None:  # floored at zero; the prompt shows the gap
            unspent = Money.zero(checked.price.currency)
            for line in self.service.balance():
                if line.broker_id == checked.broker_id and line.currency == checked.price.currency:
                    unspent = unspent + line.unspent
            remaining = unspent - checked.price
        return QuoteCheck(remaining, checked.covered_by_allowance, checked.change_advice)

    def pay(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str, *, via: str) -> PaidResult:
        paid = self.service.pay_quote(quote, certificate, origin, via)  # type: ignore[arg-type]
        receipt = paid.receipt.body
        return PaidResult(paid.access_token, paid.item_url, receipt.receipt_id, receipt.valid_until)

    def grant_allowance(self, vendor_id: str, display_name: str, max_price: Money, budget: Money) -> None:
        self.service.set_allowance(vendor_id, display_name, max_price, budget)

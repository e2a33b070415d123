"""Adapter from the callback's :class:`~wallet_app.callback.port.WalletPort` to the wallet core's service API.

The trusted broker keys are remembered from the last time the vault was open, so a page's certificate can still be
checked (and an uncertified page refused) while the wallet is locked, before anyone is asked to unlock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from netpay.errors import Forbidden, WalletLocked
from netpay.keys import VerifyKey
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.callback.port import PaidResult, QuoteCheck
from wallet_app.services import WalletService
from wallet_app.services.metered import UnitPaid

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

    def covers(self, vendor_id: str, price: Money) -> bool:
        return self.service.covers(vendor_id, price)

    def pay(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str, *, via: str) -> PaidResult:
        paid = self.service.pay_quote(quote, certificate, origin, via)  # type: ignore[arg-type]
        receipt = paid.receipt.body
        session = receipt.receipt_id if quote.body.model.is_metered else None
        return PaidResult(paid.access_token, paid.item_url, receipt.receipt_id, receipt.valid_until, session)

    def pay_metered_unit(self, session_id: str, unit_no: int, origin: str) -> dict[str, Any]:
        return _unit_json(self.service.pay_metered_unit(session_id, unit_no, origin))

    def end_metered(self, session_id: str, origin: str) -> dict[str, Any]:
        s = self.service.metered.get(session_id) if self.service.state == "unlocked" else None
        if s is None or s.origin != origin:
            raise Forbidden("this session belongs to another site", session_id=session_id)
        s = self.service.end_metered(session_id, "page")
        return {"session_id": s.session_id, "units_paid": s.units_paid, "total": s.total.to_json(), "ended": True}

    def grant_allowance(self, vendor_id: str, display_name: str, max_price: Money, budget: Money) -> None:
        self.service.set_allowance(vendor_id, display_name, max_price, budget)


def _unit_json(unit: UnitPaid) -> dict[str, Any]:
    return {
        "status": "paid",
        "session_id": unit.session_id,
        "unit_no": unit.unit_no,
        "access_token": unit.access_token,
        "units_paid": unit.units_paid,
        "cap_units": unit.cap_units,
        "total": unit.total.to_json(),
        "ended": unit.ended,
    }

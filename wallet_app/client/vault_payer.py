"""Paying from a vault this process opened: :class:`VaultPayer`, one per wallet service, and :class:`KeptOffer`, the
quote a paid answer carried for the next request, whose payment may be journalled ahead (``wallet_app.client.session``).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from netpay.errors import MalformedMessage, NetPayError
from netpay.money import Money
from wallet_app.client.channel import PaidInfo, pay_offer, spent_today
from wallet_app.client.rules import Reservation
from wallet_app.services import WalletService
from wallet_app.services.payments import PreparedSpend

if TYPE_CHECKING:
    from wallet_app.client.session import PayingSession

__all__ = ["KeptOffer", "VaultPayer"]


class VaultPayer:
    """Pays with a wallet service this process opened (no wallet window runs). One per service
    (:meth:`of`): every session paying from it shares its lock and the payment journalled ahead, so one chain's
    coins leave in order whichever session sends them."""

    # by id(service): a payer holds its service, so a weak-keyed map would keep every service alive for good; a live
    # payer keeps its service (and so its id) alive, and a dead one leaves the map
    _shared: ClassVar[weakref.WeakValueDictionary[int, VaultPayer]] = weakref.WeakValueDictionary()
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()
    _exit_hook: ClassVar[bool] = False

    def __init__(self, service: WalletService) -> None:
        self.service = service
        self._lock = threading.RLock()  # one payment at a time: a chain's next coins go to one spend
        self.ahead: KeptOffer | None = None  # the one kept offer whose payment is (being) journalled ahead; under lock

    @classmethod
    def of(cls, service: WalletService) -> VaultPayer:
        """The payer of ``service`` in this process."""
        with cls._shared_lock:
            payer = cls._shared.get(id(service))
            if payer is None or payer.service is not service:
                payer = cls(service)
                cls._shared[id(service)] = payer
                service.events.vault_locking.append(payer.take_back)
            if not cls._exit_hook:
                atexit.register(cls._take_back_all)
                cls._exit_hook = True
            return payer

    @classmethod
    def _take_back_all(cls) -> None:
        """At interpreter exit: take back every payment journalled ahead that no session closed (a script that
        ends without closing its session must not leave a payment for recovery to send)."""
        with cls._shared_lock:
            payers = list(cls._shared.values())
        for payer in payers:
            payer.take_back()

    def take_back(self) -> None:
        """Take back the payment journalled ahead, if any (the vault is about to lock, or the interpreter exits)."""
        with contextlib.suppress(Exception), self.lock:
            if self.ahead is not None:
                self.ahead.owner._drop_ahead()

    def pay(self, offer: dict[str, Any], origin: str, price: Money) -> PaidInfo:
        with self._lock:
            return pay_offer(self.service, offer, origin, price)

    def spent_today(self, currency: str, since: int) -> dict[str, int]:
        with contextlib.suppress(NetPayError):
            return spent_today(self.service, currency, since)
        return {}

    def prepare(self, offer: dict[str, Any], origin: str, price: Money, undoable: bool = False) -> PreparedSpend:
        """Check the offer (at exactly ``price``) and journal its payment, to be sent inside a request. Hold
        :attr:`lock` from here to :meth:`finish`: a chain's next coins go to one payment at a time, in order.
        ``undoable``: journalled ahead, :meth:`cancel` may take it back while it is not sent."""
        if not isinstance(offer, dict):
            raise MalformedMessage("the offer must be an object", field="offer")
        return self.service.prepare_payment(offer.get("quote"), offer.get("vendor_certificate"), origin, "api", price,
                                            undoable=undoable)  # fmt: skip

    def cancel(self, prepared: PreparedSpend) -> bool:
        """Take back a payment journalled ahead and never sent (``WalletService.cancel_payment``)."""
        return self.service.cancel_payment(prepared)

    def finish(self, prepared: PreparedSpend, answer: Any, error: NetPayError | None) -> PaidInfo:
        """Settle, release or finish sending a prepared payment (``WalletService.finish_payment``)."""
        paid = self.service.finish_payment(prepared, answer, error)
        return PaidInfo(paid.access_token, paid.payment_id, paid.amount)

    @property
    def lock(self) -> threading.RLock:
        return self._lock


@dataclass(eq=False)
class KeptOffer:
    """An offer a paid answer carried (``NetPay-Quote``), kept for the next request to its path. With a payer that
    can take a payment back, its payment may be journalled ahead (``prepared``, ``reservation``: the price held in
    the rules); ``prepared`` and ``no_ahead`` change only under the payer's lock."""

    offer: dict[str, Any]
    origin: str
    owner: PayingSession
    price: Money | None = None
    reservation: Reservation | None = None
    prepared: PreparedSpend | None = None
    no_ahead: bool = False  # the helper must not (or need not) journal it: taken, dropped, or failed
    ready: threading.Event = field(default_factory=threading.Event)

"""Paying a peer the way a shop is paid: the peer's checked quote goes to the wallet's purchase coordinator (the
same one the browser hand-off uses), so the same prompt (seller's certified name, price, balance after paying, the
"pay without asking" allowance), the same allowance rules (paid at once when an allowance covers it), the same
per-origin limits and the same replay refusal apply. The Find page waits (off the GUI thread) for the customer's
answer in that prompt."""

from __future__ import annotations

from typing import Any

from netpay.errors import Conflict, NetPayError, PeerUnavailable, QuoteExpired
from wallet_app.callback.coordinator import Offer
from wallet_app.callback.origins import normalize_origin
from wallet_app.services.types import CheckedQuote, PaidQuote

__all__ = ["PromptedPayment", "declined"]

#: How long one wait for the customer's answer lasts before the next (the prompt itself expires on its own).
_HOLD_S = 30.0


def declined(exc: BaseException) -> bool:
    """The customer said no in the prompt (nothing was paid)."""
    return isinstance(exc, Conflict) and exc.details.get("reason") == "declined"


class PromptedPayment:
    """``pay(checked)`` for :meth:`wallet_app.peer.buyer.PeerBuyer.buy`, through ``coordinator``."""

    def __init__(self, coordinator: Any, wallet: Any) -> None:
        self.coordinator = coordinator  # wallet_app.callback.coordinator.PurchaseCoordinator
        self.wallet = wallet

    def __call__(self, checked: CheckedQuote) -> PaidQuote:
        offer = Offer(checked.quote, checked.vendor_certificate)
        origin = normalize_origin(checked.vendor_certificate.body.api_url)
        answer = self.coordinator.purchase(offer, origin)
        if answer["status"] != "paid":
            prompt_id, token = answer["prompt_id"], answer["poll_token"]
            while True:
                prompt, _state, _target = self.coordinator.navigation_state(
                    prompt_id, token, hold_pending_s=_HOLD_S, hold_paying_s=_HOLD_S
                )
                if prompt.status not in ("pending", "paying"):
                    break
            if prompt.status == "declined":
                raise Conflict("you declined this purchase; nothing was paid", reason="declined")
            if prompt.status == "expired":
                raise QuoteExpired("the offer expired before you answered; nothing was paid")
            if prompt.status != "paid":
                error = self.coordinator.failure(prompt_id)
                raise error if isinstance(error, NetPayError) else PeerUnavailable(f"the payment {prompt.status}")
        q = checked.quote.body
        paid: PaidQuote | None = self.wallet.receipt_for(q.quote_id, q.vendor_id)
        if paid is None:
            raise PeerUnavailable("the payment went through but its receipt is not in the wallet yet; try again")
        return paid

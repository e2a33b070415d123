"""Subscriptions: a time pass that renews (Fischer et al., seed 000: time-based use, pre-paid).

The customer turns a paid time pass into a subscription with a cap per renewal (the allowance given for it). When
the pass is about to end (``RENEW_AHEAD_S`` before ``renews_at``), :meth:`Subscriptions.renew_due` asks the shop for
a new quote of the same item and pays it, only if the price is within the cap (never beyond: a dearer renewal stops
the subscription and says why), then moves ``renews_at`` to the new pass's end. Every renewal, or stop, is reported
with the ``subscription_renewed`` / ``subscription_stopped`` events (the tray notifies). Cancelling stops the next
renewal; the pass already paid runs to its end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netpay.errors import Conflict, MalformedMessage, NetPayError, NotFound
from netpay.messages import Quote, Receipt
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.vault.store import Vault

__all__ = ["RENEW_AHEAD_S", "Subscription", "Subscriptions"]

#: Renew this long before the pass ends, so it never lapses while the wallet runs.
RENEW_AHEAD_S = 300


@dataclass(frozen=True, slots=True)
class Subscription:
    """A renewing pass: what, from whom, the cap per renewal, when it renews next, and its state."""

    subscription_id: str  # the first purchase's payment id
    vendor_id: str
    vendor_name: str
    item_id: str
    title: str
    price: Money
    max_price: Money
    renews_at: int
    status: str  # active | cancelled | stopped
    note: str
    renewals: int


class Subscriptions:
    """The subscriptions in the vault, and their renewal through the wallet's ordinary payment path."""

    def __init__(self, vault: Vault, clock: Callable[[], float], lock: threading.RLock,
                 quote: Callable[[str, str], tuple[Any, Any]], pay: Callable[[Any, Any], Any],
                 emit: Callable[..., None]) -> None:  # fmt: skip
        self.vault = vault
        self.clock = clock
        self.lock = lock
        self._quote = quote  # (api_url, item_id) -> (quote wire, vendor certificate wire)
        self._pay = pay  # (quote wire, certificate wire) -> PaidQuote
        self._emit = emit

    def subscribe(self, payment_id: str, max_price: Money) -> Subscription:
        """Renew the time pass bought by ``payment_id`` for at most ``max_price`` each time."""
        with self.lock:
            row = self.vault.one("SELECT * FROM spends WHERE payment_id = ? AND status = 'settled'", (payment_id,))
            if row is None or not row["receipt_json"]:
                raise NotFound("no settled purchase with that id", payment_id=payment_id)
            receipt = Signed.from_wire(_json(row["receipt_json"]), Receipt, "receipt", verify=False).body
            if receipt.valid_until is None:
                raise MalformedMessage("only a time pass can renew", field="payment_id")
            if max_price.currency != receipt.amount.currency or max_price.amount < receipt.amount.amount:
                raise MalformedMessage("the cap must be at least today's price, in its currency", field="max_price")
            now = int(self.clock())
            with self.vault.tx() as c:
                if c.execute("SELECT 1 FROM subscriptions WHERE vendor_id = ? AND item_id = ? AND status = 'active'",
                             (row["vendor_id"], receipt.item_id)).fetchone():  # fmt: skip
                    raise Conflict("this pass renews already", item_id=receipt.item_id)
                c.execute(
                    "INSERT INTO subscriptions (subscription_id, vendor_id, vendor_name, api_url_json, item_id, title,"
                    " price, max_price, currency, renews_at, status, note, renewals, last_payment_id, created_at,"
                    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?, 'active', '', 0, ?,?,?)"
                    " ON CONFLICT (subscription_id) DO UPDATE SET status = 'active', max_price = excluded.max_price,"
                    " note = '', updated_at = excluded.updated_at",
                    (payment_id, row["vendor_id"], row["vendor_name"], row["api_url_json"], receipt.item_id,
                     row["title"], receipt.amount.amount, max_price.amount, max_price.currency, receipt.valid_until,
                     payment_id, now, now),
                )  # fmt: skip
        return self.get(payment_id)

    def cancel(self, subscription_id: str) -> Subscription:
        """Stop the next renewal (the pass already paid runs to its end)."""
        with self.lock, self.vault.tx() as c:
            if c.execute("UPDATE subscriptions SET status = 'cancelled', updated_at = ? WHERE subscription_id = ?",
                         (int(self.clock()), subscription_id)).rowcount != 1:  # fmt: skip
                raise NotFound("no such subscription", subscription_id=subscription_id)
        return self.get(subscription_id)

    def get(self, subscription_id: str) -> Subscription:
        row = self.vault.one("SELECT * FROM subscriptions WHERE subscription_id = ?", (subscription_id,))
        if row is None:
            raise NotFound("no such subscription", subscription_id=subscription_id)
        return _view(row)

    def of_purchase(self, payment_id: str) -> Subscription | None:
        """The subscription that this purchase started or last renewed, if any."""
        row = self.vault.one("SELECT * FROM subscriptions WHERE subscription_id = ? OR last_payment_id = ? "
                             "ORDER BY updated_at DESC LIMIT 1", (payment_id, payment_id))  # fmt: skip
        return _view(row) if row is not None else None

    def pass_until(self, payment_id: str) -> int | None:
        """When the pass bought by ``payment_id`` ends (None: not a pass, or no such purchase)."""
        row = self.vault.one("SELECT receipt_json FROM spends WHERE payment_id = ? AND status = 'settled'",
                             (payment_id,))  # fmt: skip
        if row is None or not row["receipt_json"]:
            return None
        return Signed.from_wire(_json(row["receipt_json"]), Receipt, "receipt", verify=False).body.valid_until

    def list(self) -> list[Subscription]:
        return [_view(r) for r in self.vault.query("SELECT * FROM subscriptions ORDER BY renews_at")]

    def renew_due(self) -> list[Subscription]:
        """Renew every active subscription whose pass ends within ``RENEW_AHEAD_S``; returns those handled."""
        now = int(self.clock())
        with self.lock:
            due = self.vault.query(
                "SELECT * FROM subscriptions WHERE status = 'active' AND renews_at <= ?", (now + RENEW_AHEAD_S,)
            )
        done = []
        for row in due:
            done.append(self._renew(row))
        return done

    def _renew(self, row: Any) -> Subscription:
        sid = row["subscription_id"]
        try:
            quote_wire, cert_wire = self._quote(_json(row["api_url_json"]), row["item_id"])
            quote = Signed.from_wire(quote_wire, Quote, "quote", verify=False).body
            if quote.model.kind != "time_pass" or quote.price.currency != row["currency"]:
                return self._stop(row, "the shop no longer sells this as a pass")
            if quote.price.amount > row["max_price"]:
                return self._stop(row, f"the price rose to {quote.price.format()}, above your cap of "
                                       f"{Money(row['max_price'], row['currency']).format()}")  # fmt: skip
            paid = self._pay(quote_wire, cert_wire)
        except NetPayError as exc:  # shop down, no coins...: tried again at the next check, until the pass ends
            self._note(sid, f"renewal not paid yet: {exc.message}")
            return self.get(sid)
        until = paid.receipt.body.valid_until or int(self.clock())
        with self.lock, self.vault.tx() as c:
            c.execute(
                "UPDATE subscriptions SET renews_at = ?, price = ?, renewals = renewals + 1, last_payment_id = ?,"
                " note = '', updated_at = ? WHERE subscription_id = ?",
                (until, paid.amount.amount, paid.payment_id, int(self.clock()), sid),
            )
        sub = self.get(sid)
        self._emit("subscription_renewed", sub)
        return sub

    def _stop(self, row: Any, why: str) -> Subscription:
        with self.lock, self.vault.tx() as c:
            c.execute("UPDATE subscriptions SET status = 'stopped', note = ?, updated_at = ? WHERE subscription_id = ?",
                      (why, int(self.clock()), row["subscription_id"]))  # fmt: skip
        sub = self.get(row["subscription_id"])
        self._emit("subscription_stopped", sub)
        return sub

    def _note(self, sid: str, note: str) -> None:
        with self.lock, self.vault.tx() as c:
            c.execute("UPDATE subscriptions SET note = ?, updated_at = ? WHERE subscription_id = ?",
                      (note[:300], int(self.clock()), sid))  # fmt: skip


def _json(text: str) -> Any:
    import json

    return json.loads(text)


def _view(r: Any) -> Subscription:
    cur = r["currency"]
    return Subscription(r["subscription_id"], r["vendor_id"], r["vendor_name"], r["item_id"], r["title"],
                        Money(r["price"], cur), Money(r["max_price"], cur), int(r["renews_at"]), r["status"],
                        r["note"], int(r["renewals"]))  # fmt: skip

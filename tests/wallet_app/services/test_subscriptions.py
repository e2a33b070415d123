"""Subscriptions: a time pass renews before it ends under the cap the customer gave (never beyond), says so, and
stops when cancelled; against a real broker and shop."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from netpay.errors import MalformedMessage
from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor
from tests.support.wallet import funded_wallet, quote_for
from wallet_app.services import WalletService

PASS = "day-pass"  # 50 cents, 24 hours


class Clock:
    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> float:
        return time.time() + self.offset


def _setup(wallet_factory: Callable[..., WalletService], broker: RunningBroker) -> tuple[WalletService, Clock]:
    clock = Clock()
    w = wallet_factory(clock=clock)
    funded_wallet(w, broker.url, coins=500)
    return w, clock


def _buy(w: WalletService, vendor: RunningVendor, item: str = PASS) -> Any:
    q, c = quote_for(vendor.url, item)
    checked = w.check_quote(q, c, vendor.url)
    return w.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")


def _later(clock: Clock, vendor: RunningVendor, seconds: int) -> None:
    clock.offset += seconds
    vendor.vendor.clock_offset += seconds


def test_a_pass_renews_before_it_ends_within_its_cap(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, vendor: RunningVendor
) -> None:
    w, clock = _setup(wallet_factory, broker)
    seen: list[Any] = []
    w.events.subscription_renewed.append(seen.append)
    paid = _buy(w, vendor)
    sub = w.subscribe(paid.payment_id, Money(60, "EUR"))
    assert sub.renews_at == paid.receipt.body.valid_until and sub.status == "active"
    assert w.renew_subscriptions() == [] and seen == []  # not due yet
    _later(clock, vendor, 86400 - 100)
    renewed = w.renew_subscriptions()
    assert len(renewed) == 1 and renewed[0].renewals == 1 and seen == renewed
    assert renewed[0].renews_at > sub.renews_at
    assert w.renew_subscriptions() == []  # paid once, not twice
    payments = [e for e in w.activity() if e.kind == "payment"]
    assert [e.via for e in payments] == ["subscription", "prompt"]
    assert sum(e.amount.amount for e in payments) == 100


def test_a_dearer_renewal_stops_and_pays_nothing(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, vendor: RunningVendor
) -> None:
    w, clock = _setup(wallet_factory, broker)
    stopped: list[Any] = []
    w.events.subscription_stopped.append(stopped.append)
    paid = _buy(w, vendor)
    w.subscribe(paid.payment_id, Money(50, "EUR"))
    shop = vendor.vendor
    dearer = tuple(
        dataclasses.replace(i, price=Money(80, "EUR")) if i.item_id == PASS else i for i in shop.catalog.items
    )
    shop.catalog = dataclasses.replace(shop.catalog, items=dearer)
    _later(clock, vendor, 86400 - 10)
    [sub] = w.renew_subscriptions()
    assert sub.status == "stopped" and "€0.80" in sub.note and stopped == [sub]
    assert len([e for e in w.activity() if e.kind == "payment"]) == 1
    assert w.renew_subscriptions() == []


def test_cancelling_stops_the_next_renewal(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, vendor: RunningVendor
) -> None:
    w, clock = _setup(wallet_factory, broker)
    paid = _buy(w, vendor)
    sub = w.subscribe(paid.payment_id, Money(50, "EUR"))
    assert w.cancel_subscription(sub.subscription_id).status == "cancelled"
    _later(clock, vendor, 86400)
    assert w.renew_subscriptions() == []
    assert len([e for e in w.activity() if e.kind == "payment"]) == 1


def test_only_a_pass_renews_and_the_cap_covers_todays_price(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, vendor: RunningVendor
) -> None:
    w, _ = _setup(wallet_factory, broker)
    article = _buy(w, vendor, "harbour-bridge-reopens")
    with pytest.raises(MalformedMessage):
        w.subscribe(article.payment_id, Money(50, "EUR"))
    paid = _buy(w, vendor)
    with pytest.raises(MalformedMessage):
        w.subscribe(paid.payment_id, Money(49, "EUR"))
    assert w.list_subscriptions() == []

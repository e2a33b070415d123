"""The wallet's side of refunds and re-delivery, against a real broker and shop: asked from the receipt, the shop's
signed decision checked and kept, the credit on the broker account, every step in Activity."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from netpay.errors import MalformedMessage, NotFound
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor
from tests.support.wallet import quote_for
from wallet_app.services import WalletService

ITEM = "harbour-bridge-reopens"  # 5 cents


def _pay(wallet: WalletService, vendor: RunningVendor, item: str = ITEM) -> Any:
    q, c = quote_for(vendor.url, item)
    checked = wallet.check_quote(q, c, vendor.url)
    return wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")


def _refund_lines(wallet: WalletService) -> list[Any]:
    return [e for e in wallet.activity() if e.kind == "refund_request"]


def test_refund_asked_granted_credited_and_shown(
    funded_wallet: WalletService, vendor: RunningVendor, broker: RunningBroker
) -> None:
    w = funded_wallet
    paid = _pay(w, vendor)
    w.refresh_accounts()
    before = w.account_balance(broker.broker_id)
    assert before is not None
    answer = w.ask_refund(paid.payment_id, "clicked by mistake")
    assert answer["status"] == "granted" and answer["credit"] == "pending"  # shop's payable: not redeemed yet
    lines = _refund_lines(w)
    assert [(e.status, e.amount.amount, e.title) for e in lines] == [
        ("refund_pending", 5, paid.receipt and lines[0].title)
    ]
    assert lines[0].title.startswith("Harbour bridge reopens")
    vendor.vendor.redeemer.redeem()  # the shop's next redemption pays the refund
    assert w.refresh_refunds() == 1
    assert [e.status for e in _refund_lines(w)] == ["refund_credited"]
    after = w.account_balance(broker.broker_id)
    assert after is not None and after.amount == before.amount + 5
    req = w.refund_request(paid.payment_id)
    assert req is not None and req["reason"] == "clicked by mistake" and "never opened" in req["answer"]
    # asking again changes nothing
    assert w.ask_refund(paid.payment_id, "again")["credit"] == "credited"
    assert len(_refund_lines(w)) == 1


def test_refund_refused_by_the_publisher_is_shown_refused(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    paid = _pay(w, vendor)
    vendor.vendor.refunds.mark_opened(paid.receipt.body.receipt_id)
    vendor.vendor.store.write(lambda c: None)
    assert w.ask_refund(paid.payment_id, "did not like it")["status"] == "pending"
    assert [e.status for e in _refund_lines(w)] == ["pending"]
    refund_id = vendor.vendor.refunds.pending()[0]["refund_id"]
    vendor.vendor.refunds.decide(refund_id, False, "you read all of it")
    assert w.refresh_refunds() == 1
    line = _refund_lines(w)[0]
    assert line.status == "refused" and line.amount.amount == 0
    assert w.refund_request(paid.payment_id)["answer"] == "you read all of it"  # type: ignore[index]


def test_refund_of_an_unknown_purchase_or_a_long_reason_is_refused(funded_wallet: WalletService) -> None:
    with pytest.raises(NotFound):
        funded_wallet.ask_refund("no-such-payment", "x")
    with pytest.raises(MalformedMessage):
        funded_wallet.ask_refund("no-such-payment", "x" * 501)


def test_a_decision_for_another_receipt_is_not_believed(
    funded_wallet: WalletService, vendor: RunningVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = funded_wallet
    first = _pay(w, vendor)
    second = _pay(w, vendor, "night-market-returns")
    other = w.ask_refund(first.payment_id, "")
    row = w.vault.one("SELECT decision_json FROM refund_requests WHERE payment_id = ?", (first.payment_id,))
    stolen = {"refund_id": "ref_x", "status": "granted", "credit": "credited", "decision": json.loads(row[0])}
    client = w.payments.vendor_client(vendor.url)
    monkeypatch.setattr(type(client), "request", lambda self, *a, **k: stolen)
    with pytest.raises(Exception) as info:
        w.ask_refund(second.payment_id, "")
    assert getattr(info.value, "code", "") == "untrusted_signer"
    assert w.refund_request(second.payment_id) is None and other["status"] == "granted"


def test_redelivery_after_the_token_is_lost(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    w = funded_wallet
    paid = _pay(w, vendor)
    with w.vault.tx() as c:
        c.execute("UPDATE spends SET access_token = NULL WHERE payment_id = ?", (paid.payment_id,))  # token lost
    token = w.redeliver(paid.payment_id)
    assert requests.get(f"{vendor.url}/v1/access/{ITEM}", params={"token": token}, timeout=30).json()["valid"]
    entry = next(e for e in w.activity() if e.ref == paid.payment_id and e.kind == "payment")
    assert entry.access_token == token


def test_a_bundle_is_one_payment_and_one_receipt_in_the_wallet(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    w = funded_wallet
    paid = _pay(w, vendor, "morning-edition")
    assert paid.amount.amount == 10 and paid.receipt.body.item_id == "morning-edition"
    payments = [e for e in w.activity() if e.kind == "payment"]
    assert len(payments) == 1 and payments[0].amount.amount == 10
    for item in ("harbour-bridge-reopens", "night-market-returns", "observatory-finds-comet"):
        r = requests.get(f"{vendor.url}/v1/access/{item}", params={"token": paid.access_token}, timeout=30)
        assert r.json()["valid"] is True


def test_a_shop_that_is_down_does_not_stop_the_others_refresh(
    funded_wallet: WalletService, vendor_factory: Any
) -> None:
    w = funded_wallet
    news = vendor_factory()
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    a = _pay(w, news)
    b = _pay(w, cards, "happy-birthday-confetti")
    for paid, shop in ((a, news), (b, cards)):
        shop.vendor.refunds.mark_opened(paid.receipt.body.receipt_id)
        assert w.ask_refund(paid.payment_id, "")["status"] == "pending"
    news.stop()
    rid = cards.vendor.refunds.pending()[0]["refund_id"]
    cards.vendor.refunds.decide(rid, False, "no")
    assert w.refresh_refunds() == 1
    assert sorted(e.status for e in _refund_lines(w)) == ["pending", "refused"]

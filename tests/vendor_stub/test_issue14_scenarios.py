"""The two scenarios of issue 14's "Why" and the release point of issue 22, written so they also run (and fail)
against the code before custody windows: a later custodian taking an earlier one's coins; a customer paying at A,
then B, then A again; a vendor the broker never named making a custodian release a chain."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import requests

from netpay.messages import ReleaseRequest
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor, buy_known_chain, payment_of


def test_a_later_custodian_cannot_take_the_coins_of_an_earlier_one(broker: RunningBroker) -> None:
    """The issue's first scenario: A reports 1-12 at once, B takes custody at 12 and is paid 13-37, then claims 0-37."""
    a, b = broker.vendors("a-shop", "b-shop")
    token = broker.new_customer(topup=1000)
    cert, trav = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    broker.claim_custody(a, chain_id)
    i12, w12 = trav.advance(12)
    broker.report_spends(a, [(chain_id, 0, i12, w12)])  # "almost on-line"
    grant = broker.claim_custody(b, chain_id)
    assert grant["lower_bound"]["index"] == 12 and grant["previous"]["vendor_id"] == "a-shop"
    i37, w37 = trav.advance(25)
    greedy = broker.redeem(b.batch([(chain_id, 0, i37, w37)]))
    assert greedy.status_code == 200, greedy.text
    res = greedy.json()["body"]["results"][0]
    assert (res["status"], res["reason"], res["amount"]["amount"]) == ("accepted", "outside_custody", 25)
    assert res["evidence"]["outside"] == [[0, 12]]
    kept = broker.broker.core.db.one("SELECT reason, request FROM refused_claims")
    assert kept is not None and kept["reason"] == "outside_custody" and '"batch_id"' in kept["request"]
    honest = broker.redeem(a.batch([(chain_id, 0, i12, w12)]))
    assert honest.status_code == 200, honest.text
    res = honest.json()["body"]["results"][0]
    assert (res["status"], res["reason"], res["amount"]["amount"]) == ("accepted", None, 12)
    assert broker.payable("a-shop") == 12 and broker.payable("b-shop") == 25
    assert chain_id.hex() not in broker.session.get(f"{broker.url}/v1/revocations").json()["body"]["chains"]
    broker.audit()


def test_a_customer_pays_at_a_then_b_then_a_again(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """The issue's second scenario: custody comes back to A in a new window, and each vendor is paid its coins."""
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    c = buy_known_chain(broker, n=100)
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
    assert b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(3, 13))).status_code == 200
    back = a.pay(payment_of(a.quote("harbour-bridge-reopens"), c.segment(13, 18)))
    assert back.status_code == 200, back.text
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(18, 21))).status_code == 200
    # and once more to B, which released to A
    assert b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(21, 31))).status_code == 200
    for v in (a, b):
        v.vendor.reporter.flush()
        v.vendor.redeemer.redeem()
    rows = broker.broker.core.db.query(
        "SELECT vendor_id, lower_index, upper_index, upper_source FROM custody WHERE chain_id = ? ORDER BY seq",
        (c.cert.body.chain_id.hex(),),
    )
    assert [tuple(r) for r in rows] == [
        (a.vendor_id, 0, 3, "release"),
        (b.vendor_id, 3, 13, "release"),
        (a.vendor_id, 13, 21, "release"),
        (b.vendor_id, 21, None, None),
    ]
    paid = dict(broker.broker.core.db.query("SELECT vendor_id, SUM(amount) FROM redeemed GROUP BY vendor_id"))  # type: ignore[arg-type]
    assert paid == {a.vendor_id: 11, b.vendor_id: 20}
    for v in (a, b):
        assert v.vendor.store.one("SELECT COUNT(*) FROM spends WHERE status != 'redeemed'")[0] == 0  # type: ignore[index]


def test_a_vendor_the_broker_never_named_cannot_make_the_custodian_release(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    a = vendor_factory()
    m = vendor_factory(name="Mallory Mart", vendor_id="mallory")
    c = buy_known_chain(broker, n=100)
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
    a.vendor.reporter.flush()
    before = a.dump()
    request = Signed.sign(
        ReleaseRequest(c.cert.body.chain_id, m.vendor.trust.certificate(), secrets.token_hex(8), m.vendor.now()),
        m.vendor.key,
    )
    resp = requests.post(f"{a.url}/v1/custody/release", json=request.to_wire(), timeout=30)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
    assert a.dump() == before
    # the customer's next payment at A goes through
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(3, 6))).status_code == 200

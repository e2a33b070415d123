"""A hosted chain's grants are custody windows like a desktop chain's hand-offs: one rule pays every coin. A customer
with a hosted e-wallet and a desktop chain shops at the newspaper, the card shop and the newspaper again; each shop
then tries to be paid for the other's coins (of either chain, with paywords it can compute from what it was given):
refused ``outside_custody``, nothing moved; each shop is paid exactly for what it took."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import requests

from broker_stub.audit import audit_report
from netpay.chain import ChainHasher
from netpay.messages import HostedGrant, RedemptionBatch, RedemptionClaim, SpendEntry, SpendReport
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.hosted import PAID, authorize, hosted_customer, hosted_summary
from tests.support.vendor import CARDS, KnownChain, RunningVendor, payment_of


def _grants(broker: RunningBroker) -> list[HostedGrant]:
    rows = broker.broker.core.db.query("SELECT wire FROM hosted_grants ORDER BY from_index")
    return [Signed.from_wire(json.loads(r[0]), HostedGrant).body for r in rows]


def _redeem(broker: RunningBroker, shop: RunningVendor, chain_id: bytes, lo: int, hi: int, word: bytes
            ) -> requests.Response:  # fmt: skip
    v = shop.vendor
    claim = RedemptionClaim(chain_id, lo, hi, word, None)
    batch = RedemptionBatch(secrets.token_hex(6), v.vendor_id, (claim,), v.now())
    return broker.session.post(f"{broker.url}/v1/redemptions", json=Signed.sign(batch, v.key).to_wire())


def _money(broker: RunningBroker) -> object:
    db = broker.broker.core.db
    return (
        [tuple(r) for r in db.query("SELECT account, sub, SUM(amount) FROM ledger_entries GROUP BY account, sub")],
        [tuple(r) for r in db.query("SELECT * FROM redeemed ORDER BY chain_id, from_index")],
        [tuple(r) for r in db.query("SELECT chain_id, seq, lower_index, upper_index, upper_source FROM custody")],
    )


def _paid(broker: RunningBroker, vendor_id: str, chain_id: bytes) -> list[tuple[int, int]]:
    rows = broker.broker.core.db.query(
        "SELECT from_index, to_index FROM redeemed WHERE vendor_id = ? AND chain_id = ? ORDER BY from_index",
        (vendor_id, chain_id.hex()),
    )
    return [(int(r[0]), int(r[1])) for r in rows]


def test_hosted_and_desktop_custody_under_one_rule(broker: RunningBroker, vendor: RunningVendor,
                                                  vendor_factory: Callable[..., RunningVendor]) -> None:  # fmt: skip
    news, cards = vendor, vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    name, token = hosted_customer(broker)
    cert, trav = broker.buy_chain(token, length=100, card=True)
    desk = KnownChain(cert, trav, token, trav.to_bytes())
    d_id = cert.body.chain_id
    browser = requests.Session()

    def pay_desktop(shop: RunningVendor, item: str, lo: int, hi: int) -> None:
        r = shop.pay(payment_of(shop.quote(item), desk.segment(lo, hi)))
        assert r.status_code == 200, r.text

    assert PAID in authorize(browser, news, name, "0.50").text  # hosted (0, 3] at the newspaper
    pay_desktop(news, "night-market-returns", 0, 3)  # desktop (0, 3] at the newspaper
    assert PAID in authorize(browser, cards, name, "0.40", item="thank-you-sunrise").text  # hosted (3, 13]
    pay_desktop(cards, "thank-you-sunrise", 3, 13)  # desktop (3, 13]: a hand-off, the newspaper releases at 3
    assert PAID in authorize(browser, news, name, "0.20", item="observatory-finds-comet").text  # hosted (13, 17]
    first, second, third = _grants(broker)
    h_id = first.chain_id
    assert (first.from_index, second.from_index, third.from_index) == (0, 3, 13)
    for shop in (news, cards):
        shop.vendor.reporter.flush()
    windows = broker.broker.core.db.query(
        "SELECT vendor_id, lower_index, lower_source, upper_index, upper_source FROM custody WHERE chain_id = ? "
        "ORDER BY seq",
        (h_id.hex(),),
    )
    assert [tuple(w) for w in windows] == [
        (news.vendor_id, 0, "grant", 3, "release"),
        (cards.vendor_id, 3, "grant", 13, "release"),
        (news.vendor_id, 13, "grant", 33, "grant"),
    ]

    def word(g: HostedGrant, index: int) -> bytes:  # what the grant's vendor can compute: any W at or below its top
        return ChainHasher(g.chain_id).walk(g.top_payword, g.to_index, index)

    before = _money(broker)
    attempts = [
        (news, h_id, 3, 13, word(first, 13)),  # the card shop's hosted coins, from the newspaper's first slice
        (news, h_id, 33, 40, word(first, 40)),  # above its present grant, inside its first slice
        (cards, h_id, 13, 17, word(second, 17)),  # the newspaper's later hosted coins, from the card shop's slice
        (cards, h_id, 17, 43, word(second, 43)),  # the rest of the card shop's ended slice
        (cards, d_id, 0, 3, desk.word(3)),  # the newspaper's desktop coins (W3 hashes down from the W13 it was paid)
        (news, d_id, 3, 13, desk.word(13)),  # the card shop's desktop coins
    ]
    for shop, cid, lo, hi, w in attempts:
        r = _redeem(broker, shop, cid, lo, hi, w)
        assert r.status_code == 200, r.text
        [res] = r.json()["body"]["results"]
        assert res["status"] == "rejected" and res["reason"] == "outside_custody", (shop.vendor_id, lo, hi, res)
        v = shop.vendor
        report = SpendReport(secrets.token_hex(6), v.vendor_id, (SpendEntry(cid, lo, hi, w),), v.now())
        r = broker.session.post(f"{broker.url}/v1/spend-reports", json=Signed.sign(report, v.key).to_wire())
        assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "outside_custody", r.text
    assert _money(broker) == before  # nothing paid, no window moved
    for shop in (news, cards):  # the honest redemptions of what each took
        shop.vendor.redeemer.redeem()
    assert _paid(broker, news.vendor_id, h_id) == [(0, 3), (13, 17)]
    assert _paid(broker, cards.vendor_id, h_id) == [(3, 13)]
    assert _paid(broker, news.vendor_id, d_id) == [(0, 3)]
    assert _paid(broker, cards.vendor_id, d_id) == [(3, 13)]
    assert broker.broker.core.db.query("SELECT COUNT(*) FROM custody_overlaps")[0][0] == 0  # nobody charged
    report = audit_report(broker.broker.core)
    assert report["balanced"], report
    s = hosted_summary(broker, token)
    assert s["hosted_balance"]["amount"] == 200 - 3 - 10 - 20  # the newspaper's present grant holds 20

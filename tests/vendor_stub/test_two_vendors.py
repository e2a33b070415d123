"""Done-when: one chain pays three items at vendor A, then two at vendor B; B takes custody from A, A refuses the
chain from then on, both redeem, and the broker pays each vendor exactly for its own coins."""

from __future__ import annotations

from collections.abc import Callable

from netpay.messages import CustodyRelease, Receipt
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor, buy_chain, pay


def test_chain_moves_from_a_to_b_and_each_is_paid_for_its_own_coins(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    assert a.url != b.url
    assert {i["item_id"] for i in a.session.get(f"{a.url}/v1/catalog").json()["items"]} != {
        i["item_id"] for i in b.session.get(f"{b.url}/v1/catalog").json()["items"]
    }
    cert, traversal = buy_chain(broker, n=200, coin_value=1)

    a_items = ["harbour-bridge-reopens", "night-market-returns", "observatory-finds-comet"]  # 5 + 3 + 4 cents
    for item in a_items:
        resp = pay(a, item, cert, traversal)
        assert resp.status_code == 200, resp.text
        receipt = Signed.from_wire(resp.json()["receipt"], Receipt).require_signer(a.vendor.key.public)
        assert receipt.item_id == item
    assert traversal.position == 12

    b_items = ["thank-you-sunrise", "love-heart"]  # 10 + 15 cents
    for item in b_items:
        resp = pay(b, item, cert, traversal)
        assert resp.status_code == 200, resp.text
    assert traversal.position == 37

    # B took custody from A with A's signed release at index 12; A no longer accepts the chain.
    row = b.vendor.store.one("SELECT base_source, base_index, base_release FROM chains")
    assert row is not None and row["base_source"] == "release" and row["base_index"] == 12
    a_row = a.vendor.store.one("SELECT status, released_to, release FROM chains")
    assert a_row is not None and a_row["status"] == "released" and a_row["released_to"] == b.vendor_id
    import json

    release = Signed.from_wire(json.loads(a_row["release"]), CustodyRelease).require_signer(a.vendor.key.public)
    assert release.last_index == 12

    # The customer comes back to A: A claims the chain again (a new custody window) and B releases it at 37.
    back = pay(a, "council-budget-explained", cert, traversal)
    assert back.status_code == 200, back.text
    price = Signed.from_wire(back.json()["receipt"], Receipt).body.amount.amount
    a_row = a.vendor.store.one("SELECT status, base_source, base_index, custody_window FROM chains")
    assert a_row is not None and tuple(a_row) == ("held", "release", 37, 3)

    a_sum = a.vendor.redeemer.redeem()
    b_sum = b.vendor.redeemer.redeem()
    assert (a_sum["accepted"], a_sum["accepted_amount"], a_sum["rejected"]) == (4, 12 + price, 0)
    assert (b_sum["accepted"], b_sum["accepted_amount"], b_sum["rejected"]) == (2, 25, 0)

    paid = dict(
        broker.broker.core.db.query("SELECT vendor_id, SUM(amount) FROM redeemed GROUP BY vendor_id")  # type: ignore[arg-type]
    )
    assert paid == {a.vendor_id: 12 + price, b.vendor_id: 25}
    # Redeeming again sends nothing new and pays nothing twice.
    assert a.vendor.redeemer.redeem()["batches"] == 0
    statuses = {r[0] for r in a.vendor.store.query("SELECT status FROM spends")}
    assert statuses == {"redeemed"}


def test_spend_reports_reach_the_broker_soon_after_payment(broker: RunningBroker, vendor: RunningVendor) -> None:
    import time

    cert, traversal = buy_chain(broker, n=50)
    assert pay(vendor, "night-market-returns", cert, traversal).status_code == 200
    deadline = time.monotonic() + 10
    reported = 0
    while time.monotonic() < deadline and reported != 3:
        row = broker.broker.core.db.one(
            "SELECT reported_index FROM chains WHERE chain_id = ?", (cert.body.chain_id.hex(),)
        )
        reported = row[0] if row else 0
        time.sleep(0.05)
    assert reported == 3

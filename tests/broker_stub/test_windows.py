"""Custody windows at redemption: a vendor is paid only for coins inside its own windows; custody can come back to
a vendor; releases bound windows; an overlap the customer caused is charged to its account, even below zero."""

from __future__ import annotations

from netpay.messages import CustodyGrant, CustodyRelease
from netpay.signed import Signed
from tests.support.broker import RunningBroker


def test_claiming_after_releasing_is_outside_custody(broker: RunningBroker) -> None:
    a, b = broker.vendors("a-shop", "b-shop")
    token = broker.new_customer(topup=1000)
    cert, trav = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    broker.claim_custody(a, chain_id)
    i10, w10 = trav.advance(10)
    grant = broker.claim_custody(b, chain_id)  # A had reported nothing: the broker hands 0 on
    assert grant["lower_bound"]["index"] == 0
    release = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i10, w10, b.now()), a.key)
    recorded = broker.session.post(f"{broker.url}/v1/custody/releases", json=release.to_wire())
    assert recorded.status_code == 200 and recorded.json()["recorded"] is True
    again = broker.session.post(f"{broker.url}/v1/custody/releases", json=release.to_wire())
    assert again.status_code == 200 and again.json()["recorded"] is False
    i20, w20 = trav.advance(10)
    before = broker.broker.core.db.dump()
    late = broker.redeem(a.batch([(chain_id, i10, i20, w20)]))
    assert late.status_code == 200
    res = late.json()["body"]["results"][0]
    assert (res["status"], res["reason"]) == ("rejected", "outside_custody")
    assert broker.payable("a-shop") == 0
    # B's claim below the release it was given is outside its window too; inside it is paid
    low = broker.redeem(b.batch([(chain_id, 0, i20, w20)]))
    res = low.json()["body"]["results"][0]
    assert (res["reason"], res["amount"]["amount"]) == ("outside_custody", 10)
    assert broker.broker.core.db.dump() != before
    assert broker.redeem(a.batch([(chain_id, 0, i10, w10)])).json()["body"]["results"][0]["amount"]["amount"] == 10
    broker.audit()


def test_custody_comes_back_to_a_vendor_in_a_new_window(broker: RunningBroker) -> None:
    a, b = broker.vendors("a-shop", "b-shop")
    token = broker.new_customer(topup=1000)
    cert, trav = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    first = broker.claim_custody(a, chain_id)
    assert first["window"] == 1 and first["grant"] is None
    i5, w5 = trav.advance(5)
    g_b = broker.claim_custody(b, chain_id)
    grant = Signed.from_wire(g_b["grant"], CustodyGrant).require_signer(broker.public_key)
    assert (grant.vendor_id, grant.previous, grant.window) == ("b-shop", "a-shop", 2)
    rel_a = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i5, w5, a.now()), a.key)
    i9, w9 = trav.advance(4)
    g_a = broker.claim_custody(a, chain_id)  # A → B → A
    assert g_a["window"] == 3 and g_a["previous"]["vendor_id"] == "b-shop"
    rel_b = Signed.sign(CustodyRelease(chain_id, "b-shop", "a-shop", i9, w9, b.now()), b.key)
    i15, w15 = trav.advance(6)
    # A redeems both of its windows, with B's release on the claim that starts its second window
    batch = a.batch([(chain_id, 0, i5, w5)])
    assert broker.redeem(batch).json()["body"]["results"][0]["amount"]["amount"] == 5
    second = broker.redeem(a.batch([(chain_id, i9, i15, w15)], release=rel_b))
    assert second.json()["body"]["results"][0]["amount"]["amount"] == 6
    # B (with A's release) is paid its window; its claim reaching into A's second window is cut there
    paid = broker.redeem(b.batch([(chain_id, i5, i15, w15)], release=rel_a))
    res = paid.json()["body"]["results"][0]
    assert (res["reason"], res["amount"]["amount"], res["evidence"]["outside"]) == ("outside_custody", 4, [[9, 15]])
    # A's one claim spanning both windows is paid only for its own parts (all already paid here)
    spanning = broker.redeem(a.batch([(chain_id, 0, i15, w15)]))
    assert spanning.json()["error"]["details"]["reason"] == "already_redeemed"
    windows = broker.broker.core.db.query(
        "SELECT vendor_id, lower_index, upper_index, upper_source FROM custody WHERE chain_id = ? ORDER BY seq",
        (chain_id.hex(),),
    )
    assert [tuple(r) for r in windows] == [("a-shop", 0, 5, "release"), ("b-shop", 5, 9, "release"),
                                           ("a-shop", 9, None, None)]  # fmt: skip
    broker.audit()


def test_forged_and_misfit_releases_are_refused_and_change_nothing(broker: RunningBroker) -> None:
    a, b, c = broker.vendors("a-shop", "b-shop", "c-shop")
    token = broker.new_customer(topup=1000)
    cert, trav = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    broker.claim_custody(a, chain_id)
    i8, w8 = trav.advance(8)
    broker.report_spends(a, [(chain_id, 0, i8, w8)])
    broker.claim_custody(b, chain_id)
    before = broker.broker.core.db.dump()
    forged = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i8, w8, 1), c.key)  # not A's key
    r = broker.session.post(f"{broker.url}/v1/custody/releases", json=forged.to_wire())
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    wrong_word = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i8 + 1, w8, 1), a.key)
    r = broker.session.post(f"{broker.url}/v1/custody/releases", json=wrong_word.to_wire())
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")
    to_c = Signed.sign(CustodyRelease(chain_id, "a-shop", "c-shop", i8, w8, 1), a.key)  # no hand-off A → C
    r = broker.session.post(f"{broker.url}/v1/custody/releases", json=to_c.to_wire())
    assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["details"]["reason"]) == (
        409, "conflict", "no_handoff")  # fmt: skip
    assert broker.broker.core.db.dump() == before
    broker.audit()


def test_an_overlap_larger_than_the_balance_leaves_it_negative_and_owed(broker: RunningBroker) -> None:
    a, b = broker.vendors("a-shop", "b-shop")
    token = broker.new_customer(topup=100)
    cert, trav = broker.buy_chain(token, length=100)  # the whole balance
    chain_id = cert.body.chain_id
    broker.claim_custody(a, chain_id)
    i30, w30 = trav.advance(30)
    broker.claim_custody(b, chain_id)  # A down: B starts at the broker's bound, 0; the customer spends 1-30 twice
    assert broker.redeem(a.batch([(chain_id, 0, i30, w30)])).status_code == 200
    res = broker.redeem(b.batch([(chain_id, 0, i30, w30)])).json()["body"]["results"][0]
    assert (res["status"], res["reason"], res["amount"]["amount"]) == ("accepted", "custody_overlap", 30)
    auth = {"Authorization": f"Bearer {token}"}
    statement = broker.session.get(f"{broker.url}/v1/account/statement", headers=auth).json()
    assert statement["balance"]["amount"] == -30
    assert [e["kind"] for e in statement["entries"]][-1] == "custody_overlap"
    # buying more is refused while the balance is negative; a top-up pays the debt first
    refused = broker.session.post(
        f"{broker.url}/v1/chains",
        json={
            "chain_id": "11" * 16,
            "touchstone": "22" * 32,
            "length": 10,
            "coin_value": {"amount": 1, "currency": "EUR"},
        },
        headers={**auth, "Idempotency-Key": "k1"},
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (402, "insufficient_funds")
    audit = broker.audit()
    assert audit["checks"]["overlaps_charged"] is True


def test_a_release_sent_again_is_known_even_when_a_later_hand_off_starts_at_its_index(broker: RunningBroker) -> None:
    """Found by the protocol model: A → B → A → B where B took no coin, so A's second window starts at the first
    release's index; sending that first release again was refused as conflicting with the second."""
    a, b = broker.vendors("a-shop", "b-shop")
    token = broker.new_customer(topup=1000)
    cert, trav = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    broker.claim_custody(a, chain_id)
    i5, w5 = trav.advance(5)
    broker.claim_custody(b, chain_id)
    first = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i5, w5, a.now()), a.key)
    url = f"{broker.url}/v1/custody/releases"
    assert broker.session.post(url, json=first.to_wire()).json()["recorded"] is True
    broker.claim_custody(a, chain_id)
    back = Signed.sign(CustodyRelease(chain_id, "b-shop", "a-shop", i5, w5, b.now()), b.key)  # B took nothing
    assert broker.session.post(url, json=back.to_wire()).json()["recorded"] is True
    i9, w9 = trav.advance(4)
    broker.claim_custody(b, chain_id)
    second = Signed.sign(CustodyRelease(chain_id, "a-shop", "b-shop", i9, w9, a.now()), a.key)
    assert broker.session.post(url, json=second.to_wire()).json()["recorded"] is True
    before = broker.broker.core.db.dump()
    for again in (first, second):
        resp = broker.session.post(url, json=again.to_wire())
        assert resp.status_code == 200 and resp.json()["recorded"] is False, resp.text
    assert broker.broker.core.db.dump() == before
    broker.audit()

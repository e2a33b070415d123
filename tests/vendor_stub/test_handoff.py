"""Custody hand-off when the previous vendor is down, coins spent twice settled at redemption (the overlap rule),
releases that race with payments on the same chain, custody coming back to a vendor, and releases only to the vendor
the broker named."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable

import requests

from netpay.messages import CustodyClaim, CustodyGrant, CustodyRelease, PaymentRefusal, ReleaseRequest
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor, buy_known_chain, payment_of
from vendor_stub.cli import main as vendor_cli


def test_previous_vendor_down_then_double_spend_is_paid_to_both_and_charged_to_the_customer(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor], capsys: object
) -> None:
    a = vendor_factory(background=False)  # reports only when the test says so
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards", release_timeout_s=1.0)
    c = buy_known_chain(broker, n=100)

    assert a.pay(payment_of(a.quote("harbour-bridge-reopens"), c.segment(0, 5))).status_code == 200
    assert a.vendor.reporter.flush() == 1  # the broker's lower bound is now 5
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(5, 8))).status_code == 200  # not reported
    a.stop()

    # B cannot get a release from A: it starts above the broker's lower bound (5), not at A's real index (8).
    low = b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(3, 13)))
    assert low.status_code == 409 and low.json()["error"]["code"] == "index_conflict"
    refusal = Signed.from_wire(low.json()["error"]["details"]["refusal"], PaymentRefusal).body
    assert refusal.held == ((c.cert.body.chain_id, 5),)
    row = b.vendor.store.one("SELECT base_source, base_index, exact FROM chains")
    assert row is not None and (row["base_source"], row["base_index"], row["exact"]) == ("lower_bound", 5, 0)

    # The customer double-spends coins 6..8 (already paid at A) at B: B cannot know and accepts.
    double = b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(5, 15)))
    assert double.status_code == 200, double.text
    # From then on B is exact again: the next segment must start at 15.
    assert b.pay(payment_of(b.quote("winter-greetings-snow"), c.segment(16, 26))).status_code == 409
    assert b.pay(payment_of(b.quote("winter-greetings-snow"), c.segment(15, 25))).status_code == 200

    assert b.vendor.redeemer.redeem()["accepted"] == 2
    # A is still down; its operator redeems from the shell with A's data dir.
    db = ["--database", a.settings.database_url] if a.settings.database_url else []
    assert vendor_cli(["redeem", "--data-dir", str(a.settings.data_dir), "--broker", broker.url, *db]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[attr-defined]
    # Both of A's claims are inside A's window (it never released): 0-5 is paid from the chain, 5-8 (which B was
    # paid too, inside B's window) is paid as a custody overlap charged to the customer who spent it twice.
    assert summary["accepted"] == 2 and summary["rejected"] == 0 and summary["accepted_amount"] == 8

    from vendor_stub.storage import Store

    store = Store(a.settings.database)
    try:
        overlap = store.one("SELECT from_index, to_index, status, reason, evidence FROM spends WHERE from_index = 5")
    finally:
        store.close()
    assert overlap is not None and (overlap["status"], overlap["reason"]) == ("redeemed", "custody_overlap")
    evidence = json.loads(overlap["evidence"])
    assert evidence["chain_id"] == c.cert.body.chain_id.hex()
    assert evidence["overlaps"][0]["redeemed"]["vendor_id"] == b.vendor_id
    assert evidence["claim"]["payword"] == c.word(8).hex()
    paid = dict(broker.broker.core.db.query("SELECT vendor_id, SUM(amount) FROM redeemed GROUP BY vendor_id"))  # type: ignore[arg-type]
    assert paid == {a.vendor_id: 5, b.vendor_id: 20}
    charged = broker.broker.core.db.query("SELECT vendor_id, from_index, to_index, amount FROM custody_overlaps")
    assert [tuple(r) for r in charged] == [(a.vendor_id, 5, 8, 3)]
    statement = broker.session.get(
        f"{broker.url}/v1/account/statement", headers={"Authorization": f"Bearer {c.token}"}
    ).json()
    assert [e["amount"]["amount"] for e in statement["entries"] if e["kind"] == "custody_overlap"] == [-3]
    revoked = broker.session.get(f"{broker.url}/v1/revocations").json()["body"]["chains"]
    assert c.cert.body.chain_id.hex() in revoked


def _grant_for(broker: RunningBroker, v: RunningVendor, chain_id: bytes) -> Signed[CustodyGrant]:
    """``v`` claims custody at the broker as its own code would; returns the broker's grant naming it."""
    claim = Signed.sign(CustodyClaim(v.vendor_id, chain_id, secrets.token_hex(8), v.vendor.now()), v.vendor.key)
    answer = broker.session.post(f"{broker.url}/v1/custody/claims", json=claim.to_wire()).json()
    return Signed.from_wire(answer["grant"], CustodyGrant)


def _ask(a: RunningVendor, b: RunningVendor, chain_id: bytes, grant: Signed[CustodyGrant] | None,
         nonce: str | None = None) -> requests.Response:  # fmt: skip
    request = Signed.sign(
        ReleaseRequest(chain_id, b.vendor.trust.certificate(), nonce or secrets.token_hex(8), b.vendor.now(), grant),
        b.vendor.key,
    )
    return requests.post(f"{a.url}/v1/custody/release", json=request.to_wire(), timeout=30)


def test_release_racing_payments_loses_nothing_and_accepts_nothing_twice(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    c = buy_known_chain(broker, n=300)
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
    window = a.vendor.store.one("SELECT custody_window FROM chains")["custody_window"]  # type: ignore[index]

    # Twelve 3-coin payments that must land in order, sent one after another (as a wallet pays one chain) while B
    # asks A to release the chain. Once the release is asked for, the sender stops; a payment that reaches A after
    # the release makes A claim the chain back (custody coming back), in a new window, never inside the released one.
    payments = [payment_of(a.quote("night-market-returns"), c.segment(3 * i, 3 * i + 3)) for i in range(1, 13)]
    outcome: dict[int, str] = {}
    lock = threading.Lock()
    asked = threading.Event()

    def send(indexes: list[int]) -> None:
        with requests.Session() as s:
            pending = list(indexes)
            while pending and not asked.is_set():
                for i in list(pending):
                    r = s.post(f"{a.url}/v1/payments", json=payments[i], timeout=30)
                    code = "ok" if r.status_code == 200 else r.json()["error"]["code"]
                    if code in ("ok", "custody_conflict") or asked.is_set():
                        with lock:
                            outcome[i] = code
                        pending.remove(i)
                    else:
                        assert code == "index_conflict", r.text

    threads = [threading.Thread(target=send, args=(list(range(12)),))]
    for t in threads:
        t.start()
    while True:
        with lock:
            if sum(1 for v in outcome.values() if v == "ok") >= 3:
                break
        time.sleep(0.001)
    grant = _grant_for(broker, b, c.cert.body.chain_id)
    asked.set()
    resp = _ask(a, b, c.cert.body.chain_id, grant, nonce="race-1")
    assert resp.status_code == 200, resp.text
    release = Signed.from_wire(resp.json(), CustodyRelease).require_signer(a.vendor.key.public)
    for t in threads:
        t.join()

    last = release.last_index
    assert last % 3 == 0 and last >= 12 and release.last_payword == c.word(last)
    spent = [(r[0], r[1]) for r in a.vendor.store.query("SELECT from_index, to_index FROM spends ORDER BY from_index")]
    assert [s for s in spent if s[1] <= last] == [(3 * i, 3 * i + 3) for i in range(last // 3)]  # a prefix, no gap
    row = a.vendor.store.one("SELECT status, custody_window FROM chains")
    assert row is not None
    if any(s[1] > last for s in spent):  # accepted after the release only in a window claimed afterwards
        assert row["status"] == "held" and row["custody_window"] > window
    else:
        assert row["status"] == "released"
        # the same request again gets the same release
        again = _ask(a, b, c.cert.body.chain_id, grant, nonce="race-1")
        assert again.status_code == 200 and again.json() == resp.json()


def test_a_release_needs_the_broker_grant_naming_the_requester(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """Issue 22: a certified vendor that never claimed the chain cannot make its custodian hand it over."""
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    m = vendor_factory(name="Mallory Mart", vendor_id="mallory")
    c = buy_known_chain(broker, n=100)
    cid = c.cert.body.chain_id
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
    a.vendor.reporter.flush()
    before = a.dump()
    no_grant = _ask(a, m, cid, None)
    assert (no_grant.status_code, no_grant.json()["error"]["code"]) == (403, "forbidden")
    b_grant = _grant_for(broker, b, cid)
    stolen = _ask(a, m, cid, b_grant)  # B's grant shown by Mallory
    assert (stolen.status_code, stolen.json()["error"]["details"]["reason"]) == (403, "not_named")
    forged = Signed.sign(b_grant.body, m.vendor.key)  # a grant Mallory signed herself
    assert _ask(a, b, cid, forged).json()["error"]["code"] == "untrusted_signer"
    assert a.dump() == before
    # the grant the broker gave B does it: A releases at its index
    named = _ask(a, b, cid, b_grant)
    assert named.status_code == 200, named.text
    assert Signed.from_wire(named.json(), CustodyRelease).require_signer(a.vendor.key.public).last_index == 3


def test_custody_coming_back_never_starts_below_what_the_vendor_itself_accepted(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """Found by the protocol model: a vendor taking a chain back while the custodian is down started at the broker's
    lower bound, below coins it had accepted itself, and a customer re-spending them made it fail (500)."""
    a = vendor_factory(background=False)
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards", background=False, release_timeout_s=0.5)
    c = buy_known_chain(broker, n=100)
    assert b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(0, 10))).status_code == 200
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(10, 13))).status_code == 200
    a.stop()  # nothing was reported: the broker's lower bound is still 0
    again = b.pay(payment_of(b.quote("thank-you-sunrise"), c.segment(0, 10)))
    assert again.status_code == 409 and again.json()["error"]["code"] == "index_conflict", again.text
    refusal = Signed.from_wire(again.json()["error"]["details"]["refusal"], PaymentRefusal).body
    assert refusal.held == ((c.cert.body.chain_id, 10),)

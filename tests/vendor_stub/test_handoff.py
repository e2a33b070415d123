"""Custody hand-off when the previous vendor is down, double spends caught at redemption, and releases that race
with payments on the same chain."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import requests

from netpay.messages import CustodyRelease, PaymentRefusal, ReleaseRequest
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor, buy_known_chain, payment_of
from vendor_stub.cli import main as vendor_cli


def test_previous_vendor_down_then_double_spend_is_caught_at_redemption(
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
    assert summary["accepted"] == 1 and summary["rejected"] == 1 and summary["accepted_amount"] == 5

    from vendor_stub.storage import Store

    store = Store(a.settings.database)
    try:
        rejected = store.one("SELECT from_index, to_index, reason, evidence FROM spends WHERE status = 'rejected'")
    finally:
        store.close()
    assert rejected is not None and (rejected["from_index"], rejected["to_index"]) == (5, 8)
    assert rejected["reason"] == "double_spend"
    evidence = json.loads(rejected["evidence"])
    assert evidence["chain_id"] == c.cert.body.chain_id.hex()
    assert evidence["redeemed"]["vendor_id"] == b.vendor_id
    assert evidence["claim"]["payword"] == c.word(8).hex()
    paid = dict(broker.broker.core.db.query("SELECT vendor_id, SUM(amount) FROM redeemed GROUP BY vendor_id"))  # type: ignore[arg-type]
    assert paid == {a.vendor_id: 5, b.vendor_id: 20}


def test_release_racing_payments_loses_nothing_and_accepts_nothing_twice(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    c = buy_known_chain(broker, n=300)
    assert a.pay(payment_of(a.quote("night-market-returns"), c.segment(0, 3))).status_code == 200

    # Twelve 3-coin payments that must land in order, sent from 4 threads while B asks A to release the chain.
    payments = [payment_of(a.quote("night-market-returns"), c.segment(3 * i, 3 * i + 3)) for i in range(1, 13)]
    outcome: dict[int, str] = {}
    lock = threading.Lock()

    def send(indexes: list[int]) -> None:
        with requests.Session() as s:
            pending = list(indexes)
            while pending:
                for i in list(pending):
                    r = s.post(f"{a.url}/v1/payments", json=payments[i], timeout=30)
                    code = "ok" if r.status_code == 200 else r.json()["error"]["code"]
                    if code in ("ok", "custody_conflict"):
                        with lock:
                            outcome[i] = code
                        pending.remove(i)
                    else:
                        assert code == "index_conflict", r.text

    threads = [threading.Thread(target=send, args=([i for i in range(12) if i % 4 == k],)) for k in range(4)]
    for t in threads:
        t.start()
    while True:
        with lock:
            if sum(1 for v in outcome.values() if v == "ok") >= 3:
                break
        time.sleep(0.001)
    request = Signed.sign(
        ReleaseRequest(c.cert.body.chain_id, b.vendor.trust.certificate(), "race-1", b.vendor.now()), b.vendor.key
    )
    resp = requests.post(f"{a.url}/v1/custody/release", json=request.to_wire(), timeout=30)
    assert resp.status_code == 200, resp.text
    release = Signed.from_wire(resp.json(), CustodyRelease).require_signer(a.vendor.key.public)
    for t in threads:
        t.join()

    accepted = sorted(i for i, v in outcome.items() if v == "ok")
    assert len(outcome) == 12 and len(accepted) >= 3
    assert accepted == list(range(len(accepted)))  # a prefix: nothing accepted after the release, no gap
    assert release.last_index == 3 + 3 * len(accepted)
    assert release.last_payword == c.word(release.last_index)
    spent = [(r[0], r[1]) for r in a.vendor.store.query("SELECT from_index, to_index FROM spends ORDER BY from_index")]
    assert spent == [(3 * i, 3 * i + 3) for i in range(len(accepted) + 1)]
    # the same request again gets the same release; another vendor's request is refused
    again = requests.post(f"{a.url}/v1/custody/release", json=request.to_wire(), timeout=30)
    assert again.status_code == 200 and again.json() == resp.json()

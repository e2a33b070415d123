"""A price paid from two chains at once: both segments are checked, recorded together, and both chains advance."""

from __future__ import annotations

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_known_chain, payment_of


def test_one_payment_from_two_chains(broker: RunningBroker, vendor: RunningVendor) -> None:
    a, b = buy_known_chain(broker, n=20), buy_known_chain(broker, n=20)
    quote = vendor.quote("harbour-bridge-reopens")  # 5 cents
    resp = vendor.pay(payment_of(quote, a.segment(0, 3), b.segment(0, 2)))
    assert resp.status_code == 200, resp.text
    segments = resp.json()["receipt"]["body"]["segments"]
    assert [(s["from_index"], s["to_index"]) for s in segments] == [(0, 3), (0, 2)]
    held = {
        r["chain_id"]: r["last_index"] for r in vendor.vendor.store.query("SELECT chain_id, last_index FROM chains")
    }
    assert held == {a.cert.body.chain_id.hex(): 3, b.cert.body.chain_id.hex(): 2}

    # one bad segment refuses the whole payment and records nothing for either chain
    vendor.vendor.reporter.flush()
    before = vendor.dump()
    bad = vendor.pay(payment_of(vendor.quote("harbour-bridge-reopens"), a.segment(3, 6), b.segment(2, 4, a.word(4))))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_payword"
    held_after = bad.json()["error"]["details"]["refusal"]["body"]["held"]
    assert [h["index"] for h in held_after] == [3, 2]
    assert vendor.dump() == before
    # the same chain twice in one payment is malformed
    twice = vendor.pay(payment_of(vendor.quote("harbour-bridge-reopens"), a.segment(3, 5), a.segment(5, 8)))
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "malformed"


def test_racing_payments_for_one_quote_exactly_one_wins(broker: RunningBroker, vendor: RunningVendor) -> None:
    import threading

    import requests

    chains = [buy_known_chain(broker, n=20) for _ in range(4)]
    for c in chains:  # the vendor holds every chain already, so the race is on the quote alone
        assert vendor.pay(payment_of(vendor.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
    quote = vendor.quote("night-market-returns")
    bodies = [payment_of(quote, c.segment(3, 6)) for c in chains]
    codes: list[str] = []
    barrier = threading.Barrier(len(bodies))

    def send(body: dict) -> None:  # type: ignore[type-arg]
        barrier.wait()
        r = requests.post(f"{vendor.url}/v1/payments", json=body, timeout=30)
        codes.append("ok" if r.status_code == 200 else r.json()["error"]["code"])

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == ["ok", "quote_paid", "quote_paid", "quote_paid"]
    paid = vendor.vendor.store.query("SELECT COUNT(*) FROM payments WHERE quote_id = ?", (quote["body"]["quote_id"],))
    assert paid[0][0] == 1
    # the losers' coins were not taken: their chains are still at index 3
    held = sorted(r[0] for r in vendor.vendor.store.query("SELECT last_index FROM chains"))
    assert held == [3, 3, 3, 6]

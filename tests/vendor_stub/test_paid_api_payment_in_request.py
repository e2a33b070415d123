"""The paid API's payment inside the request (docs/protocol.md §5, "Paid API over HTTP 402"), written from the
document alone with a raw HTTP client: the challenge names the header, a payment sent in it is taken as
``POST /v1/payments`` takes it, and the request is answered as if it carried the receipt's token. And what an
attacker tries: the same payment sent twice or for another query, a quote paid twice, a quote for another item, a
header that is not a payment. Real broker and shop on loopback."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import requests

from netpay.encoding import canonical_json
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_known_chain, payment_of


def b64(data: Any) -> str:
    return base64.urlsafe_b64encode(canonical_json(data)).rstrip(b"=").decode()


def unb64(value: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def search(vendor: RunningVendor, q: str, payment: dict[str, Any] | None = None) -> requests.Response:
    headers = {} if payment is None else {"NetPay-Payment": b64(payment)}
    return requests.get(f"{vendor.url}/api/search", params={"q": q}, headers=headers, timeout=30)


def payments_recorded(vendor: RunningVendor) -> int:
    return int(vendor.vendor.store.one("SELECT COUNT(*) FROM payments")[0])


def test_a_payment_in_the_request_answers_with_the_resource_the_receipt_and_the_next_quote(
    broker: RunningBroker, vendor: RunningVendor
) -> None:
    chain = buy_known_chain(broker, n=20)
    challenge = search(vendor, "comet")
    assert challenge.status_code == 402
    assert 'payment_header="NetPay-Payment"' in challenge.headers["WWW-Authenticate"]
    resp = search(vendor, "comet", payment_of(challenge.json()["quote"], chain.segment(0, 1)))
    assert resp.status_code == 200, resp.text
    assert [r["item_id"] for r in resp.json()["results"]] == ["observatory-finds-comet"]
    receipt = unb64(resp.headers["NetPay-Receipt"])["receipt"]
    assert receipt["body"]["amount"] == {"amount": 1, "currency": "EUR"}
    # the receipt's token is the one the request was answered with: bound to this query
    token = receipt["body"]["access_token"]
    again = requests.get(f"{vendor.url}/api/search", params={"q": "comet"},
                         headers={"Authorization": f"NetPay {token}"}, timeout=30)  # fmt: skip
    assert again.status_code == 200
    # the next query's quote: paid in the very request that asks it, no challenge first
    offer = unb64(resp.headers["NetPay-Quote"])
    assert offer["quote"]["body"]["item_id"] == "archive-search"
    assert offer["quote"]["body"]["item_url"] == f"{vendor.url}/api/search"
    nxt = search(vendor, "market", payment_of(offer["quote"], chain.segment(1, 2)))
    assert nxt.status_code == 200 and nxt.json()["query"] == "market"
    assert payments_recorded(vendor) == 2


def test_the_same_payment_sent_twice_opens_only_its_own_query(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker, n=20)
    payment = payment_of(search(vendor, "comet").json()["quote"], chain.segment(0, 1))
    first = search(vendor, "comet", payment)
    assert first.status_code == 200
    # a lost answer: the same payment again gets the same receipt and the same answer, and pays nothing more
    again = search(vendor, "comet", payment)
    assert again.status_code == 200 and again.json() == first.json()
    assert unb64(again.headers["NetPay-Receipt"]) == unb64(first.headers["NetPay-Receipt"])
    # someone who saw the payment replays it for another query: refused, the shop's receipt shown, nothing new
    other = search(vendor, "budget", payment)
    assert other.status_code == 402 and other.json()["error"]["details"]["reason"] == "spent"
    assert unb64(other.headers["NetPay-Receipt"]) == unb64(first.headers["NetPay-Receipt"])
    assert payments_recorded(vendor) == 1


def test_a_quote_paid_twice_is_refused_with_a_signed_refusal(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker, n=20)
    quote = search(vendor, "comet").json()["quote"]
    assert search(vendor, "comet", payment_of(quote, chain.segment(0, 1))).status_code == 200
    vendor.vendor.reporter.flush()
    before = vendor.dump()
    twice = search(vendor, "market", payment_of(quote, chain.segment(1, 2)))
    assert twice.status_code == 409, twice.text
    error = twice.json()["error"]
    assert error["code"] == "quote_paid"
    assert error["details"]["refusal"]["body"]["code"] == "quote_paid"  # the wallet may release its coins
    assert "NetPay-Receipt" not in twice.headers
    assert vendor.dump() == before


def test_a_quote_for_another_item_buys_that_item_and_does_not_open_the_search(
    broker: RunningBroker, vendor: RunningVendor
) -> None:
    chain = buy_known_chain(broker, n=20)
    article = vendor.quote("night-market-returns")  # 3 cents
    resp = search(vendor, "comet", payment_of(article, chain.segment(0, 3)))
    assert resp.status_code == 402 and resp.json()["error"]["details"]["reason"] == "invalid"
    receipt = unb64(resp.headers["NetPay-Receipt"])["receipt"]["body"]  # what was paid for: the article
    assert receipt["item_id"] == "night-market-returns"
    opened = requests.get(f"{vendor.url}/api/items/night-market-returns",
                          headers={"Authorization": f"NetPay {receipt['access_token']}"}, timeout=30)  # fmt: skip
    assert opened.status_code == 200


def test_a_header_that_is_not_a_payment_is_refused_and_records_nothing(vendor: RunningVendor) -> None:
    vendor.vendor.reporter.flush()
    before = vendor.dump()
    for value in ("%%%", b64({"type": "payment"}), "A" * 20000, b64({"payment_id": secrets.token_hex(16)})):
        resp = requests.get(f"{vendor.url}/api/search", params={"q": "comet"}, headers={"NetPay-Payment": value},
                            timeout=30)  # fmt: skip
        assert resp.status_code in (400, 431), resp.text
        if resp.status_code == 400:
            error = resp.json()["error"]
            assert error["code"] in ("malformed", "wrong_type"), error
            assert error["details"]["refusal"]["type"] == "payment_refusal"
    assert vendor.dump() == before


def test_a_flood_of_challenges_keeps_the_shops_memory_bounded(
    vendor: RunningVendor, broker: RunningBroker, monkeypatch: Any
) -> None:
    """Every 402 signs a fresh quote, which the shop remembers so that paying it needs no second signature check.
    A flood of challenges (all live quotes) keeps that memory bounded; a quote it dropped is still paid, its
    signature checked instead."""
    import vendor_stub.payments as payments
    from tests.support.vendor import buy_chain, get_quote, make_payment

    monkeypatch.setattr(payments, "MAX_ISSUED", 20)
    first = get_quote(vendor.url, "harbour-bridge-reopens")
    for n in range(60):
        assert requests.get(f"{vendor.url}/api/search", params={"q": f"x{n}"}, timeout=10).status_code == 402
    issued = vendor.vendor.desk._issued
    assert len(issued) <= 21 and first["body"]["quote_id"] not in issued
    cert, traversal = buy_chain(broker, 20, 1)
    resp = vendor.pay(make_payment(first, [(cert, traversal, first["body"]["price"]["amount"])]))
    assert resp.status_code == 200 and "receipt" in resp.json()

"""Refunds (seed 003): asked from the receipt, decided by the shop (automatic when never opened, else by the
publisher), signed either way, bound to the receipt's digest, and paid through the broker from the shop's payable to
the account that bought the coins. The broker's ledger balances after each case. Re-delivery from the receipt."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import requests

from netpay.keys import SigningKey
from netpay.messages import Receipt, RefundDecision, SegmentRef
from netpay.money import Money
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, KnownChain, RunningVendor, buy_known_chain, make_payment

ITEM = "harbour-bridge-reopens"  # 5 cents


def _buy(vendor: RunningVendor, chain: KnownChain, item: str = ITEM) -> dict[str, Any]:
    quote = vendor.quote(item)
    coins = quote["body"]["price"]["amount"]
    resp = vendor.pay(make_payment(quote, [(chain.cert, chain.traversal, coins)]))
    assert resp.status_code == 200, resp.text
    receipt: dict[str, Any] = resp.json()["receipt"]
    return receipt


def _ask(vendor: RunningVendor, receipt: Any, reason: str = "not what I expected") -> requests.Response:
    return vendor.session.post(f"{vendor.url}/v1/refunds", json={"receipt": receipt, "reason": reason}, timeout=30)


def _balance(broker: RunningBroker, token: str) -> int:
    r = broker.session.get(f"{broker.url}/v1/account", headers={"Authorization": f"Bearer {token}"})
    return int(r.json()["balance"]["amount"])


def _statement_kinds(broker: RunningBroker, token: str) -> list[str]:
    r = broker.session.get(f"{broker.url}/v1/account/statement", headers={"Authorization": f"Bearer {token}"})
    return [e["kind"] for e in r.json()["entries"]]


def _balanced(broker: RunningBroker) -> dict[str, Any]:
    tb: dict[str, Any] = broker.session.get(
        f"{broker.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": broker.operator_token}
    ).json()
    assert tb["balanced"] is True, tb
    return tb


def _decision(answer: dict[str, Any], vendor: RunningVendor, receipt: dict[str, Any]) -> RefundDecision:
    signed = Signed.from_wire(answer["decision"], RefundDecision, "decision")
    assert signed.signer == vendor.vendor.key.public
    assert signed.body.receipt_digest.hex() == Signed.from_wire(receipt, Receipt).digest
    return signed.body


def _opens(vendor: RunningVendor, receipt: dict[str, Any]) -> bool:
    token = receipt["body"]["access_token"]
    r = requests.get(f"{vendor.url}/v1/access/{receipt['body']['item_id']}", params={"token": token}, timeout=30)
    return bool(r.json()["valid"])


def test_never_opened_is_granted_at_once_and_credited_after_redemption(
    broker: RunningBroker, vendor: RunningVendor
) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    before = _balance(broker, chain.token)
    answer = _ask(vendor, receipt).json()
    assert answer["status"] == "granted"
    decision = _decision(answer, vendor, receipt)
    assert decision.amount == Money(5, "EUR") and decision.decision == "granted"
    assert not _opens(vendor, receipt)  # the refunded purchase opens nothing any more
    # the shop's payable did not cover it yet (nothing redeemed): credited after the next redemption
    assert answer["credit"] == "pending" and _balance(broker, chain.token) == before
    _balanced(broker)
    vendor.vendor.redeemer.redeem()
    after = vendor.session.get(f"{vendor.url}/v1/refunds/{answer['refund_id']}").json()
    assert after["credit"] == "credited"
    assert _balance(broker, chain.token) == before + 5
    assert _statement_kinds(broker, chain.token).count("shop_refund") == 1
    tb = _balanced(broker)
    assert tb["accounts"]["vendor_payables"] == 0  # 5 redeemed (no fee in tests), 5 refunded


def test_asked_twice_answers_the_same_and_pays_once(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    _buy(vendor, chain, "night-market-returns")
    receipt = _buy(vendor, chain)
    vendor.vendor.redeemer.redeem()  # payable covers it: credited at once
    before = _balance(broker, chain.token)
    first = _ask(vendor, receipt).json()
    second = _ask(vendor, receipt, "again").json()
    assert first["credit"] == "credited" and second == first
    assert _balance(broker, chain.token) == before + 5
    # the shop re-sending its decision to the broker changes nothing either
    again = broker.session.post(f"{broker.url}/v1/refunds", json=first["decision"])
    assert again.status_code == 200 and _balance(broker, chain.token) == before + 5
    _balanced(broker)


def test_opened_item_waits_for_the_publisher_who_refuses_with_a_signed_refusal(
    broker: RunningBroker, vendor: RunningVendor
) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    page = requests.get(f"{vendor.url}/items/{ITEM}", params={"access": receipt["body"]["access_token"]}, timeout=30)
    assert page.status_code == 200
    answer = _ask(vendor, receipt, "<script>alert(1)</script>").json()  # asked at once: the note is in memory
    assert answer["status"] == "pending" and answer["decision"] is None
    tb_before = _balanced(broker)
    # the publisher refuses on the earnings page
    s = requests.Session()
    token = vendor.vendor.settings.publisher_token or (vendor.settings.data_dir / "publisher_token").read_text()
    s.post(f"{vendor.url}/earnings/login", data={"token": token.strip()}, timeout=30)
    listing = s.get(f"{vendor.url}/earnings", timeout=30).text
    assert answer["refund_id"] in listing and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "<script>alert(1)" not in listing
    s.post(f"{vendor.url}/earnings/refunds/{answer['refund_id']}", data={"decision": "refuse", "reason": "read"},
           timeout=30)  # fmt: skip
    done = requests.get(f"{vendor.url}/v1/refunds/{answer['refund_id']}", timeout=30).json()
    assert done["status"] == "refused" and done["credit"] is None
    decision = _decision(done, vendor, receipt)
    assert decision.decision == "refused" and decision.amount.amount == 0 and decision.reason == "read"
    assert _opens(vendor, receipt)  # a refused refund keeps the item
    assert _balanced(broker)["accounts"] == tb_before["accounts"]
    # a refusal is never paid: the broker refuses it
    r = broker.session.post(f"{broker.url}/v1/refunds", json=done["decision"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed"
    # a stranger's form post without the publisher's login decides nothing
    r2 = requests.post(f"{vendor.url}/earnings/refunds/{answer['refund_id']}", data={"decision": "grant"}, timeout=30)
    assert r2.status_code == 401


def test_publisher_grants_an_opened_item(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    vendor.vendor.refunds.mark_opened(receipt["body"]["receipt_id"])
    vendor.vendor.store.write(lambda c: None)
    vendor.vendor.redeemer.redeem()
    before = _balance(broker, chain.token)
    answer = _ask(vendor, receipt).json()
    assert answer["status"] == "pending"
    done = vendor.vendor.refunds.decide(answer["refund_id"], True, "sorry about that")
    assert done["status"] == "granted" and done["credit"] == "credited"
    assert _balance(broker, chain.token) == before + 5 and not _opens(vendor, receipt)
    _balanced(broker)


def test_after_the_window_the_refund_is_refused_and_signed(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    vendor.vendor.clock_offset = vendor.settings.refund_window_s + 1
    answer = _ask(vendor, receipt).json()
    assert answer["status"] == "refused" and "window" in _decision(answer, vendor, receipt).reason
    assert _opens(vendor, receipt) is True or receipt["body"]["valid_until"] is not None
    _balanced(broker)


def test_someone_elses_receipt_pays_its_owner_never_the_asker(broker: RunningBroker, vendor: RunningVendor) -> None:
    owner = buy_known_chain(broker)
    stranger = buy_known_chain(broker)
    _buy(vendor, owner, "night-market-returns")
    receipt = _buy(vendor, owner)
    vendor.vendor.redeemer.redeem()
    owner_before, stranger_before = _balance(broker, owner.token), _balance(broker, stranger.token)
    assert _ask(vendor, receipt, "I want the money").json()["credit"] == "credited"
    assert _balance(broker, stranger.token) == stranger_before
    assert _balance(broker, owner.token) == owner_before + 5
    _balanced(broker)


def test_forged_and_foreign_receipts_are_refused_and_change_nothing(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    news = vendor_factory()
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    chain = buy_known_chain(broker)
    receipt = _buy(news, chain)
    news.vendor.reporter.flush()  # the spend report would change the dump below by itself
    tb = _balanced(broker)
    dump = news.dump()
    # a receipt of another shop
    r = _ask(cards, receipt)
    assert r.status_code == 403 and r.json()["error"]["code"] == "untrusted_signer"
    # the amount changed after signing
    forged = {**receipt, "body": {**receipt["body"], "amount": {"amount": 500, "currency": "EUR"}}}
    r = _ask(news, forged)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_signature"
    # signed by another key that claims to be the shop
    body = Receipt.from_body({k: v for k, v in receipt["body"].items()}, "receipt")
    mine = Signed.sign(body, SigningKey.generate()).to_wire()
    r = _ask(news, mine)
    assert r.status_code == 403 and r.json()["error"]["code"] == "untrusted_signer"
    # not a receipt at all, or with unknown fields
    assert _ask(news, {"type": "receipt"}).status_code == 400
    r = news.session.post(f"{news.url}/v1/refunds", json={"receipt": receipt, "reason": "x", "amount": 1})
    assert r.status_code == 400
    assert news.dump() == dump
    assert _balanced(broker)["accounts"] == tb["accounts"]


def test_broker_pays_only_what_the_shop_was_paid_with(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    other = buy_known_chain(broker)  # never spent at this shop
    _buy(vendor, chain, "night-market-returns")
    vendor.vendor.redeemer.redeem()
    key = vendor.vendor.key

    def send(segments: tuple[SegmentRef, ...], amount: int) -> requests.Response:
        rid, receipt_id = "ref_" + secrets.token_hex(6), "r-" + secrets.token_hex(4)
        decision = RefundDecision(rid, vendor.vendor_id, receipt_id, b"\0" * 32, "granted", Money(amount, "EUR"),
                                  segments, "", vendor.vendor.now())  # fmt: skip
        return broker.session.post(f"{broker.url}/v1/refunds", json=Signed.sign(decision, key).to_wire())

    tb = _balanced(broker)
    r = send((SegmentRef(other.cert.body.chain_id, 0, 3),), 3)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = send((SegmentRef(chain.cert.body.chain_id, 0, 3),), 4)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed"
    r = send((SegmentRef(chain.cert.body.chain_id, 0, 3),), 3)  # the whole payable (3 redeemed, no fee in tests)
    assert r.status_code == 201
    r = send((SegmentRef(chain.cert.body.chain_id, 0, 3),), 1)
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_funds"
    # signed by someone else in the shop's name
    decision = RefundDecision("ref_x", vendor.vendor_id, "r-x", b"\0" * 32, "granted", Money(1, "EUR"),
                              (SegmentRef(chain.cert.body.chain_id, 0, 1),), "", vendor.vendor.now())  # fmt: skip
    r = broker.session.post(f"{broker.url}/v1/refunds", json=Signed.sign(decision, SigningKey.generate()).to_wire())
    assert r.status_code == 403 and r.json()["error"]["code"] == "untrusted_signer"
    after = _balanced(broker)
    assert after["accounts"]["vendor_payables"] == tb["accounts"]["vendor_payables"] + 3


def test_redelivery_gives_a_new_token_for_the_receipt_alone(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    r = requests.post(f"{vendor.url}/v1/redeliveries", json={"receipt": receipt}, timeout=30)
    assert r.status_code == 200
    token = r.json()["access_token"]
    page = requests.get(f"{vendor.url}/v1/access/{ITEM}", params={"token": token}, timeout=30).json()
    assert page["valid"] is True
    # another shop's receipt, or a refunded one, gets no token
    assert _ask(vendor, receipt).json()["status"] == "granted"
    r = requests.post(f"{vendor.url}/v1/redeliveries", json={"receipt": receipt}, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert requests.get(f"{vendor.url}/v1/access/{ITEM}", params={"token": token}, timeout=30).json()["valid"] is False


def test_item_pages_keep_the_token_out_of_the_referer(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    receipt = _buy(vendor, chain)
    page = requests.get(f"{vendor.url}/items/{ITEM}", params={"access": receipt["body"]["access_token"]}, timeout=30)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in page.text
    assert '<meta name="referrer" content="no-referrer">' in requests.get(f"{vendor.url}/", timeout=30).text


def test_a_refund_survives_a_restart_of_the_shop(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor], tmp_path: Any
) -> None:
    shop = vendor_factory(data_dir=tmp_path / "shop")
    chain = buy_known_chain(broker)
    receipt = _buy(shop, chain)
    first = _ask(shop, receipt).json()
    shop.stop()
    again = vendor_factory(data_dir=tmp_path / "shop", register=False, port=shop.settings.port)
    assert not _opens(again, receipt)  # still revoked
    assert _ask(again, receipt).json()["refund_id"] == first["refund_id"]
    again.vendor.redeemer.redeem()
    assert requests.get(f"{again.url}/v1/refunds/{first['refund_id']}", timeout=30).json()["credit"] == "credited"
    _balanced(broker)

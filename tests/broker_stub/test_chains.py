"""Buying chains (balance or card, idempotency), listing an account's chains, and closing them for a refund."""

from __future__ import annotations

import secrets
from typing import Any

import requests

from netpay.chain import ChainHasher
from netpay.messages import CoinCertificate
from netpay.signed import Signed
from netpay.traversal import create_chain
from netpay_web.live import LiveServer
from tests.broker_stub.custodian import custodian_app
from tests.broker_stub.util import bearer, refused
from tests.support.broker import TEST_CARD, RunningBroker, TestVendor


def _buy(b: RunningBroker, token: str, key: str | None = None, **fields: Any) -> requests.Response:
    chain_id = secrets.token_bytes(16)
    touchstone, _ = create_chain(chain_id, 10)
    body = {
        "chain_id": chain_id.hex(),
        "touchstone": touchstone.hex(),
        "length": 10,
        "coin_value": {"amount": 1, "currency": "EUR"},
        **fields,
    }
    return b.session.post(
        f"{b.url}/v1/chains", json=body, headers=bearer(token, **{"Idempotency-Key": key or secrets.token_hex(8)})
    )


def _balance(b: RunningBroker, token: str) -> int:
    return int(b.session.get(f"{b.url}/v1/account", headers=bearer(token)).json()["balance"]["amount"])


def test_buy_from_balance_signs_certificate(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=1000)
    resp = _buy(broker, token, length=100, coin_value={"amount": 2, "currency": "EUR"})
    assert resp.status_code == 201, resp.text
    cert = Signed.from_wire(resp.json()["certificate"], CoinCertificate)
    body = cert.require_signer(broker.public_key)
    assert body.broker_id == broker.broker_id and body.length == 100 and body.coin_value.amount == 2
    assert resp.json()["balance"] == {"amount": 800, "currency": "EUR"}
    chains = broker.session.get(f"{broker.url}/v1/account/chains", headers=bearer(token)).json()["chains"]
    assert [c["chain_id"] for c in chains] == [body.chain_id.hex()]
    assert chains[0]["status"] == "active" and chains[0]["certificate"] == resp.json()["certificate"]


def test_buy_with_card_charges_card_not_balance(broker: RunningBroker) -> None:
    token = broker.new_customer()
    resp = _buy(broker, token, card=TEST_CARD)
    assert resp.status_code == 201
    assert resp.json()["balance"]["amount"] == 0
    kinds = [
        e["kind"]
        for e in broker.session.get(f"{broker.url}/v1/account/statement", headers=bearer(token)).json()["entries"]
    ]
    assert kinds == ["topup", "purchase"]
    refused(
        broker, lambda: _buy(broker, token, card={**TEST_CARD, "number": "4000 0000 0000 0002"}), 402, "card_declined"
    )


def test_same_idempotency_key_returns_same_certificate_charged_once(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=100)
    chain_id = secrets.token_bytes(16)
    touchstone, _ = create_chain(chain_id, 10)
    body = {
        "chain_id": chain_id.hex(),
        "touchstone": touchstone.hex(),
        "length": 10,
        "coin_value": {"amount": 1, "currency": "EUR"},
    }
    headers = bearer(token, **{"Idempotency-Key": "buy-1"})
    first = broker.session.post(f"{broker.url}/v1/chains", json=body, headers=headers)
    again = broker.session.post(f"{broker.url}/v1/chains", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert _balance(broker, token) == 90
    refused(
        broker,
        lambda: broker.session.post(f"{broker.url}/v1/chains", json={**body, "length": 5}, headers=headers),
        409,
        "idempotency_conflict",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/chains", json=body, headers=bearer(token, **{"Idempotency-Key": "buy-2"})
        ),
        409,
        "conflict",
    )


def test_purchase_refusals(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=5)
    refused(broker, lambda: _buy(broker, token), 402, "insufficient_funds")
    refused(broker, lambda: _buy(broker, token, coin_value={"amount": 1, "currency": "USD"}), 400, "currency_mismatch")
    refused(broker, lambda: _buy(broker, token, coin_value={"amount": 3, "currency": "EUR"}), 400, "malformed")
    refused(broker, lambda: _buy(broker, token, length=0), 400, "malformed")
    refused(broker, lambda: _buy(broker, token, length="10"), 400, "malformed")
    refused(broker, lambda: _buy(broker, token, chain_id="zz"), 400, "malformed")
    refused(broker, lambda: _buy(broker, token, touchstone="ab" * 31), 400, "malformed")
    refused(broker, lambda: _buy(broker, token, extra=1), 400, "malformed")
    refused(
        broker, lambda: broker.session.post(f"{broker.url}/v1/chains", json={}, headers=bearer(token)), 400, "malformed"
    )
    refused(broker, lambda: _buy(broker, "not-a-token"), 401, "auth_required")


def _close(b: RunningBroker, token: str, chain_id: bytes) -> requests.Response:
    return b.session.post(f"{b.url}/v1/chains/{chain_id.hex()}/close", json={}, headers=bearer(token))


def test_close_asks_the_custodian_and_refunds_unspent(broker: RunningBroker) -> None:
    vendor = TestVendor("shop")
    token = broker.new_customer(topup=1000)
    cert, traversal = broker.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    index, payword = traversal.advance(30)
    held = {chain_id: (index, payword)}
    app = custodian_app(vendor, held, broker.public_key)
    with LiveServer(app) as shop:
        broker.register_vendor("shop", vendor.key, api_url=shop.url)
        assert broker.session.post(f"{broker.url}/v1/custody/claims", json=vendor.claim(chain_id)).status_code == 200
        resp = _close(broker, token, chain_id)
        assert app.state.requests[0].broker_id == broker.broker_id
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["status"] == "closed" and out["final_index"] == 30
    assert out["refund"] == {"amount": 70, "currency": "EUR"} and out["balance"]["amount"] == 970
    assert _close(broker, token, chain_id).json() == out  # closing again changes nothing
    revoked = broker.session.get(f"{broker.url}/v1/revocations").json()["body"]["chains"]
    assert chain_id.hex() in revoked
    # the custodian can still redeem what it was paid, but not beyond the final index
    ok = broker.session.post(f"{broker.url}/v1/redemptions", json=vendor.batch([(chain_id, 0, 30, payword)]))
    assert ok.status_code == 200 and ok.json()["body"]["results"][0]["status"] == "accepted"
    w31 = traversal.next()[1]
    err = refused(
        broker,
        lambda: broker.session.post(f"{broker.url}/v1/redemptions", json=vendor.batch([(chain_id, 30, 31, w31)])),
        403,
        "revoked",
    )
    assert err["details"]["reason"] == "refunded"


def test_close_without_custodian_answer_waits_for_grace_then_uses_last_report(broker_factory) -> None:  # type: ignore[no-untyped-def]
    clock = [1_800_000_000]
    b = broker_factory(close_grace_s=100, clock=lambda: clock[0], custodian_timeout_s=0.5)
    vendor = TestVendor("gone")
    b.register_vendor("gone", vendor.key, api_url="http://127.0.0.1:9")  # nobody listens there
    token = b.new_customer(topup=1000)
    cert, traversal = b.buy_chain(token, length=50)
    chain_id = cert.body.chain_id
    vendor.now = lambda: clock[0]  # type: ignore[method-assign]
    assert b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(chain_id)).status_code == 200
    index, payword = traversal.advance(12)
    assert (
        b.session.post(f"{b.url}/v1/spend-reports", json=vendor.report([(chain_id, 0, index, payword)])).status_code
        == 200
    )
    first = _close(b, token, chain_id).json()
    assert first["status"] == "closing" and first["final_index"] is None and first["refund"]["amount"] == 0
    clock[0] += 100
    chains = b.session.get(f"{b.url}/v1/account/chains", headers=bearer(token)).json()["chains"]
    assert chains[0]["status"] == "closed" and chains[0]["final_index"] == 12
    assert chains[0]["refund"] == {"amount": 38, "currency": "EUR"}
    assert _balance(b, token) == 1000 - 50 + 38


def test_close_refusals(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=100)
    other = broker.new_customer(topup=100)
    cert, _ = broker.buy_chain(other, length=10)
    refused(broker, lambda: _close(broker, token, cert.body.chain_id), 404, "not_found")
    refused(broker, lambda: _close(broker, token, secrets.token_bytes(16)), 404, "not_found")
    refused(
        broker,
        lambda: broker.session.post(f"{broker.url}/v1/chains/xyz/close", json={}, headers=bearer(token)),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/chains/{cert.body.chain_id.hex()}/close", json={"x": 1}, headers=bearer(other)
        ),
        400,
        "malformed",
    )


def test_close_with_no_custodian_refunds_everything(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=100)
    cert, _ = broker.buy_chain(token, length=10)
    out = _close(broker, token, cert.body.chain_id).json()
    assert out["status"] == "closed" and out["final_index"] == 0 and out["refund"]["amount"] == 10
    assert _balance(broker, token) == 100


def test_hasher_matches_certificate(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=100)
    cert, traversal = broker.buy_chain(token, length=8)
    index, w = traversal.advance(8)
    assert ChainHasher(cert.body.chain_id).walk(w, index, 0) == cert.body.touchstone

"""The broker as the Central Indexing Server (issue 20): peer certificates, listings, search, expiry, supply policy."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import requests

from broker_stub.cis import peer_id_for, registration_text
from netpay.keys import SigningKey
from netpay.messages import VendorCertificate
from netpay.signed import Signed
from tests.broker_stub.util import bearer, refused
from tests.support.broker import TEST_CARD, RunningBroker, TestVendor


def _register(broker: RunningBroker, token: str, key: SigningKey, api_url: str = "http://127.0.0.1:9301",
              name: str = "Alice's files") -> requests.Response:  # fmt: skip
    account = broker.session.get(f"{broker.url}/v1/account", headers=bearer(token)).json()
    peer_id = peer_id_for(account["account_id"])
    proof = key.sign(registration_text(broker.broker_id, peer_id, key.public.hex, api_url))
    return broker.session.post(
        f"{broker.url}/v1/cis/peers",
        json={"display_name": name, "public_key": key.public.hex, "api_url": api_url, "proof": proof.hex()},
        headers=bearer(token),
    )


def _listing(title: str, price: int = 3, content: bytes = b"x", item_id: str | None = None) -> dict[str, Any]:
    digest = hashlib.sha256(content).hexdigest()
    return {"item_id": item_id or digest[:32], "title": title, "description": f"about {title}", "size": len(content),
            "sha256": digest, "price": {"amount": price, "currency": "EUR"}}  # fmt: skip


def _put(broker: RunningBroker, token: str, listings: list[dict[str, Any]]) -> requests.Response:
    return broker.session.put(f"{broker.url}/v1/cis/listings", json={"listings": listings}, headers=bearer(token))


def test_a_peer_is_certified_like_a_vendor_and_its_listings_are_found(broker: RunningBroker) -> None:
    token, key = broker.new_customer(), SigningKey.generate()
    resp = _register(broker, token, key)
    assert resp.status_code == 201, resp.text
    cert = Signed.from_wire(resp.json()["certificate"], VendorCertificate)
    cert.require_signer(broker.public_key)
    assert cert.body.public_key == key.public and cert.body.vendor_id == resp.json()["peer_id"]
    assert cert.body.payment_url == "http://127.0.0.1:9301/v1/payments"
    assert _register(broker, token, key).status_code == 200  # the same registration again: the same certificate
    assert _put(broker, token, [_listing("Holiday photos", 5, b"a"), _listing("Song demo", 2, b"b")]).ok
    found = broker.session.get(f"{broker.url}/v1/cis/search", params={"q": "photos"}).json()
    assert found["total"] == 1
    hit = found["results"][0]
    assert hit["title"] == "Holiday photos" and hit["seller"] == "Alice's files" and hit["public_key"] == key.public.hex
    assert hit["download_url"].startswith("http://127.0.0.1:9301/files/")
    Signed.from_wire(hit["certificate"], VendorCertificate).require_signer(broker.public_key)
    every = broker.session.get(f"{broker.url}/v1/cis/search").json()
    assert [r["title"] for r in every["results"]] == ["Song demo", "Holiday photos"]  # cheapest first
    page = broker.session.get(f"{broker.url}/cis", params={"q": "song"})
    assert page.status_code == 200 and "Song demo" in page.text and "Holiday photos" not in page.text


def test_search_pages(broker: RunningBroker) -> None:
    token = broker.new_customer()
    assert _register(broker, token, SigningKey.generate()).status_code == 201
    assert _put(broker, token, [_listing(f"file {i:02d}", 1 + i, bytes([i])) for i in range(25)]).ok
    pages = [broker.session.get(f"{broker.url}/v1/cis/search", params={"page": p, "per_page": 10}).json()
             for p in (1, 2, 3)]  # fmt: skip
    assert [len(p["results"]) for p in pages] == [10, 10, 5] and pages[0]["pages"] == 3 and pages[0]["total"] == 25
    titles = [r["title"] for p in pages for r in p["results"]]
    assert titles == sorted(titles) and len(set(titles)) == 25


def test_listings_of_a_silent_peer_expire_and_offline_hides_them_at_once(broker: RunningBroker) -> None:
    token = broker.new_customer()
    assert _register(broker, token, SigningKey.generate()).status_code == 201
    assert _put(broker, token, [_listing("Old map")]).ok

    def total() -> int:
        return int(broker.session.get(f"{broker.url}/v1/cis/search").json()["total"])

    assert total() == 1
    real = broker.broker.core.now
    broker.broker.core.now = lambda: real() + broker.broker.core.settings.peer_ttl_s + 1  # type: ignore[method-assign]
    try:
        assert total() == 0  # no heartbeat within the TTL: gone (and swept from the table)
        assert broker.broker.core.db.one("SELECT COUNT(*) FROM peer_listings")[0] == 0  # type: ignore[index]
    finally:
        broker.broker.core.now = real  # type: ignore[method-assign]
    assert _put(broker, token, [_listing("Old map")]).ok and total() == 1
    assert broker.session.post(f"{broker.url}/v1/cis/heartbeat", headers=bearer(token)).ok
    assert broker.session.post(f"{broker.url}/v1/cis/offline", headers=bearer(token)).ok
    assert total() == 0


def test_bad_registrations_and_listings_change_nothing(broker: RunningBroker) -> None:
    token, key = broker.new_customer(), SigningKey.generate()
    other = SigningKey.generate()
    account = broker.session.get(f"{broker.url}/v1/account", headers=bearer(token)).json()
    forged = other.sign(registration_text(broker.broker_id, peer_id_for(account["account_id"]), key.public.hex,
                                          "http://127.0.0.1:9301")).hex()  # fmt: skip
    body = {"display_name": "Mallory", "public_key": key.public.hex, "api_url": "http://127.0.0.1:9301",
            "proof": forged}  # fmt: skip
    url = f"{broker.url}/v1/cis/peers"
    refused(broker, lambda: broker.session.post(url, json=body, headers=bearer(token)), 400, "bad_signature")
    refused(broker, lambda: broker.session.post(url, json=body), 401, "auth_required")
    refused(broker, lambda: _put(broker, token, [_listing("x")]), 404, "not_found")  # not registered yet
    assert _register(broker, token, key).status_code == 201
    # the same account cannot swap in another key (it would take over the custody of the old one's chains)
    refused(broker, lambda: _register(broker, token, other), 409, "conflict")
    good = _listing("fine")
    assert _put(broker, token, [good]).ok
    for bad in (
        [{**good, "price": {"amount": 0, "currency": "EUR"}}],
        [{**good, "price": {"amount": 3, "currency": "USD"}}],
        [{**good, "sha256": "00"}],
        [{**good, "item_id": "../../etc"}],
        [{**good, "item_id": "0" * 32}],  # not the start of its sha256
        [good, good],
        [{**good, "extra": 1}],
    ):
        refused(broker, lambda bad=bad: _put(broker, token, bad), 400, refused_code(bad))  # type: ignore[misc]
    assert broker.session.get(f"{broker.url}/v1/cis/search").json()["total"] == 1


def refused_code(bad: list[dict[str, Any]]) -> str:
    return "currency_mismatch" if bad[0]["price"]["currency"] == "USD" else "malformed"


def test_search_input_is_bounded(broker: RunningBroker) -> None:
    for params in ({"q": "x" * 201}, {"page": 0}, {"per_page": 101}):
        resp = broker.session.get(f"{broker.url}/v1/cis/search", params=params)
        assert 400 <= resp.status_code < 500 and "error" in resp.json()
    # LIKE wildcards in the query are literal
    token = broker.new_customer()
    assert _register(broker, token, SigningKey.generate()).status_code == 201
    assert _put(broker, token, [_listing("report")]).ok
    assert broker.session.get(f"{broker.url}/v1/cis/search", params={"q": "%"}).json()["total"] == 0


def test_supply_policy_is_off_by_default_and_limits_coin_buying_when_set(
    broker_factory: Callable[..., RunningBroker],
) -> None:
    off = broker_factory()
    token = off.new_customer(topup=5000)
    standing = off.session.get(f"{off.url}/v1/cis/standing", headers=bearer(token)).json()
    assert standing["policy"] is None and standing["may_buy_coins"] is True
    on = broker_factory(peer_supply_ratio=2.0, peer_supply_grace=10)
    buyer, seller = on.new_customer(topup=5000), on.new_customer()
    seller_key = SigningKey.generate()
    assert _register(on, seller, seller_key).status_code == 201
    peer_id = _register(on, seller, seller_key).json()["peer_id"]
    # the buyer's chain pays the seller's peer 30 cents, redeemed: requested 30 > 2 x supplied 0 and > grace 10
    cert, traversal = on.buy_chain(buyer, length=50)
    peer, chain_id = TestVendor(peer_id, seller_key), cert.body.chain_id
    assert on.session.post(f"{on.url}/v1/custody/claims", json=peer.claim(chain_id)).status_code == 200
    i, w = traversal.advance(30)
    assert on.session.post(f"{on.url}/v1/redemptions", json=peer.batch([(chain_id, 0, i, w)])).status_code == 200
    standing = on.session.get(f"{on.url}/v1/cis/standing", headers=bearer(buyer)).json()
    assert standing["requested"]["amount"] == 30 and standing["supplied"]["amount"] == 0
    assert standing["may_buy_coins"] is False and standing["policy"]["ratio"] == 2.0
    error = refused(on, lambda: _buy(on, buyer), 403, "forbidden")
    assert error["details"]["reason"] == "supply_ratio"
    seller_standing = on.session.get(f"{on.url}/v1/cis/standing", headers=bearer(seller)).json()
    assert seller_standing["supplied"]["amount"] == 30 and seller_standing["may_buy_coins"] is True
    assert _buy(on, seller).status_code == 201  # a supplier buys freely


def _buy(b: RunningBroker, token: str) -> requests.Response:
    import secrets

    from netpay.traversal import create_chain

    chain_id = secrets.token_bytes(16)
    touchstone, _ = create_chain(chain_id, 10)
    return b.session.post(
        f"{b.url}/v1/chains",
        json={
            "chain_id": chain_id.hex(),
            "touchstone": touchstone.hex(),
            "length": 10,
            "coin_value": {"amount": 1, "currency": "EUR"},
            "card": TEST_CARD,
        },
        headers=bearer(token, **{"Idempotency-Key": secrets.token_hex(8)}),
    )

"""Vendor registration and certificates, custody claims and spend reports (vendor-signed requests)."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import requests

from netpay.keys import SigningKey
from netpay.messages import VendorCertificate
from netpay.signed import Signed
from tests.broker_stub.util import refused
from tests.support.broker import RunningBroker, TestVendor


def _vendor_body(key: SigningKey, vendor_id: str = "shop", **fields: Any) -> dict[str, Any]:
    return {
        "vendor_id": vendor_id,
        "display_name": "The Shop",
        "public_key": key.public.hex,
        "origins": ["http://127.0.0.1:8201"],
        "api_url": "http://127.0.0.1:8201",
        "payment_url": "http://127.0.0.1:8201/v1/payments",
        **fields,
    }


def _register(b: RunningBroker, body: dict[str, Any], token: str | None = None) -> requests.Response:
    headers = {"X-Operator-Token": token} if token is not None else {}
    return b.session.post(f"{b.url}/v1/vendors", json=body, headers=headers)


def test_register_vendor_and_fetch_certificate(broker: RunningBroker) -> None:
    key = SigningKey.generate()
    resp = _register(broker, _vendor_body(key), broker.operator_token)
    assert resp.status_code == 201, resp.text
    cert = Signed.from_wire(resp.json()["certificate"], VendorCertificate)
    body = cert.require_signer(broker.public_key)
    assert body.public_key == key.public and body.broker_id == broker.broker_id
    assert body.origins == ("http://127.0.0.1:8201",)
    fetched = broker.session.get(f"{broker.url}/v1/vendors/shop/certificate")
    assert fetched.status_code == 200 and fetched.json() == resp.json()["certificate"]
    again = _register(broker, _vendor_body(key), broker.operator_token)
    assert again.status_code == 200 and again.json() == resp.json()  # same registration: same certificate
    moved = _register(broker, _vendor_body(key, api_url="http://127.0.0.1:8209"), broker.operator_token)
    assert moved.status_code == 201
    assert moved.json()["certificate"]["body"]["api_url"] == "http://127.0.0.1:8209"


def test_vendor_registration_refusals(broker: RunningBroker) -> None:
    key = SigningKey.generate()
    refused(broker, lambda: _register(broker, _vendor_body(key)), 401, "auth_required")
    refused(broker, lambda: _register(broker, _vendor_body(key), "wrong"), 403, "forbidden")
    tok = broker.operator_token
    refused(broker, lambda: _register(broker, _vendor_body(key, origins=[]), tok), 400, "malformed")
    refused(broker, lambda: _register(broker, _vendor_body(key, origins=["ftp://x.org"]), tok), 400, "malformed")
    refused(broker, lambda: _register(broker, _vendor_body(key, api_url=5), tok), 400, "malformed")
    refused(broker, lambda: _register(broker, _vendor_body(key, public_key="00" * 31), tok), 400, "malformed")
    refused(broker, lambda: _register(broker, _vendor_body(key, vendor_id="a/b"), tok), 400, "malformed")
    refused(broker, lambda: _register(broker, _vendor_body(key, color="red"), tok), 400, "malformed")
    assert _register(broker, _vendor_body(key), tok).status_code == 201
    refused(broker, lambda: _register(broker, _vendor_body(SigningKey.generate()), tok), 409, "conflict")
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/vendors/nobody/certificate"), 404, "not_found")


def _setup(b: RunningBroker) -> tuple[TestVendor, Any, Any]:
    vendor = TestVendor("shop")
    b.register_vendor("shop", vendor.key)
    token = b.new_customer(topup=1000)
    cert, traversal = b.buy_chain(token, length=100)
    return vendor, cert, traversal


def _claim(b: RunningBroker, wire: dict[str, Any]) -> requests.Response:
    return b.session.post(f"{b.url}/v1/custody/claims", json=wire)


def _report(b: RunningBroker, wire: dict[str, Any]) -> requests.Response:
    return b.session.post(f"{b.url}/v1/spend-reports", json=wire)


def test_custody_moves_between_vendors_with_lower_bound(broker: RunningBroker) -> None:
    a, cert, traversal = _setup(broker)
    b_vendor = TestVendor("other")
    broker.register_vendor("other", b_vendor.key, api_url="http://127.0.0.1:8202")
    chain_id = cert.body.chain_id
    first = _claim(broker, a.claim(chain_id)).json()
    assert first["previous"] is None and first["lower_bound"] == {"index": 0, "payword": cert.body.touchstone.hex()}
    index, payword = traversal.advance(7)
    rep = _report(broker, a.report([(chain_id, 0, index, payword)], report_id="r1"))
    assert rep.status_code == 200 and len(rep.json()["accepted"]) == 1
    assert _report(broker, a.report([(chain_id, 0, index, payword)], report_id="r1")).status_code == 200
    second = _claim(broker, b_vendor.claim(chain_id)).json()
    assert second["custodian"] == "other"
    assert second["previous"] == {"vendor_id": "shop", "api_url": "http://127.0.0.1:9"}
    assert second["lower_bound"] == {"index": 7, "payword": payword.hex()}


def test_custody_claim_refusals(broker: RunningBroker) -> None:
    vendor, cert, _ = _setup(broker)
    chain_id = cert.body.chain_id
    refused(broker, lambda: _claim(broker, vendor.claim(secrets.token_bytes(16))), 404, "not_found")
    stranger = TestVendor("stranger")
    refused(broker, lambda: _claim(broker, stranger.claim(chain_id)), 403, "untrusted_signer")
    impostor = TestVendor("shop")  # right id, wrong key
    refused(broker, lambda: _claim(broker, impostor.claim(chain_id)), 403, "untrusted_signer")
    tampered = vendor.claim(chain_id)
    tampered["body"]["nonce"] = "changed"
    refused(broker, lambda: _claim(broker, tampered), 400, "bad_signature")
    refused(broker, lambda: _claim(broker, vendor.claim(chain_id, at=vendor.now() - 3600)), 400, "stale")
    wrong_type = vendor.report([(chain_id, 0, 1, b"\0" * 32)])
    refused(broker, lambda: _claim(broker, wrong_type), 400, "wrong_type")
    missing = copy.deepcopy(vendor.claim(chain_id))
    del missing["body"]["nonce"]
    refused(broker, lambda: _claim(broker, missing), 400, "malformed")
    refused(broker, lambda: _claim(broker, {"type": "custody_claim"}), 400, "malformed")
    wire = vendor.claim(chain_id, nonce="n-1")
    assert _claim(broker, wire).status_code == 200
    refused(broker, lambda: _claim(broker, wire), 409, "replayed")


def test_claim_on_closed_chain_is_revoked(broker: RunningBroker) -> None:
    vendor = TestVendor("shop")
    broker.register_vendor("shop", vendor.key)
    token = broker.new_customer(topup=100)
    cert, _ = broker.buy_chain(token, length=10)
    broker.session.post(
        f"{broker.url}/v1/chains/{cert.body.chain_id.hex()}/close",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    refused(broker, lambda: _claim(broker, vendor.claim(cert.body.chain_id)), 403, "revoked")


def test_spend_report_refusals_and_partial_acceptance(broker: RunningBroker) -> None:
    vendor, cert, traversal = _setup(broker)
    chain_id = cert.body.chain_id
    index, payword = traversal.advance(5)
    # not custodian yet
    refused(broker, lambda: _report(broker, vendor.report([(chain_id, 0, index, payword)])), 403, "forbidden")
    _claim(broker, vendor.claim(chain_id))
    refused(broker, lambda: _report(broker, vendor.report([(chain_id, 0, index, b"\1" * 32)])), 400, "invalid_payword")
    refused(
        broker, lambda: _report(broker, vendor.report([(secrets.token_bytes(16), 0, 1, payword)])), 404, "not_found"
    )
    refused(broker, lambda: _report(broker, vendor.report([(chain_id, 0, 101, payword)])), 404, "not_found")
    tampered = vendor.report([(chain_id, 0, index, payword)])
    tampered["body"]["entries"][0]["to_index"] = 4
    refused(broker, lambda: _report(broker, tampered), 400, "bad_signature")
    mixed = _report(
        broker,
        vendor.report([(chain_id, 0, index, payword), (secrets.token_bytes(16), 0, 1, payword)], report_id="mixed"),
    )
    assert mixed.status_code == 200
    assert len(mixed.json()["accepted"]) == 1 and mixed.json()["rejected"][0]["code"] == "not_found"
    other = vendor.report([(chain_id, 0, index, payword)], report_id="mixed")
    refused(broker, lambda: _report(broker, other), 409, "replayed")


def test_revoked_vendor_is_listed_and_refused(broker: RunningBroker) -> None:
    vendor, cert, _ = _setup(broker)
    url = f"{broker.url}/v1/vendors/shop/revoke"
    refused(broker, lambda: broker.session.post(url, json={}), 401, "auth_required")
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/vendors/nobody/revoke", json={}, headers={"X-Operator-Token": broker.operator_token}
        ),
        404,
        "not_found",
    )
    out = broker.session.post(url, json={}, headers={"X-Operator-Token": broker.operator_token})
    assert out.status_code == 200 and out.json()["revoked"] is True
    assert broker.session.get(f"{broker.url}/v1/revocations").json()["body"]["vendors"] == ["shop"]
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/vendors/shop/certificate"), 403, "revoked")
    refused(broker, lambda: _claim(broker, vendor.claim(cert.body.chain_id)), 403, "revoked")

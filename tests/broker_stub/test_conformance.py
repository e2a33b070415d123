"""What a client written from docs/protocol.md alone sends, the broker takes: optional fields left out, and a strict
JSON refusal that names the offending field."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
import requests

from broker_stub.core import IDEMPOTENCY_KEY_MAX
from netpay.encoding import canonical_json
from netpay.keys import SigningKey
from netpay.messages import RedemptionBatch, RedemptionResult, VendorRequest
from netpay.signed import SIGNING_DOMAIN, Body, Signed
from netpay.traversal import create_chain
from tests.broker_stub.util import bearer, refused
from tests.support.broker import TEST_CARD, RunningBroker, TestVendor


def second_team_sign(kind: type[Body], body: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """Sign the body exactly as it will be sent (docs/protocol.md §3), without netpay's message classes."""
    envelope = {"type": kind.TYPE, "version": kind.VERSION, "signer": key.public.hex, "body": body}
    return {**envelope, "signature": key.sign(SIGNING_DOMAIN + canonical_json(envelope)).hex()}


def _earning_vendor(b: RunningBroker) -> tuple[TestVendor, bytes, Any]:
    vendor = TestVendor("shop")
    b.register_vendor("shop", vendor.key)
    token = b.new_customer(topup=1000)
    cert, traversal = b.buy_chain(token, length=100)
    assert b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(cert.body.chain_id)).status_code == 200
    return vendor, cert.body.chain_id, traversal


def test_a_redemption_claim_without_release_and_a_payout_without_amount_are_accepted(broker: RunningBroker) -> None:
    vendor, chain_id, traversal = _earning_vendor(broker)
    i, w = traversal.advance(12)
    claim = {"chain_id": chain_id.hex(), "from_index": 0, "to_index": i, "payword": w.hex()}  # no "release"
    batch = {"batch_id": "b-1", "vendor_id": "shop", "claims": [claim], "created_at": vendor.now()}
    resp = broker.session.post(
        f"{broker.url}/v1/redemptions", json=second_team_sign(RedemptionBatch, batch, vendor.key)
    )
    assert resp.status_code == 200, resp.text
    result = Signed.from_wire(resp.json(), RedemptionResult).require_signer(broker.public_key)
    assert [r.status for r in result.results] == ["accepted"]

    request = {"vendor_id": "shop", "action": "payout", "nonce": secrets.token_hex(8), "requested_at": vendor.now()}
    resp = broker.session.post(
        f"{broker.url}/v1/vendors/shop/payouts", json=second_team_sign(VendorRequest, request, vendor.key)
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["amount"] == {"amount": 12, "currency": "EUR"}

    account = {"vendor_id": "shop", "action": "account", "nonce": secrets.token_hex(8), "requested_at": vendor.now()}
    resp = broker.session.get(
        f"{broker.url}/v1/vendors/shop/account",
        headers={"X-NetPay-Signed": json.dumps(second_team_sign(VendorRequest, account, vendor.key))},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["paid_out"]["amount"] == 12


BAD_BODIES = [
    ("float", b'{"username": "alice", "password": 1.5}', "body.password", "/password"),
    ("NaN", b'{"username": "alice", "password": NaN}', "body.password", "/password"),
    ("duplicate key", b'{"username": "alice", "password": "x", "username": "bob"}', "body.username", "/username"),
    ("integer out of range", b'{"username": "alice", "n": [1, 99999999999999999999]}', "body.n[1]", "/n/1"),
    ("huge integer", b'{"a": {"b": ' + b"9" * 5000 + b"}}", "body.a.b", "/a/b"),
    ("nested too deep", b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}", "body.x" + "[0]" * 32, "/x" + "/0" * 32),
    ("nested far too deep", b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body.x" + "[0]" * 32, "/x" + "/0" * 32),
    ("lone surrogate", b'{"username": "\\ud800"}', "body.username", "/username"),
]


@pytest.mark.parametrize(("name", "data", "field", "pointer"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_malformed_names_the_field(broker: RunningBroker, name: str, data: bytes, field: str, pointer: str) -> None:
    err = refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/accounts", data=data, headers={"Content-Type": "application/json"}
        ),
        400,
        "malformed",
    )
    assert err["details"]["field"] == field
    assert err["details"]["pointer"] == pointer
    assert field in err["message"]


def _buy_chain(b: RunningBroker, token: str, length: int, coin: int, key: str) -> requests.Response:
    chain_id = secrets.token_bytes(16)
    touchstone, _ = create_chain(chain_id, length)
    body = {
        "chain_id": chain_id.hex(),
        "touchstone": touchstone.hex(),
        "length": length,
        "coin_value": {"amount": coin, "currency": "EUR"},
        "card": TEST_CARD,
    }
    return b.session.post(f"{b.url}/v1/chains", json=body, headers=bearer(token, **{"Idempotency-Key": key}))


def test_idempotency_key_is_1_to_128_printable_ascii_characters(broker: RunningBroker) -> None:
    token = broker.new_customer()
    assert _buy_chain(broker, token, 10, 1, "~" * IDEMPOTENCY_KEY_MAX).status_code == 201
    assert _buy_chain(broker, token, 10, 1, "a key with spaces").status_code == 201
    for bad in ("k" * (IDEMPOTENCY_KEY_MAX + 1), "caf\xe9", "tab\there"):
        err = refused(broker, lambda bad=bad: _buy_chain(broker, token, 10, 1, bad), 400, "malformed")
        assert err["details"]["field"] == "Idempotency-Key"


def test_a_chain_over_the_charge_limit_is_a_bad_request_not_a_lack_of_funds(broker: RunningBroker) -> None:
    """The face-value cap is a limit on the request (the same for every account), documented as 400 malformed
    naming body.length; 402 is only for money the customer does not have."""
    cap = broker.broker.core.settings.max_charge
    token = broker.new_customer()
    err = refused(broker, lambda: _buy_chain(broker, token, cap // 10 + 1, 10, "over"), 400, "malformed")
    assert err["details"]["field"] == "body.length"
    assert err["details"]["max"] == cap
    assert _buy_chain(broker, token, cap // 10, 10, "at").status_code == 201


def test_a_malformed_signed_header_is_named_as_the_header(broker: RunningBroker) -> None:
    for raw, field in (("{bad json", "X-NetPay-Signed"), ('{"type": 1.5}', "X-NetPay-Signed.type")):
        err = refused(
            broker,
            lambda raw=raw: broker.session.get(
                f"{broker.url}/v1/vendors/shop/account", headers={"X-NetPay-Signed": raw}
            ),
            400,
            "malformed",
        )
        assert err["details"]["field"] == field

"""Every POST endpoint refuses malformed bodies (size, media type, JSON syntax, floats, wrong shapes) with a 4xx JSON
error and an unchanged database; expired certificates are refused with ``expired``."""

from __future__ import annotations

import secrets

import pytest

from tests.broker_stub.util import bearer, refused
from tests.support.broker import RunningBroker, TestVendor

POSTS = [
    "/v1/accounts",
    "/v1/sessions",
    "/v1/account/topups",
    "/v1/chains",
    "/v1/chains/{chain}/close",
    "/v1/vendors",
    "/v1/custody/claims",
    "/v1/spend-reports",
    "/v1/redemptions",
    "/v1/vendors/shop/payouts",
]

BAD_BODIES = [
    ("x" * 300_000, "application/json", 413, "payload_too_large"),
    ('{"a": 1}', "text/plain", 415, "unsupported_media_type"),
    ("{not json", "application/json", 400, "malformed"),
    ('{"amount": 1.5}', "application/json", 400, "malformed"),
    ('{"a": 1, "a": 2}', "application/json", 400, "malformed"),
    ("[1, 2]", "application/json", 400, "malformed"),
    ('"text"', "application/json", 400, "malformed"),
    (
        '{"type": "custody_claim", "version": 1, "body": {}, "signer": "00", "signature": "00"}',
        "application/json",
        400,
        "malformed",
    ),
]


@pytest.fixture
def ready(broker: RunningBroker) -> tuple[RunningBroker, dict[str, str], str]:
    vendor = TestVendor("shop")
    broker.register_vendor("shop", vendor.key)
    token = broker.new_customer(topup=500)
    cert, _ = broker.buy_chain(token, length=5)
    headers = bearer(token, **{"Idempotency-Key": "k", "X-Operator-Token": broker.operator_token})
    return broker, headers, cert.body.chain_id.hex()


@pytest.mark.parametrize("path", POSTS)
def test_post_endpoints_refuse_bad_bodies(ready: tuple[RunningBroker, dict[str, str], str], path: str) -> None:
    broker, headers, chain = ready
    url = broker.url + path.format(chain=chain)
    for data, ctype, status, code in BAD_BODIES:
        if data.startswith('{"type"'):
            if path.endswith("/close"):
                continue
            if path in ("/v1/spend-reports", "/v1/redemptions", "/v1/vendors/shop/payouts"):
                code = "wrong_type"  # a signed object of another type
        refused(
            broker,
            lambda d=data, c=ctype: broker.session.post(url, data=d.encode(), headers={**headers, "Content-Type": c}),
            status,
            code,
        )


def test_expired_vendor_and_coin_certificates(broker_factory) -> None:  # type: ignore[no-untyped-def]
    clock = [1_800_000_000]
    b = broker_factory(clock=lambda: clock[0], vendor_cert_validity_s=1000, chain_validity_s=500)
    vendor = TestVendor("shop")
    vendor.now = lambda: clock[0]  # type: ignore[method-assign]
    b.register_vendor("shop", vendor.key)
    token = b.new_customer(topup=500)
    cert, traversal = b.buy_chain(token, length=10)
    clock[0] += 600  # the coin certificate has expired, the vendor's has not
    refused(
        b, lambda: b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(cert.body.chain_id)), 400, "expired"
    )
    clock[0] += 600  # now the vendor's certificate has expired too
    refused(
        b, lambda: b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(cert.body.chain_id)), 400, "expired"
    )
    i, w = traversal.advance(2)
    refused(
        b,
        lambda: b.session.post(f"{b.url}/v1/redemptions", json=vendor.batch([(cert.body.chain_id, 0, i, w)])),
        400,
        "expired",
    )


def test_session_required_everywhere(broker: RunningBroker) -> None:
    chain = secrets.token_hex(16)
    for method, path in [
        ("get", "/v1/account"),
        ("get", "/v1/account/statement"),
        ("get", "/v1/account/chains"),
        ("post", "/v1/account/topups"),
        ("post", "/v1/chains"),
        ("post", f"/v1/chains/{chain}/close"),
    ]:
        refused(
            broker, lambda m=method, p=path: broker.session.request(m, broker.url + p, json={}), 401, "auth_required"
        )

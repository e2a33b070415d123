"""Vendor accounts and payouts, the trial balance endpoint, the revocation list, and the info endpoint."""

from __future__ import annotations

import json

import requests

from netpay.messages import RevocationList
from netpay.signed import Signed
from tests.broker_stub.util import refused
from tests.support.broker import RunningBroker, TestVendor


def _earn(b: RunningBroker, coins: int) -> TestVendor:
    vendor = TestVendor("shop")
    b.register_vendor("shop", vendor.key)
    token = b.new_customer(topup=1000)
    cert, traversal = b.buy_chain(token, length=100)
    chain_id = cert.body.chain_id
    b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(chain_id))
    i, w = traversal.advance(coins)
    assert b.session.post(f"{b.url}/v1/redemptions", json=vendor.batch([(chain_id, 0, i, w)])).status_code == 200
    return vendor


def _account(b: RunningBroker, vendor: TestVendor) -> requests.Response:
    return b.session.get(
        f"{b.url}/v1/vendors/shop/account", headers={"X-NetPay-Signed": json.dumps(vendor.request("account"))}
    )


def _payout(b: RunningBroker, wire: dict) -> requests.Response:
    return b.session.post(f"{b.url}/v1/vendors/shop/payouts", json=wire)


def test_vendor_account_and_payouts(broker: RunningBroker) -> None:
    vendor = _earn(broker, 40)
    acc = _account(broker, vendor)
    assert acc.status_code == 200, acc.text
    assert acc.json()["payable"]["amount"] == 40 and acc.json()["redeemed_coins"] == 40
    part = _payout(broker, vendor.request("payout", 15))
    assert part.status_code == 201 and part.json()["amount"]["amount"] == 15 and part.json()["payable"]["amount"] == 25
    rest = _payout(broker, vendor.request("payout"))
    assert rest.json()["amount"]["amount"] == 25
    acc = _account(broker, vendor).json()
    assert acc["payable"]["amount"] == 0 and acc["paid_out"]["amount"] == 40
    tb = broker.session.get(
        f"{broker.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": broker.operator_token}
    ).json()
    assert tb["balanced"] and tb["accounts"]["payouts"] == -40 and tb["accounts"]["vendor_payables"] == 0


def test_payout_and_account_refusals(broker: RunningBroker) -> None:
    vendor = _earn(broker, 10)
    refused(broker, lambda: _payout(broker, vendor.request("payout", 11)), 402, "insufficient_funds")
    refused(broker, lambda: _payout(broker, vendor.request("account")), 403, "forbidden")
    refused(broker, lambda: _payout(broker, TestVendor("shop").request("payout")), 403, "untrusted_signer")
    wire = vendor.request("payout", 5, nonce="once")
    assert _payout(broker, wire).status_code == 201
    refused(broker, lambda: _payout(broker, wire), 409, "replayed")
    assert _payout(broker, vendor.request("payout")).status_code == 201
    refused(broker, lambda: _payout(broker, vendor.request("payout")), 409, "conflict")
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/vendors/shop/account"), 401, "auth_required")
    refused(
        broker,
        lambda: broker.session.get(f"{broker.url}/v1/vendors/shop/account", headers={"X-NetPay-Signed": "{bad json"}),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.get(f"{broker.url}/v1/vendors/shop/account", headers={"X-Operator-Token": "nope"}),
        403,
        "forbidden",
    )


def test_trial_balance_needs_operator_token(broker: RunningBroker) -> None:
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/ledger/trial-balance"), 401, "auth_required")
    refused(
        broker,
        lambda: broker.session.get(f"{broker.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": "x"}),
        403,
        "forbidden",
    )


def test_revocation_list_is_signed_and_serial_grows(broker: RunningBroker) -> None:
    first = Signed.from_wire(broker.session.get(f"{broker.url}/v1/revocations").json(), RevocationList)
    assert first.require_signer(broker.public_key).serial == 0
    token = broker.new_customer(topup=100)
    serials = []
    for _ in range(2):
        cert, _ = broker.buy_chain(token, length=5)
        broker.session.post(
            f"{broker.url}/v1/chains/{cert.body.chain_id.hex()}/close",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        rl = Signed.from_wire(broker.session.get(f"{broker.url}/v1/revocations").json(), RevocationList)
        serials.append(rl.require_signer(broker.public_key).serial)
        assert cert.body.chain_id in rl.body.chains
    assert serials == [1, 2]


def test_info_and_docs(broker: RunningBroker) -> None:
    info = broker.session.get(f"{broker.url}/v1/info").json()
    assert info["broker_id"] == broker.broker_id and info["public_key"] == broker.public_key.hex
    assert info["currencies"] == ["EUR"] and info["revocation_url"].endswith("/v1/revocations")
    assert {"amount": 1, "currency": "EUR"} in info["coin_values"]
    assert broker.session.get(f"{broker.url}/docs").status_code == 200
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/nothing"), 404, "not_found")
    refused(broker, lambda: broker.session.delete(f"{broker.url}/v1/info"), 405, "method_not_allowed")

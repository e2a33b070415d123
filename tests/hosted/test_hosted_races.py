"""Races between two broker processes on one PostgreSQL over one hosted chain: two shops' codes redeemed at the same
moment, each at another process. One grant wins; the other is refused and nothing of it is written: two grants of
the same coins would be two custody windows over them (the overlap rule would charge the customer for the broker's
own double grant)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests

from broker_stub.hosted import pkce_challenge
from netpay.messages import GrantRequest
from netpay.signed import Signed
from tests.support.broker import TestVendor, start_broker
from tests.support.hosted import hosted_customer
from tests.support.postgres import database_url_for, postgres_available
from tests.support.processes import spawn_broker, together

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")

REDIRECT = "http://127.0.0.1:9/hosted/callback"


def test_two_grants_of_one_hosted_chain_at_two_broker_processes(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    url = database_url_for(data)
    own = start_broker(data, database_url=url)
    a, b = spawn_broker(data, url), spawn_broker(data, url)
    try:
        shops = [TestVendor("shop-one"), TestVendor("shop-two")]
        for shop in shops:
            own.register_vendor(shop.vendor_id, shop.key)
        hosted = own.broker.hosted
        db = own.broker.core.db
        for round_ in range(4):
            _, token = hosted_customer(own, hosted_cents=100, topup=100)
            me = own.session.get(f"{own.url}/v1/account", headers={"Authorization": f"Bearer {token}"})
            account_id = me.json()["account_id"]
            requests_ = []
            for shop in shops:
                verifier = secrets.token_urlsafe(48)
                code = hosted.issue_code(account_id, shop.vendor_id, REDIRECT, pkce_challenge(verifier),
                                         own.broker.core.money(30), 3600)  # fmt: skip
                req = GrantRequest(shop.vendor_id, code, verifier, REDIRECT, secrets.token_hex(8), shop.now())
                requests_.append(Signed.sign(req, shop.key).to_wire())
            r1, r2 = together(
                lambda w=requests_[0]: requests.post(f"{a.url}/v1/hosted/grants", json=w, timeout=60),
                lambda w=requests_[1]: requests.post(f"{b.url}/v1/hosted/grants", json=w, timeout=60),
            )
            ok = [r for r in (r1, r2) if r.status_code == 200]
            refused = [r for r in (r1, r2) if r.status_code != 200]
            assert len(ok) == 1 and len(refused) == 1, (round_, r1.text, r2.text)
            assert refused[0].status_code == 402 and refused[0].json()["error"]["code"] == "insufficient_coins"
            chain_id = ok[0].json()["grant"]["body"]["chain_id"]
            grants = db.query("SELECT vendor_id, from_index, to_index FROM hosted_grants WHERE chain_id = ?",
                              (chain_id,))  # fmt: skip
            windows = db.query("SELECT vendor_id, lower_index, upper_index FROM custody WHERE chain_id = ?",
                               (chain_id,))  # fmt: skip
            assert len(grants) == 1 and [tuple(w) for w in windows] == [tuple(g) for g in grants]
            free = db.one("SELECT free_index FROM hosted_chains WHERE chain_id = ?", (chain_id,))
            assert free is not None and free[0] == 30
    finally:
        a.stop()
        b.stop()
        own.stop()

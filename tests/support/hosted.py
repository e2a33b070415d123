"""Helpers for the hosted e-wallet: a customer with hosted coins, and the grant redirect played by a requests
session (what a phone's browser does: shop → broker log in → approve → back at the shop)."""

from __future__ import annotations

import re
import secrets
from html import unescape
from typing import Any

import requests

from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor

__all__ = ["PAID", "PASSWORD", "authorize", "hidden_fields", "hosted_customer", "hosted_summary"]

PASSWORD = "correct horse battery"

#: In an item page opened with its access token (the shop hands the token over as a cookie, never in the URL).
PAID = 'class="story paid"'


def hosted_customer(broker: RunningBroker, hosted_cents: int = 200, topup: int = 1000) -> tuple[str, str]:
    """A new customer (username, session token) with ``hosted_cents`` coins of 1 cent in a hosted chain."""
    name = "alice_" + secrets.token_hex(3)
    token = broker.new_customer(name, PASSWORD, topup=topup)
    r = broker.session.post(
        f"{broker.url}/v1/account/hosted/chains",
        json={"length": hosted_cents, "coin_value": Money(1, "EUR").to_json()},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
    )
    assert r.status_code == 201, r.text
    return name, token


def hosted_summary(broker: RunningBroker, token: str) -> dict[str, Any]:
    r = broker.session.get(f"{broker.url}/v1/account/hosted", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def hidden_fields(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html)
    return {k: unescape(v) for k, v in found}


def authorize(browser: requests.Session, shop: RunningVendor, name: str, budget: str = "0.50",
              item: str = "night-market-returns") -> requests.Response:  # fmt: skip
    """Shop → broker (log in if needed) → approve → back at the shop, the item paid from the new grant."""
    r = browser.get(f"{shop.url}/hosted/start?item={item}", allow_redirects=True)
    broker_origin = r.url.split("/hosted/")[0]
    if 'action="/hosted/login"' in r.text:
        fields = {**hidden_fields(r.text), "username": name, "password": PASSWORD}
        r = browser.post(f"{broker_origin}/hosted/login", data=fields)
    assert "data-vendor-name" in r.text, r.text
    form = {**hidden_fields(r.text), "budget": budget, "duration": "86400", "decision": "allow"}
    return browser.post(f"{broker_origin}/hosted/authorize", data=form)

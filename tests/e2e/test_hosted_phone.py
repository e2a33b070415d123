"""End to end on a phone: Debian's chromium with a 375 px viewport and touch (Playwright device emulation), a real
broker and two real shops. The customer logs in at the broker from a shop, approves a grant, buys three articles and
a card (the hosted e-wallet moves from the newspaper to the card shop), sees the purchases and the remaining budget
on the broker's page, revokes the card shop's grant and finds the unspent coins back in the hosted balance.

Each phone screen is saved as a PNG (to ``NETPAY_SCREENSHOTS`` when set, e.g. ``docs/screenshots``, else tmp_path).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.callback import chromium
from tests.support.vendor import CARDS, RunningVendor

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
}


def _hosted(broker: RunningBroker, token: str) -> dict[str, Any]:
    r = broker.session.get(f"{broker.url}/v1/account/hosted", headers={"Authorization": f"Bearer {token}"})
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def test_phone_hosted_wallet(broker: RunningBroker, vendor: RunningVendor,
                             vendor_factory: Callable[..., RunningVendor], tmp_path: Path) -> None:  # fmt: skip
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    shots = Path(os.environ.get("NETPAY_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    name = "alice_" + secrets.token_hex(3)
    token = broker.new_customer(name, "correct horse battery", topup=1000)
    r = broker.session.post(
        f"{broker.url}/v1/account/hosted/chains",
        json={"length": 200, "coin_value": Money(1, "EUR").to_json()},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
    )
    assert r.status_code == 201, r.text

    with chromium() as browser:
        page = browser.new_context(**PHONE).new_page()

        def shot(label: str, full_page: bool = True) -> None:
            page.screenshot(path=str(shots / f"phone-{label}.png"), full_page=full_page)

        # 1. An article at the newspaper: pay with the NetPay account; the broker asks to log in.
        page.goto(f"{vendor.url}/items/night-market-returns")
        page.locator(".np-hosted-buy").scroll_into_view_if_needed()
        shot("shop-item", full_page=False)
        page.tap(".np-hosted-buy")
        page.wait_for_selector("form[action='/hosted/login']")
        assert page.url.startswith(broker.url)
        page.fill("#u", name)
        page.fill("#p", "correct horse battery")
        shot("broker-login")
        page.tap("form[action='/hosted/login'] button")

        # 2. The approve page names the certified shop; allow 50 cents for a day.
        page.wait_for_selector("[data-vendor-name]")
        assert page.inner_text("[data-vendor-name]") == "Daily Planet"
        page.fill("#b", "0.50")
        shot("broker-approve")
        page.tap("button[value='allow']")
        page.wait_for_selector("article.paid")
        assert page.url.startswith(vendor.url) and "access=" not in page.url and "code=" not in page.url
        shot("shop-paid")

        # 3. Two more articles: one tap each under the grant.
        for item in ("observatory-finds-comet", "harbour-bridge-reopens"):
            page.goto(f"{vendor.url}/items/{item}")
            page.tap(".np-hosted-buy")
            page.wait_for_selector("article.paid")

        # 4. A card at the card shop: approve it too (already logged in at the broker); the e-wallet moves.
        page.goto(f"{cards.url}/items/thank-you-sunrise")
        page.tap(".np-hosted-buy")
        page.wait_for_selector("[data-vendor-name]")
        assert page.inner_text("[data-vendor-name]") == "Paper Lantern Cards"
        page.fill("#b", "0.40")
        page.tap("button[value='allow']")
        page.wait_for_selector("article.paid")
        assert page.url.startswith(cards.url)

        # 5. The broker's page: both shops, what each spent (from their spend reports), what is left.
        vendor.vendor.reporter.flush()
        cards.vendor.reporter.flush()
        page.goto(f"{broker.url}/wallet")
        news = page.locator(".card", has_text="Daily Planet")
        # Each line is one reported spend (a vendor's report may merge purchases made close together).
        assert "Spent €0.12" in news.inner_text() and 1 <= news.locator("li").count() <= 3
        card = page.locator(".card", has_text="Paper Lantern Cards")
        assert "Remaining: €0.30" in card.inner_text()
        assert page.inner_text("[data-hosted]") == "€1.48"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
        shot("broker-wallet")

        # 6. Revoke the card shop's grant: its unspent 30 cents come back.
        card.locator("button.danger").tap()
        page.wait_for_selector(".card[data-status='active']", state="detached")
        assert page.inner_text("[data-hosted]") == "€1.78"
        shot("broker-revoked")

    s = _hosted(broker, token)
    assert s["hosted_balance"]["amount"] == 178 and all(g["status"] == "ended" for g in s["grants"])

"""End to end in Debian's chromium: a real vendor page, a real broker, the real wallet core behind the callback.

Buy → the wallet prompts (answered here, granting an allowance) → paid article; a second purchase inside the
allowance completes with no prompt; with the wallet stopped the page shows the install hint.
"""

from __future__ import annotations

import pytest

from netpay.money import Money
from tests.support.callback import chromium
from tests.support.vendor import RunningVendor
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_buy_in_chromium_prompt_then_allowance_then_no_wallet(handoff: CallbackServer, vendor: RunningVendor) -> None:
    coordinator = handoff.coordinator
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:  # the test plays the customer: approve and allow 20 cents a day
        prompts.append(prompt)
        coordinator.approve(prompt.prompt_id, allow_limit=Money(20, "EUR"))

    coordinator.on_prompt = answer
    items = [i["item_id"] for i in vendor.session.get(f"{vendor.url}/v1/catalog", timeout=10).json()["items"]]
    cheap = [i for i in items if "pass" not in i][:3]

    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")

        # 1. First purchase: a prompt, answered by the test; the page opens the paid article.
        page.goto(f"{vendor.url}/items/{cheap[0]}")
        assert page.locator("article.paid").count() == 0
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=15000)
        assert "access=" not in page.url and "code=" not in page.url  # the token is in a cookie, not the URL
        assert len(prompts) == 1 and prompts[0].vendor_name == "Daily Planet"
        assert prompts[0].origin == vendor.url and prompts[0].item_id == cheap[0]

        # 2. Second purchase: inside the allowance, paid with no prompt.
        page.goto(f"{vendor.url}/items/{cheap[1]}")
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=15000)
        assert len(prompts) == 1
        assert [a.vendor_id for a in handoff.coordinator.wallet.service.allowances()] == [vendor.vendor_id]  # type: ignore[attr-defined]

        # 3. Wallet stopped: the page shows how to install and start one.
        handoff.stop()
        page.goto(f"{vendor.url}/items/{cheap[2]}")
        page.wait_for_selector("[data-netpay-hint]:not([hidden])", timeout=10000)
        page.click(".np-buy")
        page.wait_for_selector(".np-buy[data-netpay-state='no_wallet']", timeout=10000)
        assert page.is_visible("[data-netpay-hint]")
        assert page.locator("article.paid").count() == 0


def test_page_api_available_and_declined_purchase(handoff: CallbackServer, vendor: RunningVendor) -> None:
    coordinator = handoff.coordinator
    coordinator.on_prompt = lambda prompt: coordinator.decline(prompt.prompt_id)
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")
        page.goto(f"{vendor.url}/items/harbour-bridge-reopens")
        assert page.evaluate("netpay.available()") is True
        outcome = page.evaluate(
            "netpay.buy({itemId: 'harbour-bridge-reopens', quoteUrl: '/v1/quotes'})"
            ".then(r => 'paid ' + r.accessToken, e => e.code)"
        )
        assert outcome == "declined"
        page.click(".np-buy")
        page.wait_for_selector(".np-buy[data-netpay-state='declined']", timeout=10000)
        assert "declined" in page.inner_text(".np-status")
        assert page.locator("article.paid").count() == 0
    assert coordinator.pending_prompts() == []


def _allow(handoff: CallbackServer, vendor: RunningVendor) -> None:
    service = handoff.coordinator.wallet.service  # type: ignore[attr-defined]
    service.set_allowance(vendor.vendor_id, "Daily Planet", Money(20, "EUR"), Money(100, "EUR"))


def test_a_click_hands_the_wallet_the_quote_asked_for_at_load(handoff: CallbackServer, vendor: RunningVendor) -> None:
    """Buy sends one request to the wallet, the purchase (the wallet's hello and the vendor's quote were asked for
    when the page loaded, and the wallet pays exactly that quote), then hands the access token to the shop in a POST
    that sets the item's cookie, so the token never goes into the item's URL."""
    _allow(handoff, vendor)
    paid_quotes: list[str] = []
    handoff.coordinator.on_paid = lambda offer, result, via: paid_quotes.append(offer.quote.body.quote_id)
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")
        with page.expect_response(lambda r: r.url.endswith("/v1/quotes")) as early:
            page.goto(f"{vendor.url}/items/harbour-bridge-reopens")
        page_quote = early.value.json()["quote"]["body"]["quote_id"]
        page.wait_for_selector(".np-buy[data-netpay-bound]")
        sent: list[str] = []
        page.on("request", lambda r: sent.append(f"{r.method} {r.url}") if r.resource_type == "fetch" else None)
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=15000)
    assert sent == [f"POST {handoff.url}/v1/purchase", f"POST {vendor.url}/v1/access/cookie"]
    assert paid_quotes == [page_quote]


def test_a_wallet_stopped_after_the_page_loaded_reads_no_wallet(handoff: CallbackServer, vendor: RunningVendor) -> None:
    """The page's hello at load is stale once the wallet stops: the failed purchase request asks again and says
    that no wallet answered, instead of navigating to a wallet that is not there."""
    _allow(handoff, vendor)
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")
        with page.expect_response(lambda r: r.url.endswith("/v1/quotes")):
            page.goto(f"{vendor.url}/items/harbour-bridge-reopens")
        url = page.url
        handoff.stop()
        page.click(".np-buy")
        page.wait_for_selector(".np-buy[data-netpay-state='no_wallet']", timeout=10000)
        assert page.is_visible("[data-netpay-hint]") and page.url == url
        assert page.locator("article.paid").count() == 0

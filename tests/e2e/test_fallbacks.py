"""The two ways around page-to-wallet requests, with the real wallet core, vendor and broker:
the navigation fallback in chromium, and a ``netpay:`` link handed over the single-instance channel."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from netpay.errors import NetPayError
from netpay.money import Money
from tests.support.callback import chromium
from tests.support.vendor import RunningVendor
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer
from wallet_app.callback.single_instance import InstanceChannel, send_to_running

pytestmark = [pytest.mark.browser]

ITEM = "harbour-bridge-reopens"


def test_navigation_fallback_always_prompts_and_returns_to_the_item(
    handoff: CallbackServer, vendor: RunningVendor
) -> None:
    coordinator = handoff.coordinator
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        coordinator.approve(prompt.prompt_id)

    coordinator.on_prompt = answer
    url = f"{handoff.url}/v1/pay?quote_url={quote(vendor.url + '/v1/quotes', safe='')}&item={ITEM}"
    with chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("article.paid", timeout=15000)
        assert page.url == f"{vendor.url}/items/{ITEM}"
    assert len(prompts) == 1 and prompts[0].navigation and prompts[0].vendor_name == "Daily Planet"


def test_netpay_link_reaches_the_running_wallet_and_is_paid_after_approval(
    handoff: CallbackServer, vendor: RunningVendor, tmp_path: Path
) -> None:
    coordinator = handoff.coordinator
    opened = threading.Event()
    errors: list[NetPayError] = []

    def on_uri(uri: str) -> None:
        try:
            coordinator.purchase_link(uri)
        except NetPayError as exc:
            errors.append(exc)
            raise
        finally:
            opened.set()

    path = Path("/tmp") / f"np-e2e-{os.getpid()}" / "instance.sock"
    channel = InstanceChannel(path, on_uri)
    assert channel.acquire()
    try:
        link = f"netpay:pay?quote_url={quote(vendor.url + '/v1/quotes', safe='')}&item={ITEM}"
        assert send_to_running(link, path)
        assert opened.wait(10) and errors == []
        (prompt,) = coordinator.pending_prompts()
        assert prompt.navigation and prompt.item_id == ITEM and prompt.origin == vendor.url
        done = coordinator.approve(prompt.prompt_id).result(timeout=15)
        assert done.status == "paid"
        # A link to a server no broker certified is refused before anything is posted to it.
        assert not send_to_running("netpay:pay?quote_url=http%3A%2F%2F127.0.0.1%3A9%2Fv1%2Fquotes&item=x", path)
    finally:
        channel.close()
        path.parent.rmdir()
    assert coordinator.pending_prompts() == []


#: The browser blocks the page's request to the wallet (as Local Network Access may): fetch rejects.
BLOCK_PURCHASE = """
(() => {
  const realFetch = window.fetch;
  window.fetch = function (url, options) {
    if (String(url).endsWith("/v1/purchase")) return Promise.reject(new TypeError("Failed to fetch"));
    return realFetch.apply(this, arguments);
  };
})();
"""


def test_blocked_purchase_falls_back_with_the_quote_the_page_holds(
    handoff: CallbackServer, vendor: RunningVendor
) -> None:
    """The page passes its own offer to /v1/pay: the wallet asks the vendor for no second quote."""
    coordinator = handoff.coordinator
    prompts: list[Prompt] = []
    paid_quotes: list[str] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        coordinator.approve(prompt.prompt_id)

    coordinator.on_prompt = answer
    coordinator.on_paid = lambda offer, result, via: paid_quotes.append(offer.quote.body.quote_id)
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};" + BLOCK_PURCHASE)
        with page.expect_response(lambda r: r.url.endswith("/v1/quotes")) as early:
            page.goto(f"{vendor.url}/items/{ITEM}")
        page_quote = early.value.json()["quote"]["body"]["quote_id"]
        page.wait_for_selector(".np-buy[data-netpay-bound]")
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=15000)
        assert page.url == f"{vendor.url}/items/{ITEM}"
    assert len(prompts) == 1 and prompts[0].navigation
    assert paid_quotes == [page_quote]


def test_fallback_with_an_offer_the_wallet_already_paid_pays_nothing_again(
    handoff: CallbackServer, vendor: RunningVendor
) -> None:
    """A purchase request that reached the wallet but whose answer the browser blocked, then the fallback with the
    same offer: refused as paid, not bought twice (a fresh quote from the vendor would have been)."""
    service = handoff.coordinator.wallet.service  # type: ignore[attr-defined]
    service.set_allowance(vendor.vendor_id, "Daily Planet", Money(20, "EUR"), Money(100, "EUR"))
    offer = vendor.session.post(f"{vendor.url}/v1/quotes", json={"item_id": ITEM}, timeout=10).json()
    first = requests.post(f"{handoff.url}/v1/purchase", json=offer, headers={"Origin": vendor.url}, timeout=30)
    assert first.status_code == 200 and first.json()["status"] == "paid"
    spent = len(service.activity())
    inline = base64.urlsafe_b64encode(json.dumps(offer).encode()).decode().rstrip("=")
    again = requests.get(f"{handoff.url}/v1/pay", params={"offer": inline, "origin": vendor.url},
                         allow_redirects=False, timeout=30)  # fmt: skip
    assert again.status_code == 409 and 'data-code="quote_paid"' in again.text
    assert len(service.activity()) == spent and handoff.coordinator.pending_prompts() == []

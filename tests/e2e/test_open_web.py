"""A shop on the open web, in Debian's chromium: the Daily Planet on https://<non-loopback address> (a test host in
its own network namespace, certificate from a test CA), the real wallet core behind the callback on 127.0.0.1.

The page's origin is a secure context in another address space than the wallet, so Chromium's Local Network Access
rules apply as for a real shop: with the permission granted, Buy completes through the page script; with it denied,
the page script navigates to the wallet's fallback page and the purchase still completes; not yet decided, loading
the page asks nothing of the wallet and a refusal at Buy falls back the same way; with no wallet, the page shows the
install hint (once).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import RunningBroker
from tests.support.callback import chromium
from tests.support.web_shop import WebShop, web_shop
from wallet_app.callback import server as callback_server
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer
from wallet_app.clients.http import set_ca_file

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ITEM = "harbour-bridge-reopens"


@pytest.fixture
def shop(broker: RunningBroker, tmp_path: Path) -> Iterator[WebShop]:
    with web_shop(broker, tmp_path) as running:
        set_ca_file(str(running.ca_file))  # the wallet verifies the shop against the test CA (--ca-file)
        try:
            yield running
        finally:
            set_ca_file(None)


@pytest.fixture
def wallet_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``METHOD /path`` of every request that reaches the callback."""
    seen: list[str] = []
    original = callback_server.Guard.__call__

    async def record(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(callback_server.Guard, "__call__", record)
    return seen


@pytest.fixture
def preflights(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The headers of every CORS preflight the callback answers (what Chromium asks of a loopback server)."""
    seen: list[dict[str, str]] = []
    original = callback_server.Guard._preflight

    async def record(self: Any, scope: Any, receive: Any, send: Any) -> None:
        seen.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])})
        await original(self, scope, receive, send)

    monkeypatch.setattr(callback_server.Guard, "_preflight", record)
    return seen


def _browser_context(browser: Any, shop: WebShop, lna: str | None) -> tuple[Any, Any]:
    """A context whose Local Network Access permission for the shop is ``granted``, ``denied`` or untouched."""
    context = browser.new_context()
    page = context.new_page()
    if lna == "granted":
        context.grant_permissions(["local-network-access"], origin=shop.origin)
    elif lna == "denied":
        cdp = context.new_cdp_session(page)
        ctx_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        browser_cdp = browser.new_browser_cdp_session()
        for name in ("loopback-network", "local-network"):
            browser_cdp.send("Browser.setPermission", {"permission": {"name": name}, "setting": "denied",
                                                       "origin": shop.origin, "browserContextId": ctx_id})  # fmt: skip
    return context, page


def _open(page: Any, handoff: CallbackServer, url: str) -> None:
    page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")
    page.goto(url)
    assert page.evaluate("window.isSecureContext") is True  # a real certificate check passed: the rules are real
    assert page.evaluate("location.protocol") == "https:"


def test_lna_granted_buy_completes_through_the_page_script(
    handoff: CallbackServer, shop: WebShop, preflights: list[dict[str, str]]
) -> None:
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        handoff.coordinator.approve(prompt.prompt_id)

    handoff.coordinator.on_prompt = answer
    with chromium([f"--ignore-certificate-errors-spki-list={shop.leaf_spki}"]) as browser:
        context, page = _browser_context(browser, shop, "granted")
        _open(page, handoff, f"{shop.origin}/items/{ITEM}")
        assert page.evaluate("netpay.available()") is True
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=20000)
        assert page.url == f"{shop.origin}/items/{ITEM}"
        access = [c for c in context.cookies(shop.origin) if c["name"] == f"np_item_{ITEM}"]
        assert len(access) == 1 and access[0]["secure"] and access[0]["httpOnly"]  # an HTTPS shop's cookie is Secure
    assert len(prompts) == 1
    assert prompts[0].origin == shop.origin and not prompts[0].navigation
    assert prompts[0].vendor_name == "Daily Planet"
    # Chromium 156 gates the page with the permission, not a preflight header: it sends the ordinary CORS preflight
    # for the JSON POST, without Access-Control-Request-Private-Network (PNA, gone) or a Local-Network variant.
    assert preflights and all(p["origin"] == shop.origin for p in preflights)
    assert not [k for p in preflights for k in p if "private-network" in k or "local-network" in k]


def test_lna_denied_buy_falls_back_to_the_navigation_hand_off(handoff: CallbackServer, shop: WebShop) -> None:
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        handoff.coordinator.approve(prompt.prompt_id)

    handoff.coordinator.on_prompt = answer
    with chromium([f"--ignore-certificate-errors-spki-list={shop.leaf_spki}"]) as browser:
        _, page = _browser_context(browser, shop, "denied")
        _open(page, handoff, f"{shop.origin}/items/{ITEM}")
        assert page.evaluate("navigator.permissions.query({name: 'loopback-network'}).then(s => s.state)") == "denied"
        assert page.evaluate("netpay.available()") is False  # the browser keeps the page from the wallet
        assert page.is_hidden("[data-netpay-hint]")  # refused is not "no wallet": no install hint
        page.click(".np-buy")
        page.wait_for_selector("article.paid", timeout=20000)
        assert page.url == f"{shop.origin}/items/{ITEM}"
    assert len(prompts) == 1 and prompts[0].navigation and prompts[0].origin == shop.origin


def test_no_wallet_shows_the_install_hint_once(handoff: CallbackServer, shop: WebShop) -> None:
    handoff.stop()
    with chromium([f"--ignore-certificate-errors-spki-list={shop.leaf_spki}"]) as browser:
        _, page = _browser_context(browser, shop, "granted")
        _open(page, handoff, f"{shop.origin}/items/{ITEM}")
        page.wait_for_selector("[data-netpay-hint]:not([hidden])", timeout=10000)
        page.click(".np-buy")
        page.wait_for_selector(".np-buy[data-netpay-state='no_wallet']", timeout=10000)
        assert page.is_visible("[data-netpay-hint]") and page.locator("article.paid").count() == 0
        assert page.inner_text("main").count("No NetPay Wallet answered.") == 1


def test_lna_not_yet_decided_nothing_reaches_the_wallet_before_buy_and_a_refusal_falls_back(
    handoff: CallbackServer, shop: WebShop, wallet_requests: list[str]
) -> None:
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        handoff.coordinator.approve(prompt.prompt_id)

    handoff.coordinator.on_prompt = answer
    with chromium([f"--ignore-certificate-errors-spki-list={shop.leaf_spki}"]) as browser:
        _, page = _browser_context(browser, shop, None)
        _open(page, handoff, f"{shop.origin}/items/{ITEM}")
        assert page.evaluate("navigator.permissions.query({name: 'loopback-network'}).then(s => s.state)") == "prompt"
        page.wait_for_load_state("networkidle")
        # Loading the page asks nothing of the wallet (no permission prompt before a click) and shows no hint.
        assert wallet_requests == [] and page.is_hidden("[data-netpay-hint]")
        page.click(".np-buy")  # headless Chromium refuses the prompt it would show here
        page.wait_for_selector("article.paid", timeout=20000)
        assert page.url == f"{shop.origin}/items/{ITEM}"
        assert page.evaluate("navigator.permissions.query({name: 'loopback-network'}).then(s => s.state)") == "denied"
    assert wallet_requests[0] == "GET /v1/pay"  # the refused fetch never reached the wallet: the navigation did
    assert len(prompts) == 1 and prompts[0].navigation

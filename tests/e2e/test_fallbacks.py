"""The two ways around page-to-wallet requests, with the real wallet core, vendor and broker:
the navigation fallback in chromium, and a ``netpay:`` link handed over the single-instance channel."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from netpay.errors import NetPayError
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
        assert page.url.startswith(f"{vendor.url}/items/{ITEM}?access=")
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

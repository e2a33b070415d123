"""End to end in Debian's chromium: the Daily Planet's podcast, paid per unit of listening (seed 000, metered).

The customer presses Listen once: the wallet's prompt (answered here) approves the session and pays unit 1; then
each next unit is paid by the page through the wallet with no prompt while the current one plays, fetched from the
shop with the session's token in a header (never in a URL), until the customer presses Stop. The wallet's Activity
shows the session's units and total, and the shop counts the same units."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.callback import chromium
from tests.support.gui import SCREENSHOTS
from tests.support.vendor import NEWSPAPER, RunningVendor
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PODCAST = "planet-podcast"


def _shot(page: Any, name: str) -> None:
    """A page screenshot under docs/screenshots/ when missing or NETPAY_UPDATE_SCREENSHOTS=1 (else a temp folder)."""
    target = SCREENSHOTS
    if (SCREENSHOTS / name).exists() and os.environ.get("NETPAY_UPDATE_SCREENSHOTS") != "1":
        target = Path(tempfile.gettempdir()) / "netpay-screenshots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name))
    assert (target / name).stat().st_size < 400_000


def _short_units_shop(vendor_factory: Callable[..., RunningVendor], tmp_path: Path) -> RunningVendor:
    """The Daily Planet with the podcast's units one second long (30 s in the real catalog), so a test listens to
    several units in seconds."""
    data = json.loads(NEWSPAPER.read_text())
    next(i for i in data["items"] if i["item_id"] == PODCAST)["model"]["unit_s"] = 1
    (tmp_path / "short-units.json").write_text(json.dumps(data))
    return vendor_factory(catalog=tmp_path / "short-units.json")


def test_listen_to_a_few_units_then_stop(handoff: CallbackServer, vendor_factory: Callable[..., RunningVendor],
                                         broker: RunningBroker, tmp_path: Path) -> None:  # fmt: skip
    shop = _short_units_shop(vendor_factory, tmp_path)
    coordinator = handoff.coordinator
    service = coordinator.wallet.service  # type: ignore[attr-defined]
    prompts: list[Prompt] = []

    def answer(prompt: Prompt) -> None:
        prompts.append(prompt)
        coordinator.approve(prompt.prompt_id)

    coordinator.on_prompt = answer
    requested: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("request", lambda r: requested.append(r.url))
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {handoff.url!r}}};")
        page.goto(f"{shop.url}/items/{PODCAST}")
        page.click(".np-meter")
        page.wait_for_function("document.querySelector('[data-netpay-meter-status]').textContent.includes('Unit 3')",
                               timeout=30000)  # fmt: skip
        page.set_viewport_size({"width": 1280, "height": 800})
        page.locator("[data-netpay-meter]").scroll_into_view_if_needed()
        _shot(page, "shop-metered.png")
        page.click("[data-netpay-meter-stop]")
        page.wait_for_selector("[data-netpay-meter][data-netpay-state='ended']", timeout=10000)
        status = page.inner_text("[data-netpay-meter-status]")
        # the same page on a phone, 375 px wide: nothing wider than the screen
        phone = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                                    has_touch=True).new_page()  # fmt: skip
        phone.goto(f"{shop.url}/items/{PODCAST}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        phone.locator("[data-netpay-meter]").scroll_into_view_if_needed()
        _shot(phone, "shop-metered-phone.png")
    assert len(prompts) == 1  # one approval for the whole session
    sessions = service.metered_sessions()
    assert len(sessions) == 1
    s = sessions[0]
    assert s.status == "ended" and s.end_reason == "page" and 3 <= s.units_paid <= 4
    assert f"{s.units_paid} units paid" in status
    line = next(e for e in service.activity() if e.kind == "metered")
    assert line.amount == Money(s.units_paid, "EUR") and f"{s.units_paid} units of 30 s of audio" in str(line.title)
    shop_row = shop.vendor.store.one("SELECT units_paid, status FROM metered_sessions")
    assert (shop_row["units_paid"], shop_row["status"]) == (s.units_paid, "ended")
    assert int(shop.vendor.store.one("SELECT COUNT(*) AS n FROM spends")["n"]) == s.units_paid
    assert not [u for u in requested if "access=" in u or "v1." in u.split("/")[-1]]  # no token in any URL

"""In chromium: a purchase the wallet's coins cannot make exactly shows, on the shop's page, which coins to buy."""

from __future__ import annotations

from typing import Any

import pytest

from netpay.money import Money
from tests.support.callback import chromium
from tests.support.vendor import RunningVendor
from tests.support.wallet import funded_wallet as fund
from wallet_app.callback.services_adapter import ServicesWalletPort
from wallet_app.services import WalletService

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_page_says_which_coins_to_buy(
    wallet: WalletService, broker: Any, vendor: RunningVendor, callback_for: Any, tmp_path: Any
) -> None:
    fund(wallet, broker.url, chains=1, coins=10, coin_value=2)  # EUR 0.20 in 2-cent coins; the article is 5 cents
    srv = callback_for(ServicesWalletPort(wallet))
    wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(50, "EUR"))
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 740})
        page.add_init_script(f"window.netpayConfig = {{walletUrl: {srv.url!r}}};")
        page.goto(f"{vendor.url}/items/harbour-bridge-reopens")
        page.click(".np-buy")
        page.wait_for_selector(".np-buy[data-netpay-state='insufficient_coins']", timeout=15000)
        status = page.inner_text(".np-status")
        assert "buy coins of €0.01" in status and "0.20" not in status
        page.locator(".np-status").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "shop-no-change-375.png"))
        assert page.locator("article.paid").count() == 0
    assert wallet.vault.query("SELECT * FROM spends") == []

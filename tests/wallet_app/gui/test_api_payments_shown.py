"""A payment made by a program (the client library, ``netpay-wallet pay``) shows in the window's activity as such."""

from __future__ import annotations

from tests.support.gui import compose, save_screenshot
from wallet_app.client import PayingSession, SpendingRules


def test_program_payment_in_activity(qtbot, gui_wallet, vendor):
    gui_wallet.set_up_account()
    gui_wallet.buy(100, 1)
    with PayingSession(gui_wallet.service, SpendingRules.parse("EUR", per_request=1)) as api:
        assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=30).status_code == 200
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.activity_page.table.rowCount() == 2, timeout=10000)
    statuses = [window.activity_page.table.item(r, 4).text() for r in range(2)]
    assert "Paid · by a program" in statuses
    window.show_page(1)
    qtbot.wait(50)
    save_screenshot(compose(window), "wallet-activity-program.png")

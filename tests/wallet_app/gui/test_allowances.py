"""Allowances: granted from a prompt, an automatic payment with its notification, and revoking it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from wallet_app.gui.prompt import PurchasePrompt


def test_allowance_from_prompt_pays_automatically_notifies_and_can_be_revoked(qtbot, gui_wallet, vendor):
    gui_wallet.set_up_account()
    gui_wallet.buy(500, 1)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)

    first = gui_wallet.offer(vendor, "harbour-bridge-reopens")
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    dialog = gui_wallet.windows.prompts.current
    dialog.allow_check.setChecked(True)
    dialog.allow_limit.setCurrentIndex(3)  # up to 10 × the price
    assert dialog.chosen_limit().format() == "€0.50"
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(first, vendor.url)["status"] == "paid", timeout=10000)
    qtbot.waitUntil(lambda: window.allowances_page.table.rowCount() == 1, timeout=5000)
    assert window.allowances_page.table.item(0, 0).text() == "Daily Planet"
    assert window.allowances_page.table.item(0, 1).text() == "€0.50"
    assert gui_wallet.windows.tray.messages == []

    # Inside the allowance: paid at once, no prompt, and the customer is told.
    second = gui_wallet.offer(vendor, "night-market-returns")
    assert second["status"] == "paid" and second["access_token"]
    qtbot.waitUntil(lambda: len(gui_wallet.windows.tray.messages) == 1, timeout=5000)
    title, text = gui_wallet.windows.tray.messages[0]
    assert title == "NetPay payment"
    assert "€0.03" in text and "allowance" in text
    assert window.notifications and "€0.03" in window.notifications[0]
    assert gui_wallet.windows.prompts.current is None
    qtbot.waitUntil(lambda: window.balance_text() == "€4.92", timeout=5000)
    qtbot.waitUntil(lambda: "€0.03" in window.allowances_page.table.item(0, 3).text(), timeout=5000)
    # The activity lists it as paid under the allowance, and the filter finds it.
    page = window.activity_page
    page.filter.setCurrentIndex(page.FILTERS.index("auto"))
    assert page.table.rowCount() == 1 and "allowance" in page.table.item(0, 4).text()
    page.filter.setCurrentIndex(0)

    # Revoke: the next purchase asks again.
    assert window.allowances_page.select_vendor(vendor.vendor_id)
    qtbot.mouseClick(window.allowances_page.revoke_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.service.allowances() == [], timeout=5000)
    qtbot.waitUntil(lambda: window.allowances_page.table.rowCount() == 0, timeout=5000)
    third = gui_wallet.offer(vendor, "observatory-finds-comet")
    assert third["status"] == "pending"
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    assert len(gui_wallet.windows.tray.messages) == 1

"""The refund request from a receipt, the shop's answer, Activity's refund lines, and "Open item" after the token was
lost (re-delivery from the receipt); screenshots of the request and the answer."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QDesktopServices

from tests.support.gui import compose, save_screenshot
from tests.wallet_app.gui.test_wallet_actions import _finish, _pay, _ready, _UrlCatcher


def _receipt(qtbot, window, title_part):
    page = window.activity_page
    qtbot.waitUntil(lambda: any(e.access_token for e in page._entries if e.kind == "payment"), timeout=5000)
    entry = next(e for e in page._entries if e.kind == "payment" and title_part in (e.title or ""))
    return window.open_receipt(entry)


def test_ask_for_a_refund_from_the_receipt_and_see_it_in_activity(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    _pay(qtbot, gui_wallet, vendor, "harbour-bridge-reopens")
    window.show_page(window.PAGES.index("activity"))
    receipt = _receipt(qtbot, window, "Harbour")
    assert receipt.refund_button.isEnabled()
    qtbot.mouseClick(receipt.refund_button, Qt.MouseButton.LeftButton)
    dialog = receipt.refund_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.reason.setText("Bought it twice by mistake")
    save_screenshot(compose(window, dialog), "wallet-refund-request.png")
    _finish(qtbot, dialog)
    assert dialog.error.isHidden(), dialog.error.text()
    assert "next redemption" in dialog.success.text()  # granted; the shop has not redeemed yet
    qtbot.wait(50)
    save_screenshot(compose(window, dialog), "wallet-refund-answer.png")
    dialog.accept()
    receipt.accept()
    window.refresh()
    page = window.activity_page
    qtbot.waitUntil(lambda: any(e.kind == "refund_request" for e in page._entries), timeout=5000)
    page.filter.setCurrentIndex(page.FILTERS.index("return"))
    texts = [(page.table.item(r, 1).text(), page.table.item(r, 4).text()) for r in range(page.table.rowCount())]
    assert (
        "Refund asked: " + next(e.title for e in page._entries if e.kind == "refund_request"),
        "Granted · credit pending",
    ) in texts
    # the shop redeems; the wallet asks again and the line says Refunded
    vendor.vendor.redeemer.redeem()
    assert gui_wallet.service.refresh_refunds() == 1
    window.refresh()
    qtbot.waitUntil(lambda: any(e.status == "refund_credited" for e in page._entries), timeout=5000)
    page.filter.setCurrentIndex(page.FILTERS.index("all"))
    qtbot.wait(50)
    save_screenshot(compose(window), "wallet-refund-activity.png")
    # the receipt shows the refund and offers no second request
    again = _receipt(qtbot, window, "Harbour")
    assert not again.refund_button.isEnabled()
    labels = [w.text() for w in again.findChildren(QObject) if type(w).__name__ == "QLabel"]
    assert "Refunded to your broker account" in labels
    again.accept()


def test_open_item_without_a_token_gets_one_from_the_receipt(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    _pay(qtbot, gui_wallet, vendor, "night-market-returns")
    page = window.activity_page
    qtbot.waitUntil(lambda: any(e.access_token for e in page._entries if e.kind == "payment"), timeout=5000)
    entry = dataclasses.replace(next(e for e in page._entries if e.kind == "payment"), access_token=None)
    receipt = window.open_receipt(entry)
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("http", catcher, "open")
    try:
        qtbot.mouseClick(receipt.action_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(catcher.urls) == 1, timeout=10000)
    finally:
        QDesktopServices.unsetUrlHandler("http")
    assert "code=" in catcher.urls[0].toString() and "v1." not in catcher.urls[0].toString()
    receipt.accept()


def test_a_pass_receipt_shows_its_renewal_and_cancelling_stops_it(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    _pay(qtbot, gui_wallet, vendor, "day-pass")
    window.show_page(window.PAGES.index("activity"))
    receipt = _receipt(qtbot, window, "Day Pass")
    assert receipt.renew_button is not None and receipt.renewal_label.text() == "Does not renew"
    qtbot.mouseClick(receipt.renew_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: receipt.renew_button.text() == "Cancel renewal", timeout=5000)
    assert "for at most €0.50" in receipt.renewal_label.text()
    [sub] = gui_wallet.service.list_subscriptions()
    assert sub.status == "active" and sub.max_price.format() == "€0.50"
    qtbot.wait(50)
    save_screenshot(compose(window, receipt), "wallet-subscription.png")
    # a renewal notifies
    window.subscription_notice(sub, True)
    assert "renewed for €0.50" in window.notifications[-1]
    qtbot.mouseClick(receipt.renew_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: receipt.renew_button.text().startswith("Renew before"), timeout=5000)
    assert gui_wallet.service.list_subscriptions()[0].status == "cancelled"
    receipt.accept()

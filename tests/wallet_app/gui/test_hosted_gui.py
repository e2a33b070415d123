"""The hosted e-wallet on the desktop wallet's Brokers page, against a live broker: a line with the hosted balance
beside the account's, Move to hosted (paid from the account, no card) and Return hosted (the refund lands on the
account). Screenshot: docs/screenshots/wallet-brokers-hosted.png."""

from __future__ import annotations

import secrets

from PySide6.QtCore import Qt

from netpay.money import Money
from tests.support.broker import TEST_CARD
from tests.support.gui import compose, save_screenshot
from wallet_app.gui.account import HostedBuyDialog, HostedReturnDialog


def _finish(qtbot, dialog):
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=20000)
    assert dialog.error.isHidden(), dialog.error.text()


def test_hosted_line_move_and_return(qtbot, gui_wallet):
    gui_wallet.set_up_account()
    service = gui_wallet.service
    bid = gui_wallet.broker.broker_id
    service.top_up(bid, Money(2000, "EUR"), TEST_CARD, secrets.token_hex(8))
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    window.show_page(4)
    qtbot.waitUntil(lambda: bid in window.brokers_page.panels
                    and window.brokers_page.panels[bid].hosted_line is not None, timeout=10000)  # fmt: skip
    panel = window.brokers_page.panels[bid]
    assert "Hosted e-wallet (phones, other computers): €0.00" in panel.hosted_line.text()
    assert not panel.hosted_return_button.isEnabled()

    dialog = window.hosted_buy(bid)
    assert isinstance(dialog, HostedBuyDialog)
    dialog.amount.setText("30.00")  # more than the account holds: said before anything is sent
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    assert "The account holds €20.00" in dialog.error.text()
    dialog.amount.setText("5.00")
    _finish(qtbot, dialog)
    assert dialog.new_hosted == Money(500, "EUR")

    def shows(hosted: str, balance: str) -> bool:
        p = window.brokers_page.panels.get(bid)
        return p is not None and p.hosted_line is not None and hosted in p.hosted_line.text() \
            and p.balance.text() == balance  # fmt: skip

    qtbot.waitUntil(lambda: shows("€5.00", "€15.00"), timeout=10000)
    assert window.brokers_page.panels[bid].hosted_return_button.isEnabled()
    save_screenshot(compose(window), "wallet-brokers-hosted.png")

    back = window.hosted_return(bid)
    assert isinstance(back, HostedReturnDialog)
    _finish(qtbot, back)
    assert back.refund == Money(500, "EUR")
    qtbot.waitUntil(lambda: shows("€0.00", "€20.00"), timeout=10000)

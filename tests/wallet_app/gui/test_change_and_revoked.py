"""The prompt when no coins make the price exactly, and the Coins tab showing a chain its broker revoked."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.support.gui import compose, save_screenshot
from wallet_app.gui.prompt import PurchasePrompt


def test_prompt_without_exact_change_says_what_to_buy_and_never_enables_pay(qtbot, gui_wallet, vendor):
    gui_wallet.set_up_account()
    gui_wallet.buy(10, 2)  # EUR 0.20 in 2-cent coins; the article costs 5 cents
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    answer = gui_wallet.offer(vendor, "harbour-bridge-reopens")
    assert answer["status"] == "pending"
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    dialog = gui_wallet.windows.prompts.current
    assert dialog.after_label.text() == "no exact change"
    assert dialog.error.isVisible() and "buy coins of €0.01" in dialog.error.text()
    dialog.focus_gained()
    qtbot.wait(PurchasePrompt.PAY_DELAY_MS + 300)
    assert not dialog.pay_button.isEnabled()  # no click can pay what the coins cannot make
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    assert gui_wallet.poll(answer, vendor.url)["status"] == "pending"
    save_screenshot(compose(window, dialog), "wallet-prompt-no-change.png")
    dialog.reject()


def test_coins_tab_shows_a_revoked_chain(qtbot, gui_wallet):
    from broker_stub.revocation import revoke

    gui_wallet.set_up_account()
    kept = gui_wallet.buy(10, 1)
    gone = gui_wallet.buy(20, 1)
    closed = gui_wallet.buy(5, 1)
    service = gui_wallet.service
    core = gui_wallet.broker.broker.core
    with core.db.tx() as c:  # what the broker does when it finds a double spend on the chain
        revoke(c, "chain", gone.chain_id, "double_spend", core.now())
    service.brokers_desk.call(gui_wallet.broker.broker_id, lambda c, t: c.close_chain(t, closed.chain_id))
    service.refresh_revocations()  # as the background refresh does; asks the broker about both chains
    gui_wallet.windows.start()
    page = gui_wallet.windows.window.coins_page
    qtbot.waitUntil(lambda: page.table.rowCount() == 3, timeout=5000)
    status = {page.table.item(r, 0).key: page.table.item(r, 7).text() for r in range(3)}
    assert status == {
        gone.chain_id: "Revoked by the broker · not used",
        kept.chain_id: "Active",
        closed.chain_id: "Returned",  # closed behind the wallet's back: learnt from the broker, not "revoked"
    }
    assert [line.unspent.amount for line in service.balance()] == [10]
    from wallet_app.gui.main_window import _BalanceCard

    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: any(c.isVisible() for c in window.findChildren(_BalanceCard)), timeout=5000)
    save_screenshot(compose(window), "wallet-coins-revoked.png")

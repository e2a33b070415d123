"""Buy coins: a declined card, a good card, and an unreachable broker, against a live broker."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.support.gui import PASSWORD, compose, save_screenshot
from wallet_app.gui.dialogs import BuyCoinsDialog


def _dialog(qtbot, gui_wallet) -> BuyCoinsDialog:
    gui_wallet.set_up_account()
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: bool(window.snapshot["brokers"]), timeout=5000)
    dialog = window.buy_coins()
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    return dialog


def _buy(qtbot, dialog: BuyCoinsDialog) -> None:
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=20000)


def test_declined_card_changes_nothing_then_a_good_card_buys_the_chain(qtbot, gui_wallet, broker):
    dialog = _dialog(qtbot, gui_wallet)
    window = gui_wallet.windows.window
    # Amount and chain length follow each other; the total is coin value × coins.
    dialog.amount.setText("5")
    dialog.amount.textEdited.emit("5")
    assert dialog.length.value() == 500
    assert dialog.total.text().startswith("€5.00")
    dialog.length.setValue(800)
    assert dialog.amount.text() == "8.00"
    dialog.length.setValue(500)

    dialog.card_number.setText("4000 0000 0000 0002")
    _buy(qtbot, dialog)
    assert dialog.error.isVisibleTo(dialog)
    assert "declined" in dialog.error.text() and "Nothing was charged" in dialog.error.text()
    assert dialog.isVisible()
    assert gui_wallet.service.balance() == [] or all(b.unspent.amount == 0 for b in gui_wallet.service.balance())
    assert gui_wallet.service.list_chains() == []
    token = broker.session.post(
        f"{broker.url}/v1/sessions", json={"username": "alice", "password": PASSWORD}, timeout=5
    ).json()["token"]
    chains = broker.session.get(f"{broker.url}/v1/account/chains", headers={"Authorization": f"Bearer {token}"})
    assert chains.json()["chains"] == []  # the broker made no chain either

    dialog.card_number.setText("4242 4242 4242 4242")
    window.resize(1280, 800)
    dialog.adjustSize()  # the decline banner is gone
    save_screenshot(compose(window, dialog), "wallet-buy.png")
    _buy(qtbot, dialog)
    assert not dialog.isVisible() and dialog.result_chain is not None
    assert dialog.result_chain.length == 500
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: window.balance_text() == "€5.00", timeout=5000)


def test_unreachable_broker_is_a_clear_error_and_the_purchase_stays_journalled(qtbot, gui_wallet, broker):
    dialog = _dialog(qtbot, gui_wallet)
    window = gui_wallet.windows.window
    broker.server.stop()
    dialog.length.setValue(100)
    _buy(qtbot, dialog)
    assert "could not be reached" in dialog.error.text() and "never charged twice" in dialog.error.text()
    assert dialog.progress.isHidden() and dialog.action_button.isEnabled()
    # The core journals the purchase before sending (it may have reached the broker): one chain "being bought",
    # to be finished with the same idempotency key, never a second one.
    assert [c.status for c in gui_wallet.service.list_chains()] == ["buying"]
    dialog.reject()
    window.refresh()
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    assert window.coins_page.table.item(0, 7).text().startswith("Being bought")
    assert not window.coins_page.return_button.isEnabled()

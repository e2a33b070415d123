"""Return a chain, open a receipt and its item, back up and restore, change the passphrase, settings, geometry."""

from __future__ import annotations

from pathlib import Path

import requests
from PySide6.QtCore import QObject, QSettings, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from tests.support.gui import PASSWORD
from wallet_app.gui.main_window import MainWindow
from wallet_app.gui.prompt import PurchasePrompt


def _ready(qtbot, gui_wallet, coins=500):
    gui_wallet.set_up_account()
    gui_wallet.buy(coins, 1)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    return window


def _pay(qtbot, gui_wallet, vendor, item):
    answer = gui_wallet.offer(vendor, item)
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    dialog = gui_wallet.windows.prompts.current
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "paid", timeout=10000)
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is None, timeout=5000)
    return answer


def _finish(qtbot, dialog):
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=20000)


class _UrlCatcher(QObject):
    """Receives the URLs the wallet asks the desktop to open (Qt's own URL-handler hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_return_a_used_chain_and_see_the_refund(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet, coins=200)
    _pay(qtbot, gui_wallet, vendor, "harbour-bridge-reopens")  # 5 coins spent, 195 left
    qtbot.waitUntil(lambda: window.balance_text() == "€1.95", timeout=5000)
    chain = gui_wallet.service.list_chains()[0]
    assert window.coins_page.select_chain(chain.chain_id)
    assert window.coins_page.return_button.isEnabled()
    dialog = window.return_chain(window.coins_page.table.selected_data())
    _finish(qtbot, dialog)
    assert dialog.error.isHidden(), dialog.error.text()
    assert dialog.refund is not None and dialog.refund.format() == "€1.95"
    assert "€1.95" in dialog.success.text()
    assert [c.status for c in gui_wallet.service.list_chains()] == ["returned"]
    # The refund arrived on the account at the broker.
    broker = gui_wallet.broker
    token = broker.session.post(
        f"{broker.url}/v1/sessions", json={"username": "alice", "password": PASSWORD}, timeout=5
    ).json()["token"]
    account = broker.session.get(f"{broker.url}/v1/account", headers={"Authorization": f"Bearer {token}"}).json()
    assert account["balance"] == {"amount": 195, "currency": "EUR"}
    dialog.accept()
    qtbot.waitUntil(lambda: window.balance_text() == "—", timeout=5000)
    qtbot.waitUntil(lambda: window.coins_page.table.item(0, 7).text() == "Returned", timeout=5000)
    assert not window.coins_page.return_button.isEnabled()


def test_receipt_opens_the_item_with_its_access_token(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    _pay(qtbot, gui_wallet, vendor, "night-market-returns")
    page = window.activity_page
    # Wait for the settled row, not just two rows: a reload made while the spend was pending lists it already.
    qtbot.waitUntil(lambda: any(e.access_token for e in page._entries if e.kind == "payment"), timeout=5000)
    qtbot.waitUntil(lambda: page.table.rowCount() == 2, timeout=5000)
    page.search.setText("night market")
    assert page.table.rowCount() == 1
    page.search.setText("no such thing")
    assert page.table.rowCount() == 0
    page.search.clear()
    page.filter.setCurrentIndex(page.FILTERS.index("buy"))
    assert page.table.rowCount() == 1 and page.table.item(0, 1).text() == "Coins bought"
    page.filter.setCurrentIndex(page.FILTERS.index("payment"))
    assert page.table.rowCount() == 1
    page.table.selectRow(0)
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("http", catcher, "open")
    try:
        qtbot.mouseClick(page.open_button, Qt.MouseButton.LeftButton)
        receipts = [d for d in window.findChildren(QObject) if type(d).__name__ == "ReceiptDialog"]
        assert len(receipts) == 1
        receipt = receipts[0]
        assert receipt.isVisible()
        qtbot.mouseClick(receipt.action_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(catcher.urls) == 1, timeout=5000)  # the token is read from the vault
    finally:
        QDesktopServices.unsetUrlHandler("http")
    assert len(catcher.urls) == 1
    url = catcher.urls[0].toString()
    assert url.startswith(f"{vendor.url}/items/night-market-returns?code=") and "v1." not in url
    # The token opens the item: no paywall and Buy button, as the same page shows without it.
    assert 'class="paywall"' not in requests.get(url, timeout=10).text
    assert 'class="paywall"' in requests.get(f"{vendor.url}/items/night-market-returns", timeout=10).text


def test_a_receipt_opened_from_the_history_read_while_paying_still_opens_the_item(qtbot, gui_wallet, vendor):
    """The Activity page may show a purchase read between the journal and the receipt (the window refreshes on
    the journal's event): that row has no access token yet. Its receipt must still open the paid item."""
    window = _ready(qtbot, gui_wallet)
    seen: list = []

    def read_history() -> None:  # runs in the paying thread as the spend is journalled, before the receipt
        if not seen:
            seen.extend(e for e in gui_wallet.service.activity() if e.kind == "payment")

    gui_wallet.events.balance_changed.insert(0, read_history)
    _pay(qtbot, gui_wallet, vendor, "night-market-returns")
    [early] = seen
    assert early.status == "pending" and early.access_token is None  # what a quick user's window showed
    receipt = window.open_receipt(early)
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("http", catcher, "open")
    try:
        qtbot.mouseClick(receipt.action_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(catcher.urls) == 1, timeout=5000)
    finally:
        QDesktopServices.unsetUrlHandler("http")
    url = catcher.urls[0].toString()
    assert "code=" in url and "v1." not in url
    assert 'class="paywall"' not in requests.get(url, timeout=10).text


def test_backup_then_restore_with_wrong_then_right_passphrase(qtbot, gui_wallet, vendor, tmp_path: Path):
    window = _ready(qtbot, gui_wallet)
    backup = window.backup()
    backup.path.edit.setText(str(tmp_path / "wallet.npbackup"))
    backup.passphrase.setText("backup passphrase")
    backup.confirm.setText("something else")
    _finish(qtbot, backup)
    assert "differ" in backup.error.text() and not (tmp_path / "wallet.npbackup").exists()
    backup.confirm.setText("backup passphrase")
    _finish(qtbot, backup)
    assert (tmp_path / "wallet.npbackup").is_file() and not backup.isVisible()

    _pay(qtbot, gui_wallet, vendor, "metropolis-fc-cup-run")  # spent after the backup
    qtbot.waitUntil(lambda: window.balance_text() == "€4.97", timeout=5000)
    vault_before = gui_wallet.service.vault.path.read_bytes()

    restore = window.restore()
    restore.path.edit.setText(str(tmp_path / "wallet.npbackup"))
    restore.passphrase.setText("wrong passphrase")
    _finish(qtbot, restore)
    assert "Wrong backup passphrase" in restore.error.text()
    assert gui_wallet.service.vault.path.read_bytes() == vault_before
    assert restore.isVisible()

    restore.passphrase.setText("backup passphrase")
    _finish(qtbot, restore)
    assert restore.error.isHidden(), restore.error.text()
    assert not restore.isVisible()
    # The restored wallet is the backed-up one (one activity line: the coins bought), and its chain is marked
    # for a resync with the broker before it is spent again.
    qtbot.waitUntil(lambda: window.activity_page.table.rowCount() == 1, timeout=5000)
    assert any(c.needs_resync for c in gui_wallet.service.list_chains()) or gui_wallet.service.list_chains()


def test_change_passphrase_settings_and_geometry(qtbot, gui_wallet, tmp_path: Path, monkeypatch):
    window = _ready(qtbot, gui_wallet)
    # Keyboard shortcuts: Ctrl+2 shows Activity, Ctrl+B opens Buy coins.
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.activity_page
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    buy = [d for d in window.findChildren(QObject) if type(d).__name__ == "BuyCoinsDialog"]
    assert len(buy) == 1 and buy[0].isVisible()
    buy[0].reject()
    assert not gui_wallet.service.needs_passphrase()
    change = window.change_passphrase()
    change.new.setText("short")
    change.confirm.setText("short")
    _finish(qtbot, change)
    assert "at least 8" in change.error.text()
    change.new.setText("a new passphrase")
    change.confirm.setText("a new passphrase")
    _finish(qtbot, change)
    assert not change.isVisible()
    assert gui_wallet.service.needs_passphrase()

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window.settings()
    qtbot.waitUntil(lambda: window.settings_dialog is not None and window.settings_dialog.isVisible(), timeout=5000)
    settings = window.settings_dialog
    settings.auto_lock.setValue(7)
    settings.notify.setChecked(False)
    settings.start.setChecked(True)
    _finish(qtbot, settings)
    assert gui_wallet.service.get_setting("auto_lock_s") == 420
    assert gui_wallet.service.get_setting("notifications") is False
    assert (tmp_path / "config" / "autostart" / "netpay-wallet.desktop").is_file()

    # Geometry and page are remembered in QSettings under the wallet's data dir.
    window.resize(1100, 720)
    window.show_page(3)
    window.close()
    qsettings = QSettings(str(gui_wallet.data_dir / "gui.ini"), QSettings.Format.IniFormat)
    again = MainWindow(gui_wallet.backend, qsettings)
    try:
        assert (again.width(), again.height()) == (1100, 720)
        assert again.sidebar.currentRow() == 3
    finally:
        again.deleteLater()

    # Locked with the new passphrase.
    gui_wallet.service.lock()
    qtbot.waitUntil(
        lambda: gui_wallet.windows.unlock_dialog is not None and gui_wallet.windows.unlock_dialog.isVisible(),
        timeout=5000,
    )
    unlock = gui_wallet.windows.unlock_dialog
    unlock.passphrase.setText("a new passphrase")
    _finish(qtbot, unlock)
    assert gui_wallet.service.state == "unlocked"


def test_add_a_second_broker_by_url_after_comparing_its_fingerprint(qtbot, gui_wallet, broker_factory):
    window = _ready(qtbot, gui_wallet)
    second = broker_factory()
    dialog = window.add_broker()
    dialog.url.setText("http://127.0.0.1:9")
    _finish(qtbot, dialog)
    assert "could not be reached" in dialog.error.text()
    dialog.url.setText(second.url)
    dialog.url.textEdited.emit(second.url)
    _finish(qtbot, dialog)
    info = requests.get(f"{second.url}/v1/info", timeout=5).json()
    assert dialog.fingerprint.text() == info["fingerprint"] and dialog.broker_id.text() == second.broker_id
    _finish(qtbot, dialog)  # not ticked yet
    assert "compared the fingerprint" in dialog.error.text()
    assert {b.broker_id: b.trusted for b in gui_wallet.service.brokers()}[second.broker_id] is False
    dialog.trust.setChecked(True)
    _finish(qtbot, dialog)
    assert not dialog.isVisible()
    assert {b.broker_id: b.trusted for b in gui_wallet.service.brokers()}[second.broker_id] is True
    qtbot.waitUntil(lambda: window.brokers_page.cards.count() == 2, timeout=5000)

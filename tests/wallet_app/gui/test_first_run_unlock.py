"""First run (keyring and passphrase), and unlocking with a wrong then the right passphrase, against a live broker."""

from __future__ import annotations

import requests
from PySide6.QtCore import Qt

from tests.support.gui import PASSWORD


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _idle(qtbot, wizard):
    qtbot.waitUntil(lambda: not wizard.working, timeout=10000)


def test_first_run_with_keyring_trusts_the_broker_and_registers(qtbot, gui_wallet, broker):
    gui_wallet.windows.start()
    wizard = gui_wallet.windows.wizard
    assert wizard is not None and wizard.isVisible()
    assert wizard.use_keyring.isChecked()  # a usable (test) keyring is there

    _click(qtbot, wizard.next_button)  # step 1: keyring vault
    _idle(qtbot, wizard)
    assert wizard.stack.currentIndex() == 1
    assert gui_wallet.service.state == "unlocked"
    assert gui_wallet.keyring.entries, "the vault key went into the keyring"

    # An unreachable broker is a clear error and nothing is added.
    wizard.broker_url.setText("http://127.0.0.1:9")
    wizard.broker_url.textEdited.emit("http://127.0.0.1:9")
    _click(qtbot, wizard.fetch_button)
    _idle(qtbot, wizard)
    assert wizard.error.isVisibleTo(wizard) and "could not be reached" in wizard.error.text()
    assert wizard.stack.currentIndex() == 1
    assert gui_wallet.service.brokers() == []

    wizard.broker_url.setText(broker.url)
    wizard.broker_url.textEdited.emit(broker.url)
    _click(qtbot, wizard.fetch_button)
    _idle(qtbot, wizard)
    info = requests.get(f"{broker.url}/v1/info", timeout=5).json()
    assert wizard.broker_fp.text() == info["fingerprint"]
    assert broker.broker_id in wizard.broker_id.text()
    _click(qtbot, wizard.next_button)  # not ticked: refused
    assert "fingerprint" in wizard.error.text() and wizard.stack.currentIndex() == 1
    wizard.trust_check.setChecked(True)
    _click(qtbot, wizard.next_button)
    _idle(qtbot, wizard)
    assert wizard.stack.currentIndex() == 2
    assert [b.trusted for b in gui_wallet.service.brokers()] == [True]

    _click(qtbot, wizard.next_button)  # empty account: refused
    assert wizard.error.isVisibleTo(wizard)
    wizard.username.setText("bob")
    wizard.password.setText(PASSWORD)
    _click(qtbot, wizard.next_button)
    qtbot.waitUntil(
        lambda: gui_wallet.windows.window is not None and gui_wallet.windows.window.isVisible(), timeout=10000
    )
    # The account really exists at the broker.
    resp = requests.post(f"{broker.url}/v1/sessions", json={"username": "bob", "password": PASSWORD}, timeout=5)
    assert resp.status_code == 200
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: "bob@" in window.user_label.text(), timeout=5000)


def test_passphrase_first_run_then_unlock_wrong_then_right(qtbot, gui_wallet, broker):
    gui_wallet.windows.start()
    wizard = gui_wallet.windows.wizard
    wizard.use_passphrase.setChecked(True)
    wizard.passphrase.setText("a long passphrase")
    wizard.passphrase2.setText("a different one!")
    _click(qtbot, wizard.next_button)
    assert "differ" in wizard.error.text()
    assert gui_wallet.service.state == "new"
    wizard.passphrase2.setText("a long passphrase")
    _click(qtbot, wizard.next_button)
    _idle(qtbot, wizard)
    assert gui_wallet.service.needs_passphrase()
    _click(qtbot, wizard.fetch_button)  # the demo broker URL is prefilled
    _idle(qtbot, wizard)
    wizard.trust_check.setChecked(True)
    _click(qtbot, wizard.next_button)
    _idle(qtbot, wizard)
    wizard.login_radio.setChecked(True)  # log in to an account that does not exist: clear error
    wizard.username.setText("carol")
    wizard.password.setText(PASSWORD)
    _click(qtbot, wizard.next_button)
    _idle(qtbot, wizard)
    assert "Wrong user name or password" in wizard.error.text()
    wizard.register_radio.setChecked(True)
    _click(qtbot, wizard.next_button)
    qtbot.waitUntil(
        lambda: gui_wallet.windows.window is not None and gui_wallet.windows.window.isVisible(), timeout=10000
    )
    window = gui_wallet.windows.window

    # Lock from the window (Ctrl+L's action): the window hides and the unlock dialog asks for the passphrase.
    window.lock_action.trigger()
    qtbot.waitUntil(
        lambda: gui_wallet.windows.unlock_dialog is not None and gui_wallet.windows.unlock_dialog.isVisible(),
        timeout=5000,
    )
    assert gui_wallet.service.state == "locked"
    assert not window.isVisible()
    dialog = gui_wallet.windows.unlock_dialog
    vault_file = gui_wallet.service.vault.path
    vault_bytes = vault_file.read_bytes()

    dialog.passphrase.setText("not the passphrase")
    _click(qtbot, dialog.action_button)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=10000)
    assert "does not open this wallet" in dialog.error.text()
    assert gui_wallet.service.state == "locked"
    assert dialog.passphrase.text() == ""
    assert vault_file.read_bytes() == vault_bytes  # a wrong passphrase touches nothing

    dialog.passphrase.setText("a long passphrase")
    _click(qtbot, dialog.action_button)
    qtbot.waitUntil(window.isVisible, timeout=10000)
    assert gui_wallet.service.state == "unlocked"
    assert not dialog.isVisible()


def test_auto_lock_after_idle_then_unlock_from_the_keyring(qtbot, gui_wallet):
    gui_wallet.set_up_account()
    gui_wallet.service.set_setting("auto_lock_s", 1)
    gui_wallet.windows.start()
    qtbot.waitUntil(
        lambda: gui_wallet.windows.window is not None and gui_wallet.windows.window.isVisible(), timeout=5000
    )
    window = gui_wallet.windows.window
    qtbot.wait(1200)  # idle longer than the auto-lock time
    gui_wallet.windows._check_idle()  # what the idle timer calls every 15 s
    qtbot.waitUntil(
        lambda: gui_wallet.windows.unlock_dialog is not None and gui_wallet.windows.unlock_dialog.isVisible(),
        timeout=5000,
    )
    assert gui_wallet.service.state == "locked" and not window.isVisible()
    dialog = gui_wallet.windows.unlock_dialog
    assert not gui_wallet.service.needs_passphrase()  # the key is in the keyring: Unlock needs no typing
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.isVisible, timeout=5000)
    assert gui_wallet.service.state == "unlocked"

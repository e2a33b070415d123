"""First run: protect the vault (keyring or passphrase), add and trust a broker, register or log in.

Each step runs in a background worker when the user presses Next; the step's page shows the progress and any error,
and the wizard only moves on once the step succeeded, so nothing is left half done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.errors import describe
from wallet_app.gui.theme import icon
from wallet_app.gui.widgets import Card, banner, heading, muted

__all__ = ["DEMO_BROKER_URL", "FirstRunWizard"]

DEMO_BROKER_URL = "http://127.0.0.1:8100"


class _Step(QWidget):
    def __init__(self, title: str, intro: str) -> None:
        super().__init__()
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(12)
        self.box.addWidget(heading(title, "Title"))
        self.box.addWidget(muted(intro))


class FirstRunWizard(QDialog):
    """Three steps: Protect, Broker, Account. ``accepted`` when the wallet is ready to buy coins."""

    def __init__(self, backend: GuiBackend, demo_broker_url: str = DEMO_BROKER_URL, parent: QWidget | None = None):
        super().__init__(parent)
        self.backend = backend
        self.setWindowTitle(self.tr("Welcome to NetPay Wallet"))
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(560, 480)
        self.broker: Any = None
        self.working = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(26, 22, 26, 22)
        outer.setSpacing(14)
        self.step_label = muted("")
        outer.addWidget(self.step_label)
        self.stack = QStackedWidget()
        outer.addWidget(self.stack, 1)

        # Step 1: protection
        self.protect = _Step(
            self.tr("Protect your wallet"),
            self.tr("Your coins are kept in an encrypted vault on this computer. Choose how its key is kept."),
        )
        self.use_keyring = QRadioButton(self.tr("Keep the key in the system keyring (unlocks when you log in)"))
        self.use_passphrase = QRadioButton(self.tr("Protect with a passphrase I type when the wallet starts"))
        group = QButtonGroup(self)
        group.addButton(self.use_keyring)
        group.addButton(self.use_passphrase)
        keyring_ok = not backend.needs_passphrase()
        self.use_keyring.setEnabled(keyring_ok)
        (self.use_keyring if keyring_ok else self.use_passphrase).setChecked(True)
        self.protect.box.addWidget(self.use_keyring)
        if not keyring_ok:
            self.protect.box.addWidget(muted(self.tr("No usable system keyring was found, so a passphrase is needed.")))
        self.protect.box.addWidget(self.use_passphrase)
        form = QFormLayout()
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase2 = QLineEdit()
        self.passphrase2.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(self.tr("Passphrase"), self.passphrase)
        form.addRow(self.tr("Repeat"), self.passphrase2)
        self.protect.box.addLayout(form)
        self.use_passphrase.toggled.connect(self._protect_toggled)
        self._protect_toggled(self.use_passphrase.isChecked())
        self.protect.box.addStretch(1)

        # Step 2: broker
        self.broker_step = _Step(
            self.tr("Choose your broker"),
            self.tr("The broker sells you coins. Use the demo broker, or enter another broker's address."),
        )
        row = QHBoxLayout()
        self.broker_url = QLineEdit(demo_broker_url)
        self.fetch_button = QPushButton(self.tr("Look up"))
        self.fetch_button.setAutoDefault(False)
        row.addWidget(self.broker_url, 1)
        row.addWidget(self.fetch_button)
        self.broker_step.box.addLayout(row)
        self.broker_card = Card()
        self.broker_name = heading("")
        self.broker_id = muted("")
        self.broker_fp = QLabel()
        self.broker_fp.setObjectName("Fingerprint")
        self.broker_fp.setWordWrap(True)
        self.trust_check = QCheckBox(self.tr("I compared this fingerprint with the one my broker publishes"))
        self.broker_card.body.addWidget(self.broker_name)
        self.broker_card.body.addWidget(self.broker_id)
        self.broker_card.body.addWidget(muted(self.tr("Key fingerprint")))
        self.broker_card.body.addWidget(self.broker_fp)
        self.broker_card.body.addWidget(self.trust_check)
        self.broker_card.hide()
        self.broker_step.box.addWidget(self.broker_card)
        self.broker_step.box.addStretch(1)
        self.fetch_button.clicked.connect(self._fetch_broker)
        self.broker_url.textEdited.connect(lambda _t: self._broker_reset())

        # Step 3: account
        self.account_step = _Step(
            self.tr("Your account at the broker"),
            self.tr("Coins you buy are charged to this account, and refunds go back to it."),
        )
        self.register_radio = QRadioButton(self.tr("Create a new account"))
        self.login_radio = QRadioButton(self.tr("I already have an account"))
        self.register_radio.setChecked(True)
        g2 = QButtonGroup(self)
        g2.addButton(self.register_radio)
        g2.addButton(self.login_radio)
        self.account_step.box.addWidget(self.register_radio)
        self.account_step.box.addWidget(self.login_radio)
        aform = QFormLayout()
        self.username = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        aform.addRow(self.tr("User name"), self.username)
        aform.addRow(self.tr("Password"), self.password)
        self.account_step.box.addLayout(aform)
        self.account_step.box.addStretch(1)

        for step in (self.protect, self.broker_step, self.account_step):
            self.stack.addWidget(step)

        self.error = banner()
        outer.addWidget(self.error)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        outer.addWidget(self.progress)
        buttons = QHBoxLayout()
        self.back_button = QPushButton(self.tr("Back"))
        self.next_button = QPushButton(self.tr("Next"))
        self.next_button.setObjectName("Primary")
        for b in (self.back_button, self.next_button):
            b.setAutoDefault(False)
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        buttons.addWidget(self.next_button)
        outer.addLayout(buttons)
        self.back_button.clicked.connect(self._back)
        self.next_button.clicked.connect(self._next)
        if backend.state != "new":
            self.stack.setCurrentIndex(1)  # a vault exists (an earlier run stopped after step 1)
        self._update_buttons()

    # --- navigation ----------------------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        index = self.stack.currentIndex()
        self.step_label.setText(self.tr("Step %1 of 3").replace("%1", str(index + 1)))
        self.back_button.setEnabled(index == 2 and not self.working)
        self.next_button.setText(self.tr("Finish") if index == 2 else self.tr("Next"))
        self.next_button.setEnabled(not self.working)

    def _back(self) -> None:
        if self.stack.currentIndex() == 2:
            self.stack.setCurrentIndex(1)
        self.error.hide()
        self._update_buttons()

    def _protect_toggled(self, on: bool) -> None:
        self.passphrase.setEnabled(on)
        self.passphrase2.setEnabled(on)

    def _broker_reset(self) -> None:
        self.broker = None
        self.broker_card.hide()
        self.trust_check.setChecked(False)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], done: Callable[[Any], None]) -> None:
        self.error.hide()
        self.working = True
        self.progress.show()
        self._update_buttons()

        def finished(result: Any) -> None:
            self._stop()
            done(result)

        def failed(exc: BaseException) -> None:
            self._stop()
            self.error.setText(describe(exc))
            self.error.show()

        self.backend.bridge.run(fn, *args, on_done=finished, on_error=failed)

    def _stop(self) -> None:
        self.working = False
        self.progress.hide()
        self._update_buttons()

    def _fail(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def _fetch_broker(self) -> None:
        url = self.broker_url.text().strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            self._fail(self.tr("Enter the broker's address, starting with http:// or https://."))
            return
        self._run(self.backend.service.add_broker, (url,), self._broker_fetched)

    def _broker_fetched(self, info: Any) -> None:
        self.broker = info
        self.broker_name.setText(info.name)
        self.broker_id.setText(self.tr("Broker id: %1").replace("%1", info.broker_id))
        self.broker_fp.setText(info.fingerprint)
        self.broker_card.show()

    def _next(self) -> None:
        if self.working:
            return
        index = self.stack.currentIndex()
        if index == 0:
            passphrase = None
            if self.use_passphrase.isChecked():
                if len(self.passphrase.text()) < 8:
                    self._fail(self.tr("Use a passphrase of at least 8 characters."))
                    return
                if self.passphrase.text() != self.passphrase2.text():
                    self._fail(self.tr("The two passphrases differ."))
                    return
                passphrase = self.passphrase.text()
            self._run(self.backend.service.create, (passphrase,), lambda _r: self._go(1))
        elif index == 1:
            if self.broker is None:
                self._fetch_broker()
                return
            if not self.trust_check.isChecked():
                self._fail(self.tr("Compare the fingerprint, then tick the box to trust this broker."))
                return
            self._run(self.backend.service.trust_broker, (self.broker.broker_id,), lambda _r: self._go(2))
        else:
            user, password = self.username.text().strip(), self.password.text()
            if not user or not password:
                self._fail(self.tr("Enter a user name and a password."))
                return
            fn = self.backend.service.register if self.register_radio.isChecked() else self.backend.service.login
            self._run(fn, (self.broker.broker_id, user, password), lambda _r: self.accept())

    def _go(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self.error.hide()
        self._update_buttons()

    def reject(self) -> None:
        if not self.working:
            super().reject()

"""The wallet's dialogs: unlock, buy coins, return a chain, receipt, backup and restore, passphrase, settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from netpay.errors import PeerUnavailable
from netpay.money import Money
from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.base import WorkDialog
from wallet_app.gui.errors import describe
from wallet_app.gui.formatting import short_id, when
from wallet_app.gui.money_input import parse_money
from wallet_app.gui.views import SettingsView
from wallet_app.gui.widgets import Card, muted

__all__ = [
    "BackupDialog",
    "BuyCoinsDialog",
    "ChangePassphraseDialog",
    "ReceiptDialog",
    "RefundDialog",
    "RestoreDialog",
    "ReturnChainDialog",
    "SettingsDialog",
    "UnlockDialog",
]

TEST_CARD_OK = "4242 4242 4242 4242"


def _password(placeholder: str = "") -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    edit.setPlaceholderText(placeholder)
    return edit


class UnlockDialog(WorkDialog):
    """Asks for the passphrase and opens the vault; a wrong passphrase is said clearly and nothing changes."""

    def __init__(self, backend: GuiBackend, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Unlock your wallet"),
            self.tr("Your coins are encrypted. Enter your wallet passphrase to open them."),
            self.tr("Unlock"),
            parent,
        )
        self.backend = backend
        self.passphrase = _password(self.tr("Passphrase"))
        self.form.addRow(self.tr("Passphrase"), self.passphrase)
        self.action_button.setDefault(True)
        self.passphrase.returnPressed.connect(self._action)
        self.attempts = 0

    def inputs(self) -> list[QWidget]:
        return [self.passphrase]

    def validate(self) -> str | None:
        if self.backend.needs_passphrase() and not self.passphrase.text():
            return self.tr("Enter your passphrase.")
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        self.attempts += 1
        return self.backend.service.unlock, (self.passphrase.text() or None,), False

    def explain(self, exc: BaseException) -> str:
        self.passphrase.clear()
        self.passphrase.setFocus()
        if type(exc).__name__ == "WrongKey":
            return self.tr("That passphrase does not open this wallet. Nothing was changed; try again.")
        return describe(exc)


class BuyCoinsDialog(WorkDialog):
    """Buy a chain of coins from a broker: paid from the broker account first, by (test) card only for what the
    account lacks; the "Paid from" row says which. Progress while the chain is made and certified."""

    def __init__(
        self,
        backend: GuiBackend,
        brokers: list[Any],
        parent: QWidget | None = None,
        accounts: dict[str, Money] | None = None,
    ) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Buy coins"),
            self.tr(
                "Your wallet makes a new chain of coins on this computer; the broker certifies it and takes the "
                "price from your account balance, and from your card only what the balance lacks."
            ),
            self.tr("Buy"),
            parent,
        )
        self.accounts = dict(accounts or {})
        self.setObjectName("BuyCoinsDialog")
        self.setMinimumWidth(540)
        self.backend = backend
        self.brokers = [b for b in brokers if b.trusted]
        self.broker = QComboBox()
        for b in self.brokers:
            self.broker.addItem(b.name, b)
        self.coin_value = QComboBox()
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("5.00")
        self.length = QSpinBox()
        self.length.setSingleStep(100)
        self.length.setGroupSeparatorShown(True)
        self.total = QLabel()
        self.total.setObjectName("SectionTitle")
        self.form.addRow(self.tr("Broker"), self.broker)
        self.form.addRow(self.tr("Amount"), self.amount)
        self.form.addRow(self.tr("Coin value"), self.coin_value)
        self.form.addRow(self.tr("Number of coins"), self.length)
        self.form.addRow(self.tr("You pay"), self.total)
        self.split = QLabel()
        self.split.setWordWrap(True)
        self.form.addRow(self.tr("Paid from"), self.split)

        card = Card(margins=12)
        card.body.addWidget(muted(self.tr("Test card (no real money moves)")))
        row = QHBoxLayout()
        self.card_number = QLineEdit(TEST_CARD_OK)
        self.card_number.setMinimumWidth(200)
        self.card_exp = QLineEdit("12/30")
        self.card_exp.setMaximumWidth(80)
        self.card_cvc = QLineEdit("123")
        self.card_cvc.setMaximumWidth(60)
        row.addWidget(self.card_number, 1)
        row.addWidget(self.card_exp)
        row.addWidget(self.card_cvc)
        card.body.addLayout(row)
        self.form.addRow(self.tr("Card"), card)

        self.broker.currentIndexChanged.connect(lambda _i: self._broker_changed())
        self.coin_value.currentIndexChanged.connect(lambda _i: self._amount_changed())
        self.amount.textEdited.connect(lambda _t: self._amount_changed())
        self.length.valueChanged.connect(lambda _v: self._length_changed())
        self.result_chain: Any = None
        for edit in (self.card_number, self.card_exp, self.card_cvc):
            edit.textChanged.connect(lambda _t: self.error.hide())
        self._broker_changed()
        if not self.brokers:
            self.show_error(self.tr("Add and trust a broker first (Brokers page)."))
            self.action_button.setEnabled(False)

    def inputs(self) -> list[QWidget]:
        return [self.broker, self.coin_value, self.amount, self.length, self.card_number, self.card_exp, self.card_cvc]

    def _broker_changed(self) -> None:
        b = self.broker.currentData()
        self.coin_value.blockSignals(True)
        self.coin_value.clear()
        if b is not None:
            for v in b.coin_values:
                self.coin_value.addItem(v.format(), v)
            self.length.setRange(b.chain_length_min, b.chain_length_max)
            self.length.setValue(min(max(500, b.chain_length_min), b.chain_length_max))
        self.coin_value.blockSignals(False)
        self._length_changed()

    def _value(self) -> Money | None:
        data = self.coin_value.currentData()
        return data if isinstance(data, Money) else None

    def _amount_changed(self) -> None:
        value = self._value()
        if value is None:
            return
        amount = parse_money(self.amount.text(), value.currency)
        if amount is not None and value.amount > 0:
            self.length.blockSignals(True)
            self.length.setValue(max(1, amount.amount // value.amount))
            self.length.blockSignals(False)
        self._update_total(write_amount=amount is None)

    def _length_changed(self) -> None:
        self._update_total(write_amount=True)

    def _update_total(self, write_amount: bool) -> None:
        value = self._value()
        if value is None:
            self.total.setText("—")
            return
        total = value * self.length.value()
        self.total.setText(
            self.tr("%1  (%2 coins of %3)")
            .replace("%1", total.format())
            .replace("%2", f"{self.length.value():,}")
            .replace("%3", value.format())
        )
        if write_amount:
            self.amount.setText(total.format().lstrip("€$£¥"))
        account, card = self.paid_from()
        if card.amount == 0:
            text = self.tr("your account (balance %1); the card is not charged")
        elif account.amount == 0:
            text = self.tr("your card: %2 (your account balance is %1)")
        else:
            text = self.tr("your account: %3 of its %1, and your card: %2")
        balance = self._balance()
        self.split.setText(
            text.replace("%1", balance.format() if balance is not None else self.tr("not known yet"))
            .replace("%2", card.format())
            .replace("%3", account.format())
        )

    def _balance(self) -> Money | None:
        broker = self.broker.currentData()
        value = self._value()
        balance = self.accounts.get(broker.broker_id) if broker is not None else None
        if balance is None or value is None or balance.currency != value.currency:
            return None
        return balance

    def paid_from(self) -> tuple[Money, Money]:
        """(from the account, by card) for the current total, from the account balance as last fetched."""
        value = self._value()
        if value is None:
            return Money.zero("EUR"), Money.zero("EUR")
        total = value * self.length.value()
        balance = self._balance()
        from_account = min(total.amount, balance.amount) if balance is not None else 0
        return Money(from_account, total.currency), Money(total.amount - from_account, total.currency)

    def card(self) -> dict[str, Any]:
        month, _, year = self.card_exp.text().partition("/")
        return {
            "number": "".join(ch for ch in self.card_number.text() if ch.isdigit()),
            "exp_month": int(month) if month.strip().isdigit() else 0,
            "exp_year": 2000 + int(year)
            if year.strip().isdigit() and len(year.strip()) == 2
            else int(year or 0)
            if year.strip().isdigit()
            else 0,
            "cvc": self.card_cvc.text().strip(),
        }

    def validate(self) -> str | None:
        if self.broker.currentData() is None or self._value() is None:
            return self.tr("Choose a broker and a coin value.")
        if self.paid_from()[1].amount and not self._card_given():
            return self.tr("Enter the card number, its expiry as MM/YY and the CVC.")
        return None

    def _card_given(self) -> bool:
        card = self.card()
        return len(card["number"]) >= 12 and 1 <= card["exp_month"] <= 12 and bool(card["cvc"])

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        broker = self.broker.currentData()
        value = self._value()
        coins = self.length.value()
        # the broker takes the account balance first and charges the card only for what it lacks
        card = self.card() if self._card_given() else None
        service = self.backend.service
        stages = {
            "generating": self.tr("Making your chain of coins…"),
            "sending": self.tr("Waiting for the broker to certify it…"),
            "storing": self.tr("Saving the coins in your vault…"),
            "done": self.tr("Done"),
        }

        def buy(progress: Callable[[int, str], None]) -> Any:
            def report(p: Any) -> None:
                pct = {"generating": 0, "sending": 70, "storing": 90, "done": 100}.get(p.stage, 0)
                if p.stage == "generating" and p.total:
                    pct = 70 * p.done // p.total
                progress(pct, stages.get(p.stage, p.stage))

            return service.buy_coins(broker.broker_id, coins, value, card=card, progress=report)

        return buy, (), True

    def done_ok(self, result: Any) -> None:
        self.result_chain = result
        self.accept()

    def explain(self, exc: BaseException) -> str:
        if isinstance(exc, PeerUnavailable):
            return self.tr(
                "The broker could not be reached. The purchase is kept as “Being bought” and finished with the very "
                "same request when the broker answers again, so you are never charged twice."
            )
        return describe(exc)


class ReturnChainDialog(WorkDialog):
    """Hand a chain back to its broker and show the refund."""

    def __init__(self, backend: GuiBackend, chain: Any, parent: QWidget | None = None) -> None:
        value = chain.coin_value * chain.unspent
        super().__init__(
            backend.bridge,
            self.tr("Return coins"),
            self.tr(
                "The broker closes this chain and refunds its unused coins to your account. "
                "The chain cannot be used afterwards."
            ),
            self.tr("Return chain"),
            parent,
            danger=True,
        )
        self.backend = backend
        self.chain = chain
        self.refund: Money | None = None
        self.form.addRow(self.tr("Chain"), QLabel(short_id(chain.chain_id, 16)))
        self.form.addRow(self.tr("Coins left"), QLabel(f"{chain.unspent:,} × {chain.coin_value.format()}"))
        self.form.addRow(self.tr("Expected refund"), QLabel(value.format()))

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.return_chain, (self.chain.chain_id,), False

    def done_ok(self, result: Any) -> None:
        self.refund = result
        self.action_button.hide()
        self.cancel_button.setText(self.tr("Close"))
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)
        self.show_success(self.tr("Refund of %1 credited to your broker account.").replace("%1", result.format()))


class ReceiptDialog(WorkDialog):
    """A purchase's receipt, with a button that opens the item again with its access token.

    The token is read from the vault when the button is pressed: the history row this dialog was opened from may
    have been read while the payment was still pending (right after buying), before its receipt was stored.
    """

    def __init__(self, backend: GuiBackend, entry: Any, parent: QWidget | None = None) -> None:
        super().__init__(backend.bridge, self.tr("Receipt"), "", self.tr("Open item"), parent)
        self.backend = backend
        self.entry = entry
        self.form.addRow(self.tr("Item"), QLabel(entry.title or "—"))
        self.form.addRow(self.tr("Vendor"), QLabel(entry.vendor_name or entry.vendor_id or "—"))
        self.form.addRow(self.tr("Amount"), QLabel(entry.amount.format()))
        self.form.addRow(self.tr("When"), QLabel(when(entry.at)))
        self.form.addRow(
            self.tr("Paid"),
            QLabel(
                self.tr("under an allowance")
                if entry.via == "allowance"
                else self.tr("by a program (netpay-wallet pay or the client library)")
                if entry.via == "api"
                else self.tr("after you confirmed")
            ),
        )
        ref = QLabel(entry.ref)
        ref.setObjectName("Fingerprint")
        self.form.addRow(self.tr("Reference"), ref)
        asked = backend.service.refund_request(entry.ref) if entry.status == "settled" else None
        if asked is not None:
            self.form.addRow(self.tr("Refund"), QLabel(refund_text(self, asked)))
        self.renew_button: QPushButton | None = None
        self.subscription: Any = None
        if entry.kind == "payment" and entry.status == "settled":
            self._add_subscription_rows()
        self.refund_button = QPushButton(self.tr("Ask for a refund…"))
        self.refund_button.setEnabled(entry.status == "settled" and asked is None)
        if asked is not None:
            self.refund_button.setToolTip(self.tr("A refund of this purchase was already asked for: see above."))
        elif entry.status != "settled":
            self.refund_button.setToolTip(self.tr("Only a paid purchase can be refunded."))
        self.refund_button.setAutoDefault(False)
        self.refund_button.clicked.connect(self._ask_refund)
        self.outer.itemAt(self.outer.count() - 1).layout().insertWidget(0, self.refund_button)
        self.cancel_button.setText(self.tr("Close"))
        self.action_button.setEnabled(bool(entry.item_url))
        if not entry.item_url:
            self.action_button.setToolTip(self.tr("This entry has no item to open."))
        self.opened: QUrl | None = None
        self.refund_dialog: RefundDialog | None = None

    def _add_subscription_rows(self) -> None:
        until, sub = self.backend.service.subscription_of(self.entry.ref)
        if until is None:
            return
        self.subscription = sub
        self.form.addRow(self.tr("Valid until"), QLabel(when(until)))
        if sub is not None and sub.status == "active":
            text = self.tr("Renews before %1, for at most %2").replace("%1", when(sub.renews_at)).replace(
                "%2", sub.max_price.format())  # fmt: skip
            self.renew_button = QPushButton(self.tr("Cancel renewal"))
        else:
            text = self.tr("Does not renew") if sub is None else (sub.note or self.tr("Renewal cancelled"))
            self.renew_button = QPushButton(self.tr("Renew before it ends (up to %1)").replace(
                "%1", self.entry.amount.format()))  # fmt: skip
        self.renewal_label = QLabel(text)
        self.renewal_label.setWordWrap(True)
        self.form.addRow(self.tr("Renewal"), self.renewal_label)
        self.renew_button.setAutoDefault(False)
        self.renew_button.clicked.connect(self._toggle_renewal)
        self.form.addRow("", self.renew_button)

    def _toggle_renewal(self) -> None:
        service = self.backend.service
        if self.subscription is not None and self.subscription.status == "active":
            fn, args = service.cancel_subscription, (self.subscription.subscription_id,)
        else:  # the cap is what this pass cost: a dearer renewal stops and asks
            fn, args = service.subscribe, (self.entry.ref, self.entry.amount)
        self.bridge.run(fn, *args, on_done=self._renewal_changed, on_error=self._failed)

    def _renewal_changed(self, sub: Any) -> None:
        self.subscription = sub
        assert self.renew_button is not None
        if sub.status == "active":
            text = self.tr("Renews before %1, for at most %2").replace("%1", when(sub.renews_at))
            self.renewal_label.setText(text.replace("%2", sub.max_price.format()))
            self.renew_button.setText(self.tr("Cancel renewal"))
        else:
            self.renewal_label.setText(self.tr("Renewal cancelled; the pass runs to its end"))
            self.renew_button.setText(self.tr("Renew before it ends (up to %1)").replace(
                "%1", self.entry.amount.format()))  # fmt: skip

    def _ask_refund(self) -> None:
        self.refund_dialog = RefundDialog(self.backend, self.entry, self)
        self.refund_dialog.open()

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.item_link, (self.entry.ref,), False

    def done_ok(self, result: Any) -> None:
        if result is None:
            self.show_error(
                self.tr(
                    "This payment is not confirmed by the vendor yet, so the item cannot be opened with it. "
                    "Try again in a moment; the Activity page shows when it is paid."
                )
            )
            return
        self.opened = QUrl(result)  # the item's URL with a one-time code: the access token stays in the wallet
        QDesktopServices.openUrl(self.opened)


def refund_text(widget: QWidget, asked: dict[str, Any]) -> str:
    """One line for a refund request's state, with the shop's answer."""
    answer = asked.get("answer") or ""
    if asked["status"] == "pending":
        return widget.tr("Asked; the shop has not decided yet")
    if asked["status"] == "refused":
        return widget.tr("Refused by the shop: %1").replace("%1", answer or "—")
    if asked.get("credit") == "credited":
        return widget.tr("Refunded to your broker account")
    return widget.tr("Granted; reaches your broker account after the shop's next redemption")


class RefundDialog(WorkDialog):
    """Ask the shop to refund a purchase, with a reason; shows the shop's answer."""

    def __init__(self, backend: GuiBackend, entry: Any, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Ask for a refund"),
            self.tr(
                "The shop decides: at once if you never opened the item, otherwise its publisher. A refund goes to "
                "your broker account and the item no longer opens. The shop does not learn who you are."
            ),
            self.tr("Ask for refund"),
            parent,
        )
        self.backend = backend
        self.entry = entry
        self.form.addRow(self.tr("Item"), QLabel(entry.title or "—"))
        self.form.addRow(self.tr("Vendor"), QLabel(entry.vendor_name or entry.vendor_id or "—"))
        self.form.addRow(self.tr("Amount"), QLabel(entry.amount.format()))
        self.reason = QLineEdit()
        self.reason.setMaxLength(500)
        self.reason.setPlaceholderText(self.tr("Why? (the shop sees this)"))
        self.form.addRow(self.tr("Reason"), self.reason)
        self.answer: dict[str, Any] | None = None

    def inputs(self) -> list[QWidget]:
        return [self.reason]

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.ask_refund, (self.entry.ref, self.reason.text().strip()), False

    def done_ok(self, result: Any) -> None:
        self.answer = result
        asked = self.backend.service.refund_request(self.entry.ref) or result
        text = refund_text(self, asked)
        if result["status"] == "refused":
            self.show_error(text)
        else:
            self.show_success(text)
        self.reason.setEnabled(False)
        self.action_button.hide()
        self.adjustSize()  # the banner needs room: never squeeze the form rows
        self.cancel_button.setText(self.tr("Close"))
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)


class _PathRow(QWidget):
    def __init__(self, save: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.browse = QPushButton(self.tr("Browse…"))
        self.browse.setAutoDefault(False)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.browse)
        self.save = save
        self.browse.clicked.connect(self._browse)

    def _browse(self) -> None:
        if self.save:
            path, _ = QFileDialog.getSaveFileName(
                self, self.tr("Save backup"), self.edit.text(), "NetPay backup (*.npbackup)"
            )
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, self.tr("Open backup"), self.edit.text(), "NetPay backup (*.npbackup)"
            )
        if path:
            self.edit.setText(path)


class BackupDialog(WorkDialog):
    """Write the whole wallet to one file encrypted with a passphrase the user chooses."""

    def __init__(self, backend: GuiBackend, default_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Back up wallet"),
            self.tr(
                "Everything in the wallet goes into one encrypted file. Keep the passphrase: without it the "
                "backup cannot be opened."
            ),
            self.tr("Back up"),
            parent,
        )
        self.backend = backend
        self.path = _PathRow(save=True)
        self.path.edit.setText(str(default_path))
        self.passphrase = _password()
        self.confirm = _password()
        self.form.addRow(self.tr("File"), self.path)
        self.form.addRow(self.tr("Backup passphrase"), self.passphrase)
        self.form.addRow(self.tr("Repeat passphrase"), self.confirm)

    def inputs(self) -> list[QWidget]:
        return [self.path, self.passphrase, self.confirm]

    def validate(self) -> str | None:
        if not self.path.edit.text().strip():
            return self.tr("Choose where to save the backup.")
        if len(self.passphrase.text()) < 8:
            return self.tr("Use a passphrase of at least 8 characters.")
        if self.passphrase.text() != self.confirm.text():
            return self.tr("The two passphrases differ.")
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.backup, (Path(self.path.edit.text().strip()), self.passphrase.text()), False

    def done_ok(self, result: Any) -> None:
        self.accept()


class RestoreDialog(WorkDialog):
    """Replace the wallet by a backup; a wrong passphrase or damaged file changes nothing."""

    def __init__(self, backend: GuiBackend, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Restore from backup"),
            self.tr(
                "This replaces the coins and history in this wallet by those in the backup. Chains are checked "
                "with their broker before they are spent again."
            ),
            self.tr("Restore"),
            parent,
            danger=True,
        )
        self.backend = backend
        self.path = _PathRow(save=False)
        self.passphrase = _password()
        self.form.addRow(self.tr("Backup file"), self.path)
        self.form.addRow(self.tr("Backup passphrase"), self.passphrase)

    def inputs(self) -> list[QWidget]:
        return [self.path, self.passphrase]

    def validate(self) -> str | None:
        if not Path(self.path.edit.text().strip()).is_file():
            return self.tr("Choose an existing backup file.")
        if not self.passphrase.text():
            return self.tr("Enter the backup's passphrase.")
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.restore, (Path(self.path.edit.text().strip()), self.passphrase.text()), False

    def explain(self, exc: BaseException) -> str:
        name = type(exc).__name__
        if name == "WrongBackupPassphrase":
            return self.tr("Wrong backup passphrase. Your current wallet was not changed.")
        if name == "BackupDamaged":
            return self.tr("This file is damaged or is not a NetPay backup. Your current wallet was not changed.")
        return describe(exc)


class ChangePassphraseDialog(WorkDialog):
    """Re-key the vault with a new passphrase, or move the key into the OS keyring."""

    def __init__(self, backend: GuiBackend, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Change passphrase"),
            self.tr("The vault is re-encrypted with the new key; your coins stay as they are."),
            self.tr("Change"),
            parent,
        )
        self.backend = backend
        self.old = _password()
        self.new = _password()
        self.confirm = _password()
        self.use_keyring = QCheckBox(self.tr("Keep the key in the system keyring instead (no passphrase)"))
        if backend.needs_passphrase():
            self.form.addRow(self.tr("Current passphrase"), self.old)
        else:
            self.old.hide()
        self.form.addRow(self.tr("New passphrase"), self.new)
        self.form.addRow(self.tr("Repeat"), self.confirm)
        self.form.addRow("", self.use_keyring)
        self.use_keyring.toggled.connect(self._keyring_toggled)

    def _keyring_toggled(self, on: bool) -> None:
        self.new.setEnabled(not on)
        self.confirm.setEnabled(not on)

    def inputs(self) -> list[QWidget]:
        return [self.old, self.new, self.confirm, self.use_keyring]

    def validate(self) -> str | None:
        if self.use_keyring.isChecked():
            return None
        if len(self.new.text()) < 8:
            return self.tr("Use a passphrase of at least 8 characters.")
        if self.new.text() != self.confirm.text():
            return self.tr("The two passphrases differ.")
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        new = None if self.use_keyring.isChecked() else self.new.text()
        return self.backend.service.change_passphrase, (new, self.old.text() or None), False

    def explain(self, exc: BaseException) -> str:
        if type(exc).__name__ == "WrongKey":
            return self.tr("The current passphrase is wrong. Nothing was changed.")
        return describe(exc)


class SettingsDialog(WorkDialog):
    """Callback port, auto-lock time, start with the system, notifications."""

    def __init__(self, backend: GuiBackend, settings: SettingsView, parent: QWidget | None = None) -> None:
        super().__init__(backend.bridge, self.tr("Settings"), "", self.tr("Save"), parent)
        self.backend = backend
        self.port = QSpinBox()
        self.port.setRange(1024, 65535)
        self.port.setValue(settings.callback_port)
        self.auto_lock = QSpinBox()
        self.auto_lock.setRange(1, 24 * 60)
        self.auto_lock.setSuffix(self.tr(" min"))
        self.auto_lock.setValue(settings.auto_lock_minutes)
        self.start = QCheckBox(self.tr("Start NetPay Wallet when I log in"))
        self.start.setChecked(settings.start_with_system)
        self.notify = QCheckBox(self.tr("Notify me of each payment made under an allowance"))
        self.notify.setChecked(settings.notifications)
        self.form.addRow(self.tr("Browser callback port"), self.port)
        self.form.addRow(self.tr("Lock after idle"), self.auto_lock)
        self.form.addRow("", self.start)
        self.form.addRow("", self.notify)
        self.form.addRow("", muted(self.tr("A new callback port takes effect after the wallet restarts.")))
        self.saved: SettingsView | None = None

    def inputs(self) -> list[QWidget]:
        return [self.port, self.auto_lock, self.start, self.notify]

    def value(self) -> SettingsView:
        return SettingsView(self.port.value(), self.auto_lock.value(), self.start.isChecked(), self.notify.isChecked())

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        value = self.value()

        def save() -> SettingsView:
            self.backend.save_settings(value)
            from wallet_app.gui.autostart import set_autostart

            set_autostart(value.start_with_system)
            return value

        return save, (), False

    def done_ok(self, result: Any) -> None:
        self.saved = result
        self.accept()


def now() -> int:
    return int(time.time())

"""The broker account in the window: its panel on the Brokers page (balance, statement, Top up / Cash out /
Recover) and the dialogs for topping up, cashing out and recovering the chains of a lost wallet.

Every call goes through :class:`~wallet_app.gui.backend.GuiBackend`'s service in a worker (``WorkDialog``); the
panel only shows what the last snapshot holds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from netpay.money import Money
from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.base import WorkDialog
from wallet_app.gui.formatting import short_id, when
from wallet_app.gui.money_input import parse_money
from wallet_app.gui.tables import Cell, DataTable
from wallet_app.gui.widgets import Card, heading, muted

__all__ = ["AccountPanel", "CardRow", "CashOutDialog", "RecoverDialog", "TopUpDialog"]

TEST_CARD_OK = "4242 4242 4242 4242"
STATEMENT_ROWS = 5


def _plural(n: int, one: str, many: str) -> str:
    return (one if n == 1 else many).replace("%n", f"{n:,}")


def _fit(table: DataTable, rows: int) -> None:
    """Show every row without a scroll bar (the tables here are short by construction)."""
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    header = table.horizontalHeader().sizeHint().height()
    table.setFixedHeight(table.verticalHeader().defaultSectionSize() * max(1, rows) + header + 2 * table.frameWidth())


def _signed(amount: Money) -> str:
    return ("+" if amount.amount > 0 else "−") + Money(abs(amount.amount), amount.currency).format()


class CardRow(QWidget):
    """Test card number, expiry (MM/YY) and CVC on one row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.number = QLineEdit(TEST_CARD_OK)
        self.number.setMinimumWidth(200)
        self.exp = QLineEdit("12/30")
        self.exp.setMaximumWidth(80)
        self.cvc = QLineEdit("123")
        self.cvc.setMaximumWidth(60)
        row.addWidget(self.number, 1)
        row.addWidget(self.exp)
        row.addWidget(self.cvc)

    def edits(self) -> list[QWidget]:
        return [self.number, self.exp, self.cvc]

    def card(self) -> dict[str, Any]:
        month, _, year = self.exp.text().partition("/")
        y = year.strip()
        return {
            "number": "".join(ch for ch in self.number.text() if ch.isdigit()),
            "exp_month": int(month) if month.strip().isdigit() else 0,
            "exp_year": (2000 + int(y) if len(y) == 2 else int(y)) if y.isdigit() else 0,
            "cvc": self.cvc.text().strip(),
        }

    def problem(self) -> str | None:
        card = self.card()
        if len(card["number"]) < 12 or not 1 <= card["exp_month"] <= 12 or not card["cvc"]:
            return self.tr("Enter the card number, its expiry as MM/YY and the CVC.")
        return None


class AccountPanel(QWidget):
    """One broker account inside its card on the Brokers page."""

    top_up_requested = Signal(str)  # broker id
    cash_out_requested = Signal(str)
    recover_requested = Signal(str)
    hosted_buy_requested = Signal(str)
    hosted_return_requested = Signal(str)

    def __init__(self, account: Any, recoverable: list[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.account = account
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 6, 0, 0)
        box.setSpacing(8)
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(muted(self.tr("Account balance"), wrap=False))
        self.balance = heading(account.balance.format(), "BalanceAmount")
        titles.addWidget(self.balance)
        top.addLayout(titles)
        top.addStretch(1)
        self.top_up_button = QPushButton(self.tr("Top up…"))
        self.cash_out_button = QPushButton(self.tr("Cash out…"))
        self.cash_out_button.setEnabled(account.balance.amount > 0)
        top.addWidget(self.top_up_button)
        top.addWidget(self.cash_out_button)
        box.addLayout(top)
        bid = account.broker_id
        self.top_up_button.clicked.connect(lambda: self.top_up_requested.emit(bid))
        self.cash_out_button.clicked.connect(lambda: self.cash_out_requested.emit(bid))

        self.hosted_line: QLabel | None = None
        hosted = getattr(account, "hosted", None)
        if hosted is not None:  # the broker keeps a hosted e-wallet for phones and other computers
            row = QHBoxLayout()
            text = self.tr("Hosted e-wallet (phones, other computers): %1").replace("%1", hosted.balance.format())
            if hosted.granted.amount:
                text += "  ·  " + self.tr("granted to shops: %1").replace("%1", hosted.granted.format())
            self.hosted_line = QLabel(text)
            self.hosted_line.setWordWrap(True)
            self.hosted_buy_button = QPushButton(self.tr("Move to hosted…"))
            self.hosted_buy_button.setEnabled(account.balance.amount > 0)
            self.hosted_return_button = QPushButton(self.tr("Return hosted…"))
            self.hosted_return_button.setEnabled(bool(hosted.active_chains))
            self.hosted_buy_button.clicked.connect(lambda: self.hosted_buy_requested.emit(bid))
            self.hosted_return_button.clicked.connect(lambda: self.hosted_return_requested.emit(bid))
            row.addWidget(self.hosted_line, 1)
            row.addWidget(self.hosted_buy_button)
            row.addWidget(self.hosted_return_button)
            box.addLayout(row)

        waiting = [c for c in recoverable if c.status == "recovering"]
        lost = [c for c in recoverable if c.status != "recovering"]
        self.recover_line: QLabel | None = None
        self.recover_button: QPushButton | None = None
        if lost:
            row = QHBoxLayout()
            most = sum((c.at_most for c in lost), Money.zero(lost[0].coin_value.currency))
            self.recover_line = QLabel(
                _plural(
                    len(lost),
                    self.tr("%n chain bought on this account is not in this wallet (up to %1 unspent)."),
                    self.tr("%n chains bought on this account are not in this wallet (up to %1 unspent)."),
                ).replace("%1", most.format())
            )
            self.recover_line.setObjectName("Warning")
            self.recover_line.setWordWrap(True)
            self.recover_button = QPushButton(self.tr("Recover…"))
            self.recover_button.setObjectName("Primary")
            self.recover_button.clicked.connect(lambda: self.recover_requested.emit(bid))
            row.addWidget(self.recover_line, 1)
            row.addWidget(self.recover_button)
            box.addLayout(row)
        if waiting:
            box.addWidget(
                muted(
                    _plural(
                        len(waiting),
                        self.tr("%n chain is being returned: the broker waits for the vendor holding it."),
                        self.tr("%n chains are being returned: the broker waits for the vendors holding them."),
                    )
                )
            )
        self.table = DataTable([self.tr("When"), self.tr("What"), self.tr("Amount")], stretch=1, right=(2,))
        entries = list(reversed(account.entries))[:STATEMENT_ROWS]
        self.table.fill(
            [
                [
                    Cell(when(e.at), e.at, data=e),
                    Cell(e.description or e.kind),
                    Cell(_signed(e.amount), e.amount.amount, right=True),
                ]
                for e in entries
            ]
        )
        _fit(self.table, len(entries))
        if entries:
            box.addWidget(self.table)
        else:
            self.table.hide()
            box.addWidget(muted(self.tr("No movements yet: top up, or buy coins with your card.")))
        shown = len(entries)
        caption = self.tr("Updated %1").replace("%1", when(account.fetched_at))
        if len(account.entries) > shown:
            caption += "  ·  " + self.tr("latest %1 of %2 movements").replace("%1", str(shown)).replace(
                "%2", str(len(account.entries))
            )
        box.addWidget(muted(caption, wrap=False))


class _AccountDialog(WorkDialog):
    """Amount + card, sent with an idempotency key that stays the same while the request does (a retry after a
    network failure is then paid once) and changes when the user changes the request."""

    def __init__(self, backend: GuiBackend, account: Any, title: str, intro: str, action: str, parent: Any) -> None:
        super().__init__(backend.bridge, title, intro, action, parent)
        self.backend = backend
        self.account = account
        self.amount = QLineEdit()
        self.card_row = CardRow()
        self.form.addRow(self.tr("Account"), QLabel(f"{account.username} @ {account.broker_name}"))
        self.form.addRow(self.tr("Balance"), QLabel(account.balance.format()))
        self.form.addRow(self.tr("Amount"), self.amount)
        card = Card(margins=12)
        card.body.addWidget(muted(self.tr("Test card (no real money moves)")))
        card.body.addWidget(self.card_row)
        card.setMinimumHeight(card.sizeHint().height())  # never squashed when an error banner appears
        self.form.addRow(self.tr("Card"), card)
        self._sent: tuple[str, str] | None = None  # (request, idempotency key)
        self.new_balance: Money | None = None

    def inputs(self) -> list[QWidget]:
        return [self.amount, *self.card_row.edits()]

    def show_error(self, text: str) -> None:
        super().show_error(text)
        self.adjustSize()  # grow to fit the banner (wrapped labels hide it from the layout's minimum)

    def value(self) -> Money | None:
        return parse_money(self.amount.text(), self.account.balance.currency)

    def key(self) -> str:
        request = repr((self.value(), self.card_row.card()))
        if self._sent is None or self._sent[0] != request:
            self._sent = (request, secrets.token_hex(16))
        return self._sent[1]

    def validate(self) -> str | None:
        value = self.value()
        if value is None or value.amount <= 0:
            return self.tr("Enter an amount, e.g. 5.00.")
        return self.card_row.problem()

    def done_ok(self, result: Any) -> None:
        self.new_balance = result
        self.accept()


class TopUpDialog(_AccountDialog):
    """Add money to the broker account with the test card."""

    def __init__(self, backend: GuiBackend, account: Any, parent: QWidget | None = None) -> None:
        super().__init__(
            backend,
            account,
            self.tr("Top up account"),
            self.tr(
                "The broker charges your card and adds the amount to your account; buying coins takes it from there."
            ),
            self.tr("Top up"),
            parent,
        )
        self.amount.setText("10.00")

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        args = (self.account.broker_id, self.value(), self.card_row.card(), self.key())
        return self.backend.service.top_up, args, False


class CashOutDialog(_AccountDialog):
    """Pay the account balance back to the card it came from."""

    def __init__(self, backend: GuiBackend, account: Any, parent: QWidget | None = None) -> None:
        super().__init__(
            backend,
            account,
            self.tr("Cash out"),
            self.tr(
                "The broker pays this amount from your account back to your card. It pays only to a card that "
                "paid into the account."
            ),
            self.tr("Cash out"),
            parent,
        )
        self.amount.setText(account.balance.format().lstrip("€$£¥"))

    def validate(self) -> str | None:
        value = self.value()
        if value is not None and value.amount > self.account.balance.amount:
            return self.tr("The account holds %1; you cannot cash out more.").replace(
                "%1", self.account.balance.format()
            )
        return super().validate()

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        args = (self.account.broker_id, self.value(), self.card_row.card(), self.key())
        return self.backend.service.cash_out, args, False


class HostedBuyDialog(WorkDialog):
    """Move money from the broker account into the hosted e-wallet (no card: the account pays)."""

    def __init__(self, backend: GuiBackend, account: Any, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Move to the hosted e-wallet"),
            self.tr(
                "The broker keeps these coins for you, to pay from a phone or any computer with nothing installed. "
                "Shops get only the budget you allow each of them."
            ),
            self.tr("Move"),
            parent,
        )
        self.backend = backend
        self.account = account
        self.amount = QLineEdit("5.00")
        self.form.addRow(self.tr("Account"), QLabel(f"{account.username} @ {account.broker_name}"))
        self.form.addRow(self.tr("Balance"), QLabel(account.balance.format()))
        self.form.addRow(self.tr("Amount"), self.amount)
        self._sent: tuple[str, str] | None = None
        self.new_hosted: Money | None = None

    def inputs(self) -> list[QWidget]:
        return [self.amount]

    def value(self) -> Money | None:
        return parse_money(self.amount.text(), self.account.balance.currency)

    def validate(self) -> str | None:
        value = self.value()
        if value is None or value.amount <= 0:
            return self.tr("Enter an amount, e.g. 5.00.")
        if value.amount > self.account.balance.amount:
            return self.tr("The account holds %1; top it up first.").replace("%1", self.account.balance.format())
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        request = repr(self.value())
        if self._sent is None or self._sent[0] != request:
            self._sent = (request, secrets.token_hex(16))
        return self.backend.service.buy_hosted, (self.account.broker_id, self.value(), self._sent[1]), False

    def done_ok(self, result: Any) -> None:
        self.new_hosted = result
        self.accept()


class HostedReturnDialog(WorkDialog):
    """Return the hosted e-wallet to the broker account (shops' grants end; their unspent coins come back too)."""

    def __init__(self, backend: GuiBackend, account: Any, parent: QWidget | None = None) -> None:
        hosted = account.hosted
        super().__init__(
            backend.bridge,
            self.tr("Return the hosted e-wallet"),
            self.tr(
                "The broker ends every shop's grant and refunds the coins nobody spent to your account. Shops you "
                "allowed will ask again next time."
            ),
            self.tr("Return"),
            parent,
        )
        self.backend = backend
        self.account = account
        self.form.addRow(self.tr("Hosted e-wallet"), QLabel(hosted.balance.format()))
        self.form.addRow(self.tr("Granted to shops"), QLabel(hosted.granted.format()))
        self.refund: Money | None = None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        return self.backend.service.return_hosted, (self.account.broker_id,), False

    def done_ok(self, result: Any) -> None:
        self.refund = result
        self.accept()


class RecoverDialog(WorkDialog):
    """Lists the chains the account bought that this wallet lacks and returns them all to the broker."""

    def __init__(
        self, backend: GuiBackend, broker_id: str, broker_name: str, chains: list[Any], vendors: dict[str, str],
        parent: QWidget | None = None,
    ) -> None:  # fmt: skip
        lost = [c for c in chains if c.broker_id == broker_id and c.status != "recovering"]
        super().__init__(
            backend.bridge,
            self.tr("Recover coins"),
            self.tr(
                "Your account at %1 bought these chains, but this wallet does not hold them (a lost wallet, or a "
                "backup older than them). Recovering returns them to the broker: it asks the vendor holding each "
                "for its last index and refunds the unspent coins to your account. A chain another wallet of yours "
                "still uses stops working there."
            ).replace("%1", broker_name),
            _plural(len(lost), self.tr("Recover %n chain"), self.tr("Recover %n chains")),
            parent,
        )
        self.setObjectName("RecoverDialog")
        self.setMinimumWidth(720)
        self.backend = backend
        self.broker_id = broker_id
        self.chains = lost
        self.outcomes: list[Any] | None = None
        self.table = DataTable(
            [
                self.tr("Chain"),
                self.tr("Coin value"),
                self.tr("Coins"),
                self.tr("Last reported"),
                self.tr("Held by"),
                self.tr("Up to"),
            ],
            stretch=4,
            right=(1, 2, 3, 5),
        )
        self.table.fill(
            [
                [
                    Cell(short_id(c.chain_id, 10), c.chain_id, data=c),
                    Cell(c.coin_value.format(), c.coin_value.amount, right=True),
                    Cell(f"{c.length:,}", c.length, right=True),
                    Cell(f"{c.reported_index:,}", c.reported_index, right=True),
                    Cell(
                        c.custodian_name or vendors.get(c.custodian, c.custodian)
                        if c.custodian
                        else self.tr("no vendor yet")
                    ),
                    Cell(c.at_most.format(), c.at_most.amount, right=True),
                ]
                for c in lost
            ]
        )
        _fit(self.table, len(lost))
        self.form.addRow(self.table)
        total = sum((c.at_most for c in lost), Money.zero(lost[0].coin_value.currency)) if lost else None
        if total is not None:
            self.form.addRow(
                self.tr("Refund"),
                QLabel(self.tr("up to %1, less what vendors were paid since their last report").replace(
                    "%1", total.format())),
            )  # fmt: skip
        if not lost:
            self.action_button.setEnabled(False)
            self.show_success(self.tr("Nothing to recover: this wallet holds every chain of the account."))

    def show_error(self, text: str) -> None:
        super().show_error(text)
        self.adjustSize()

    def show_success(self, text: str) -> None:
        super().show_success(text)
        self.adjustSize()

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        ids = [c.chain_id for c in self.chains]
        return self.backend.service.recover_chains, (self.broker_id, ids), False

    def done_ok(self, result: Any) -> None:
        self.outcomes = list(result)
        closed = [o for o in self.outcomes if o.status == "closed"]
        waiting = [o for o in self.outcomes if o.status != "closed"]
        text = ""
        if closed:
            refund = sum((o.refund for o in closed), Money.zero(closed[0].refund.currency))
            text = _plural(
                len(closed),
                self.tr("%n chain returned: %1 refunded to your account."),
                self.tr("%n chains returned: %1 refunded to your account."),
            ).replace("%1", refund.format())
        if waiting:
            text += (" " if text else "") + _plural(
                len(waiting),
                self.tr(
                    "%n chain waits for its vendor, which did not answer: the broker refunds it at the last "
                    "reported index once its waiting period is over."
                ),
                self.tr(
                    "%n chains wait for their vendors, which did not answer: the broker refunds them at the last "
                    "reported index once its waiting period is over."
                ),
            )
        self.show_success(text)
        self.action_button.hide()
        self.cancel_button.setText(self.tr("Close"))
        self.cancel_button.clicked.disconnect()
        self.cancel_button.clicked.connect(self.accept)

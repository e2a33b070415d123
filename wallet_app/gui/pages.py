"""The main window's pages: Coins, Activity, Allowances and Brokers (Spending is in :mod:`spending`)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wallet_app.gui.account import AccountPanel
from wallet_app.gui.formatting import short_id, when, when_day
from wallet_app.gui.tables import Cell, DataTable
from wallet_app.gui.widgets import Card, empty_state, heading, muted

__all__ = ["ActivityPage", "AllowancesPage", "BrokersPage", "CoinsPage", "Page"]

REVOKED_COLOR = "#dc2626"  # a revoked chain's row: readable in the light and the dark theme


class Page(QWidget):
    """A page with a title, a subtitle and comfortable margins."""

    def __init__(self, title: str, subtitle: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Page")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(28, 22, 28, 22)
        self.layout_.setSpacing(14)
        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(heading(title, "Title"))
        sub = muted(subtitle)
        sub.setObjectName("Subtitle")
        titles.addWidget(sub)
        top.addLayout(titles, 1)
        self.tools = QHBoxLayout()
        self.tools.setSpacing(8)
        top.addLayout(self.tools)
        self.layout_.addLayout(top)

    def update_data(self, snapshot: dict[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _status_text(page: QWidget, status: str) -> str:
    names = {
        "active": page.tr("Active"),
        "buying": page.tr("Being bought"),
        "exhausted": page.tr("Used up"),
        "returned": page.tr("Returned"),
        "settled": page.tr("Paid"),
        "pending": page.tr("Pending"),
        "released": page.tr("Not charged"),
        "burned": page.tr("Coins burned"),
        "done": page.tr("Done"),
        "closing": page.tr("Refund pending"),
    }
    return names.get(status, status.replace("_", " ").capitalize())


class CoinsPage(Page):
    """Every chain: coin value, coins left, which vendor holds it, expiry and status."""

    buy_requested = Signal()
    return_requested = Signal(object)  # ChainSummary

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            self.tr("Coins"), self.tr("Each chain of coins you bought, and how much of it is left."), parent
        )
        self.return_button = QPushButton(self.tr("Return chain…"))
        self.return_button.setObjectName("Danger")
        self.return_button.setEnabled(False)
        self.tools.addWidget(self.return_button)
        self.table = DataTable(
            [
                self.tr("Chain"),
                self.tr("Broker"),
                self.tr("Coin value"),
                self.tr("Coins left"),
                self.tr("Value left"),
                self.tr("Held by"),
                self.tr("Expires"),
                self.tr("Status"),
            ],
            stretch=5,
            right=(2, 3, 4),
        )
        self.table.setSortingEnabled(True)
        self.layout_.addWidget(self.table, 1)
        self.empty = empty_state(self.tr("No coins yet. Use “Buy coins” (Ctrl+B) to get a chain from your broker."))
        self.layout_.addWidget(self.empty, 1)
        self.empty.hide()  # until the first data says the table is empty
        self.return_button.clicked.connect(self._return_clicked)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _i: None)
        self._names: dict[str, str] = {}

    def update_data(self, snapshot: dict[str, Any]) -> None:
        self._names = {b.broker_id: b.name for b in snapshot["brokers"]}
        vendors = {e.vendor_id: e.vendor_name for e in snapshot["activity"] if e.vendor_id and e.vendor_name}
        vendors.update({a.vendor_id: a.vendor_name for a in snapshot["allowances"] if a.vendor_name})
        rows = []
        for chain in snapshot["chains"]:
            left = chain.coin_value * chain.unspent
            rows.append(
                [
                    Cell(short_id(chain.chain_id, 10), chain.chain_id, data=chain),
                    Cell(self._names.get(chain.broker_id, chain.broker_id)),
                    Cell(chain.coin_value.format(), chain.coin_value.amount, right=True),
                    Cell(f"{chain.unspent:,} / {chain.length:,}", chain.unspent, right=True),
                    Cell(left.format(), left.amount, right=True),
                    Cell(self._holder(vendors, chain)),
                    Cell(when_day(chain.expires_at), chain.expires_at),
                    Cell(self._status(chain)),
                ]
            )
            if chain.revoked and chain.status == "active":  # never used again: the whole row says so
                for cell in rows[-1]:
                    cell.setForeground(QColor(REVOKED_COLOR))
        self.table.fill(rows)
        self.table.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        self._selection_changed()

    def _holder(self, vendors: dict[str, str], chain: Any) -> str:
        if not chain.holder:
            return "—"
        name = vendors.get(chain.holder, chain.holder)
        return self.tr("%1 (revoked)").replace("%1", name) if getattr(chain, "holder_revoked", False) else name

    def _status(self, chain: Any) -> str:
        if getattr(chain, "revoked", False) and chain.status == "active":  # (a returned chain is revoked too)
            return self.tr("Revoked by the broker · not used")
        return _status_text(self, chain.status) + (self.tr(" · resync") if chain.needs_resync else "")

    def select_chain(self, chain_id: str) -> bool:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and isinstance(item, Cell) and item.key == chain_id:
                self.table.selectRow(row)
                return True
        return False

    def _selection_changed(self) -> None:
        chain = self.table.selected_data()
        if chain is None:
            why = self.tr("Select a chain in the table to return its unused coins to the broker.")
        elif chain.status != "active":
            why = self.tr("This chain is “%1”: only an active chain can be returned.").replace(
                "%1", _status_text(self, chain.status)
            )
        elif getattr(chain, "revoked", False):
            why = self.tr("The broker revoked this chain: its coins are not used, and it cannot be returned.")
        elif chain.unspent <= 0:
            why = self.tr("This chain has no coins left to return.")
        else:
            why = ""
        self.return_button.setEnabled(not why)
        self.return_button.setToolTip(why or self.tr("Hand this chain back to its broker for a refund of its coins."))

    def _return_clicked(self) -> None:
        chain = self.table.selected_data()
        if chain is not None:
            self.return_requested.emit(chain)


class ActivityPage(Page):
    """Every purchase, coin purchase and refund; searchable and filterable; a row opens its receipt."""

    open_requested = Signal(object)  # ActivityEntry

    FILTERS = ("all", "payment", "auto", "buy", "return")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self.tr("Activity"), self.tr("Every purchase, coin purchase and refund."), parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText(self.tr("Search vendor, item or reference"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(260)
        self.filter = QComboBox()
        labels = [
            self.tr("Everything"),
            self.tr("Purchases"),
            self.tr("Paid under an allowance"),
            self.tr("Coins bought"),
            self.tr("Refunds"),
        ]
        for key, label in zip(self.FILTERS, labels, strict=True):
            self.filter.addItem(label, key)
        self.open_button = QPushButton(self.tr("Open receipt"))
        self.open_button.setEnabled(False)
        self.open_button.setToolTip(self.tr("Select an entry in the table to open its receipt."))
        self.tools.addWidget(self.search)
        self.tools.addWidget(self.filter)
        self.tools.addWidget(self.open_button)
        self.table = DataTable(
            [self.tr("When"), self.tr("What"), self.tr("Vendor"), self.tr("Amount"), self.tr("Status")]
        )
        self.table.setSortingEnabled(False)
        self.table.setToolTip(self.tr("Double-click a purchase to open its receipt"))
        self.layout_.addWidget(self.table, 1)
        self.summary = muted("")
        self.layout_.addWidget(self.summary)
        self._entries: list[Any] = []
        self._brokers: dict[str, str] = {}
        self.search.textChanged.connect(self._refilter)
        self.filter.currentIndexChanged.connect(self._refilter)
        self.table.itemDoubleClicked.connect(lambda _i: self._open())
        self.table.itemSelectionChanged.connect(
            lambda: self.open_button.setEnabled(getattr(self.table.selected_data(), "kind", None) == "payment")
        )
        self.open_button.clicked.connect(self._open)

    def _what(self, entry: Any) -> str:
        if entry.kind == "payment":
            return entry.title or self.tr("Purchase")
        if entry.kind == "buy":
            return self.tr("Coins bought")
        if entry.kind == "return":
            return entry.title or self.tr("Coins returned (refund)")
        if entry.kind == "cashout":
            return entry.title or self.tr("Paid back to your card")
        if entry.kind == "restore":
            return self.tr("Wallet restored from backup")
        if entry.kind == "refund_request":
            return self.tr("Refund asked: %1").replace("%1", entry.title or self.tr("purchase"))
        if entry.kind == "metered":  # the title says the item, the units paid and the unit
            return self.tr("Pay as you use: %1").replace("%1", entry.title or self.tr("metered session"))
        return str(entry.kind).capitalize()

    def _status(self, entry: Any) -> str:
        if entry.kind == "refund_request":
            return {
                "pending": self.tr("Awaiting the shop"),
                "refused": self.tr("Refused"),
                "refund_pending": self.tr("Granted · credit pending"),
                "refund_credited": self.tr("Refunded"),
            }.get(entry.status, entry.status)
        if entry.kind == "metered":
            text = self.tr("Running") if entry.status == "open" else self.tr("Ended")
            return text + (self.tr(" · allowance") if entry.via == "allowance" else "")
        text = _status_text(self, entry.status)
        if entry.via == "allowance":
            text += self.tr(" · allowance")
        elif entry.via == "api":
            text += self.tr(" · by a program")
        return text

    def update_data(self, snapshot: dict[str, Any]) -> None:
        self._entries = list(snapshot["activity"])
        self._brokers = {b.broker_id: b.name for b in snapshot.get("brokers", [])}
        self._refilter()

    def matches(self, entry: Any) -> bool:
        kind = self.filter.currentData()
        if kind == "auto" and entry.via != "allowance":
            return False
        refunds = kind == "return" and entry.kind in ("return", "cashout", "refund_request")  # refunds, cash-outs
        metered = kind == "payment" and entry.kind == "metered"  # a metered session is a purchase too
        if refunds or metered:
            pass
        elif kind not in ("all", "auto") and entry.kind != kind:
            return False
        needle = self.search.text().strip().lower()
        if needle:
            hay = " ".join(str(x or "") for x in (entry.title, entry.vendor_name, entry.vendor_id, entry.ref)).lower()
            return needle in hay
        return True

    def _refilter(self) -> None:
        rows = []
        shown = [e for e in self._entries if self.matches(e)]
        for entry in shown:
            sign = "−" if entry.kind in ("payment", "cashout", "metered") else "+" if entry.amount.amount else ""
            broker = getattr(entry, "broker_id", None)
            rows.append(
                [
                    Cell(when(entry.at), entry.at, data=entry),
                    Cell(self._what(entry)),
                    Cell(entry.vendor_name or entry.vendor_id or self._brokers.get(broker or "", broker or "—")),
                    Cell(sign + entry.amount.format(), entry.amount.amount, right=True),
                    Cell(self._status(entry)),
                ]
            )
        self.table.fill(rows)
        self.summary.setText(
            self.tr("%1 of %2 entries").replace("%1", str(len(shown))).replace("%2", str(len(self._entries)))
        )

    def _open(self) -> None:
        entry = self.table.selected_data()
        if entry is not None and entry.kind == "payment":  # only purchases have a receipt
            self.open_requested.emit(entry)


class AllowancesPage(Page):
    """Per vendor: limit per purchase, daily budget, what was spent today; revoke."""

    revoke_requested = Signal(object)  # AllowanceInfo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            self.tr("Allowances"),
            self.tr("Vendors you let charge you without asking, within these limits. Revoke any time."),
            parent,
        )
        self.revoke_button = QPushButton(self.tr("Revoke"))
        self.revoke_button.setObjectName("Danger")
        self.revoke_button.setEnabled(False)
        self.revoke_button.setToolTip(self.tr("Select an allowance in the table to revoke it."))
        self.tools.addWidget(self.revoke_button)
        self.table = DataTable(
            [
                self.tr("Vendor"),
                self.tr("Per purchase"),
                self.tr("Daily budget"),
                self.tr("Spent today"),
                self.tr("Since"),
            ]
        )
        self.layout_.addWidget(self.table, 1)
        self.empty = empty_state(
            self.tr("No allowances. Tick “From now on, pay … without asking” in a purchase prompt to add one.")
        )
        self.layout_.addWidget(self.empty, 1)
        self.empty.hide()  # until the first data says the table is empty
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.revoke_button.clicked.connect(self._revoke)

    def update_data(self, snapshot: dict[str, Any]) -> None:
        rows = []
        for a in snapshot["allowances"]:
            pct = 0 if a.daily_budget.amount == 0 else a.spent_today.amount * 100 // a.daily_budget.amount
            rows.append(
                [
                    Cell(a.vendor_name or a.vendor_id, data=a),
                    Cell(a.max_price.format(), a.max_price.amount, right=True),
                    Cell(a.daily_budget.format(), a.daily_budget.amount, right=True),
                    Cell(f"{a.spent_today.format()}  ({pct}%)", a.spent_today.amount, right=True),
                    Cell(when_day(a.created_at), a.created_at),
                ]
            )
        self.table.fill(rows)
        self.table.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        self._selection_changed()

    def _selection_changed(self) -> None:
        allowance = self.table.selected_data()
        self.revoke_button.setEnabled(allowance is not None)
        self.revoke_button.setToolTip(
            self.tr("Select an allowance in the table to revoke it.")
            if allowance is None
            else self.tr("Stop paying %1 without asking.").replace("%1", allowance.vendor_name or allowance.vendor_id)
        )

    def select_vendor(self, vendor_id: str) -> bool:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole).vendor_id == vendor_id:
                self.table.selectRow(row)
                return True
        return False

    def _revoke(self) -> None:
        allowance = self.table.selected_data()
        if allowance is not None:
            self.revoke_requested.emit(allowance)


class BrokersPage(Page):
    """The brokers this wallet trusts, with their key fingerprints and your account at each."""

    add_requested = Signal()
    top_up_requested = Signal(str)  # broker id
    cash_out_requested = Signal(str)
    hosted_buy_requested = Signal(str)
    hosted_return_requested = Signal(str)
    recover_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            self.tr("Brokers"), self.tr("Brokers sell you coins and certify vendors. Compare fingerprints."), parent
        )
        self.panels: dict[str, Any] = {}
        self.add_button = QPushButton(self.tr("Add broker…"))
        self.tools.addWidget(self.add_button)
        self.add_button.clicked.connect(self.add_requested)
        self.cards = QVBoxLayout()
        self.cards.setSpacing(12)
        self.layout_.addLayout(self.cards)
        self.layout_.addStretch(1)

    def update_data(self, snapshot: dict[str, Any]) -> None:
        while self.cards.count():
            item = self.cards.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.panels = {}
        accounts = {a.broker_id: a for a in snapshot.get("accounts", [])}
        balances: dict[str, list[str]] = {}
        for line in snapshot["balance"]:
            balances.setdefault(line.broker_id, []).append(line.unspent.format())
        for broker in snapshot["brokers"]:
            card = Card()
            top = QHBoxLayout()
            top.addWidget(heading(broker.name))
            badge = QLabel(self.tr("Trusted") if broker.trusted else self.tr("Not trusted"))
            badge.setObjectName("Badge")
            top.addWidget(badge)
            top.addStretch(1)
            top.addWidget(muted(", ".join(balances.get(broker.broker_id, [])) or "", wrap=False))
            card.body.addLayout(top)
            card.body.addWidget(
                muted(self.tr("Broker id: %1  ·  %2").replace("%1", broker.broker_id).replace("%2", broker.url))
            )
            fp = QLabel(broker.fingerprint)
            fp.setObjectName("Fingerprint")
            card.body.addWidget(fp)
            account = broker.username or self.tr("not logged in")
            card.body.addWidget(muted(self.tr("Account: %1").replace("%1", account)))
            view = accounts.get(broker.broker_id)
            if view is not None:
                rec = [c for c in snapshot.get("recoverable", []) if c.broker_id == broker.broker_id]
                panel = AccountPanel(view, rec)
                panel.top_up_requested.connect(self.top_up_requested)
                panel.cash_out_requested.connect(self.cash_out_requested)
                panel.hosted_buy_requested.connect(self.hosted_buy_requested)
                panel.hosted_return_requested.connect(self.hosted_return_requested)
                panel.recover_requested.connect(self.recover_requested)
                self.panels[broker.broker_id] = panel
                card.body.addWidget(panel)
            self.cards.addWidget(card)


def now() -> int:
    return int(time.time())

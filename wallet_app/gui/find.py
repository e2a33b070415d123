"""The "Find" page: search the broker's index (CIS) for files other wallets sell, see the price and the seller's
certified name, buy through the wallet's usual purchase prompt (or at once within an allowance; see
:mod:`wallet_app.peer.checkout`), download with progress; the file is checked against its SHA-256 and kept with its
receipt. The work runs in :class:`wallet_app.peer.buyer.PeerBuyer`."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QWidget

from netpay.money import Money
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.errors import describe
from wallet_app.gui.pages import Page
from wallet_app.gui.sharing import human_size
from wallet_app.gui.tables import Cell, DataTable
from wallet_app.gui.widgets import banner, muted

__all__ = ["FindPage"]

PER_PAGE = 20


class FindPage(Page):
    """Search, page through results, buy and download one."""

    progress_changed = Signal(int, int)

    def __init__(self, buyer: Any, broker_url: str, bridge: Bridge, pay: Any, parent: QWidget | None = None,
                 ) -> None:  # fmt: skip
        super().__init__(
            self.tr("Find"),
            self.tr(
                "Files other NetPay wallets sell, found through your broker. You pay the seller directly; "
                "the download is checked against the file's fingerprint."
            ),
            parent,
        )
        self.buyer = buyer
        self.broker_url = broker_url
        self.bridge = bridge
        self.page = 1
        self.pages = 1
        self.pay = pay  # wallet_app.peer.checkout.PromptedPayment: the usual prompt, allowances and limits
        search_row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText(self.tr("Search titles and descriptions"))
        self.search_button = QPushButton(self.tr("Search"))
        self.search_button.setObjectName("Primary")
        search_row.addWidget(self.query, 1)
        search_row.addWidget(self.search_button)
        self.layout_.addLayout(search_row)
        self.error = banner()
        self.success = banner("Success")
        self.layout_.addWidget(self.error)
        self.layout_.addWidget(self.success)
        self.table = DataTable([self.tr("File"), self.tr("Seller"), self.tr("Size"), self.tr("Price"),
                                self.tr("SHA-256")])  # fmt: skip
        self.layout_.addWidget(self.table, 1)
        self.empty = muted(self.tr("Search to see what other wallets share."))
        self.layout_.addWidget(self.empty)
        bottom = QHBoxLayout()
        self.prev_button = QPushButton(self.tr("Previous"))
        self.next_button = QPushButton(self.tr("Next"))
        self.page_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        self.buy_button = QPushButton(self.tr("Buy and download"))
        self.buy_button.setObjectName("Primary")
        self.buy_button.setEnabled(False)
        for w in (self.prev_button, self.page_label, self.next_button):
            bottom.addWidget(w)
        bottom.addStretch(1)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.buy_button)
        self.layout_.addLayout(bottom)
        self._update_paging(0)

        self.search_button.clicked.connect(lambda: self.search(1))
        self.query.returnPressed.connect(lambda: self.search(1))
        self.prev_button.clicked.connect(lambda: self.search(self.page - 1))
        self.next_button.clicked.connect(lambda: self.search(self.page + 1))
        self.buy_button.clicked.connect(self._buy)
        self.table.itemSelectionChanged.connect(
            lambda: self.buy_button.setEnabled(self.table.selected_data() is not None)
        )
        self.progress_changed.connect(self._show_progress, Qt.ConnectionType.QueuedConnection)

    def update_data(self, snapshot: dict[str, Any]) -> None:
        pass  # the results change only when the user searches

    # -- searching ----------------------------------------------------------------------------------------------
    def search(self, page: int) -> None:
        self.error.hide()
        self.success.hide()
        self.bridge.run(self.buyer.search, self.broker_url, self.query.text().strip(), max(1, page), PER_PAGE,
                        on_done=self.show_results, on_error=self._failed)  # fmt: skip

    def show_results(self, found: dict[str, Any]) -> None:
        self.page, self.pages = found["page"], found["pages"]
        rows = [
            [Cell(r["title"], r["title"].lower(), data=r), Cell(r["seller"]),
             Cell(human_size(r["size"]), r["size"], right=True),
             Cell(Money.from_json(r["price"], "price").format(), r["price"]["amount"], right=True),
             Cell(r["sha256"][:16] + "…", r["sha256"])]
            for r in found["results"]
        ]  # fmt: skip
        self.table.fill(rows)
        self.empty.setText(self.tr("Nothing found. Try other words.") if not rows else "")
        self.empty.setVisible(not rows)
        self._update_paging(found["total"])

    def _update_paging(self, total: int) -> None:
        results = self.tr("1 result") if total == 1 else self.tr("%d results") % total
        self.page_label.setText(self.tr("Page %d of %d · %s") % (self.page, self.pages, results))
        self.prev_button.setEnabled(self.page > 1)
        self.next_button.setEnabled(self.page < self.pages)

    # -- buying -------------------------------------------------------------------------------------------------
    def _buy(self) -> None:
        listing = self.table.selected_data()
        if listing is None:
            return
        self.error.hide()
        self.success.hide()
        self.buy_button.setEnabled(False)
        self.bridge.run(self.buyer.quote, listing, on_done=lambda checked: self._confirm(listing, checked),
                        on_error=self._failed)  # fmt: skip

    def _confirm(self, listing: dict[str, Any], checked: Any) -> None:
        if not checked.affordable:
            self._failed_text(checked.change_advice or self.tr("You do not have enough coins at this broker."))
            return
        self.progress.setValue(0)
        self.bridge.run(self.buyer.buy, listing, checked, "prompt", self.progress_changed.emit, self.pay,
                        on_done=self._bought, on_error=self._failed)  # fmt: skip

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setVisible(True)
        self.progress.setValue(100 * done // total if total else 100)

    def _bought(self, download: Any) -> None:
        self.progress.setVisible(False)
        self.buy_button.setEnabled(True)
        self.success.setText(
            self.tr("Saved %s (fingerprint checked); its receipt is in Activity.") % download.path.name
        )
        self.success.show()

    def _failed(self, exc: BaseException) -> None:
        from wallet_app.peer.checkout import declined

        self._failed_text(self.tr("You declined; nothing was paid.") if declined(exc) else describe(exc))

    def _failed_text(self, text: str) -> None:
        self.progress.setVisible(False)
        self.buy_button.setEnabled(self.table.selected_data() is not None)
        self.error.setText(text)
        self.error.show()

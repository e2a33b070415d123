"""The "Sharing" page: pick files or a folder to sell, set the price, switch sharing on and off, see downloads,
earnings, redemptions and the account's supply standing. The work runs in :class:`wallet_app.peer.server.PeerServer`
(on the bridge's thread pool); this page only shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from netpay.money import Money
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.errors import describe
from wallet_app.gui.pages import Page
from wallet_app.gui.tables import Cell, DataTable
from wallet_app.gui.widgets import Card, banner, heading, muted

__all__ = ["SharingPage", "human_size"]


def human_size(n: int) -> str:
    """``1.4 MB``-style sizes (``1 byte``, ``512 bytes`` below a kilobyte)."""
    if n < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    size = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024 or unit == "TB":
            return f"{size:.1f} {unit}"
    return f"{n} bytes"


class SharingPage(Page):
    """Shared files with their prices; on/off; earnings; standing at the broker."""

    def __init__(self, peer: Any, bridge: Bridge, parent: QWidget | None = None,
                 settings_dialog: Callable[[QWidget], Any] | None = None) -> None:  # fmt: skip
        super().__init__(
            self.tr("Sharing"),
            self.tr(
                "Sell your own files to other NetPay wallets. They find them through your broker and pay you "
                "in coins; nothing is shared until you switch sharing on."
            ),
            parent,
        )
        self.peer = peer
        self.bridge = bridge
        self.add_files_button = QPushButton(self.tr("Add files…"))
        self.add_folder_button = QPushButton(self.tr("Add folder…"))
        self.remove_button = QPushButton(self.tr("Remove"))
        self.remove_button.setEnabled(False)
        self.settings_button = QPushButton(self.tr("Settings…"))
        self.settings_button.setVisible(settings_dialog is not None)
        self._settings_dialog = settings_dialog
        for b in (self.add_files_button, self.add_folder_button, self.remove_button, self.settings_button):
            self.tools.addWidget(b)

        status = Card()
        row = QHBoxLayout()
        self.state = heading("", "SectionTitle")
        self.address = muted("", wrap=True)
        row.addWidget(self.state)
        row.addWidget(self.address, 1)
        self.toggle = QPushButton()
        self.toggle.setObjectName("Primary")
        row.addWidget(self.toggle)
        status.body.addLayout(row)
        price_row = QHBoxLayout()
        price_row.addWidget(QLabel(self.tr("Price for files you add")))
        self.price = QSpinBox()
        self.price.setRange(1, 10_000)
        self.price.setValue(5)
        self.price.setSuffix(self.tr(" cents"))
        price_row.addWidget(self.price)
        price_row.addStretch(1)
        self.redeem_button = QPushButton(self.tr("Redeem now"))
        price_row.addWidget(self.redeem_button)
        status.body.addLayout(price_row)
        self.earnings = QLabel()
        self.earnings.setWordWrap(True)
        self.at_broker = QLabel()
        self.at_broker.setWordWrap(True)
        self.at_broker.hide()
        self.standing = muted("")
        status.body.addWidget(self.earnings)
        status.body.addWidget(self.at_broker)
        status.body.addWidget(self.standing)
        self.layout_.addWidget(status)
        self.error = banner()
        self.layout_.addWidget(self.error)

        self.table = DataTable([self.tr("File"), self.tr("Size"), self.tr("Price"), self.tr("SHA-256")])
        self.layout_.addWidget(self.table, 1)
        self.empty = muted(self.tr("No files shared yet. Add files or a folder, then switch sharing on."))
        self.layout_.addWidget(self.empty)

        self.toggle.clicked.connect(self._toggle)
        self.add_files_button.clicked.connect(self._add_files)
        self.add_folder_button.clicked.connect(self._add_folder)
        self.remove_button.clicked.connect(self._remove)
        self.redeem_button.clicked.connect(lambda: self._work(self.peer.redeem_now))
        self.settings_button.clicked.connect(self.open_settings)
        self.table.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(self.table.selected_data() is not None)
        )
        self.refresh()

    # -- showing ------------------------------------------------------------------------------------------------
    def update_data(self, snapshot: dict[str, Any]) -> None:
        self.refresh()

    def refresh(self) -> None:
        if not self.peer.records.session.unlocked:
            return  # locked: the window is hidden and the records are out of reach
        running = self.peer.running
        self.state.setText(self.tr("Sharing is on") if running else self.tr("Sharing is off"))
        self.address.setText(
            self.tr("Other wallets download from %s") % self.peer.base_url if running
            else self.tr("No port is open; your files are not listed anywhere.")
        )  # fmt: skip
        self.toggle.setText(self.tr("Stop sharing") if running else self.tr("Start sharing"))
        self.toggle.setObjectName("Danger" if running else "Primary")
        self.toggle.style().unpolish(self.toggle)
        self.toggle.style().polish(self.toggle)
        self.redeem_button.setEnabled(running)
        shares = self.peer.shares.all()
        self.table.fill([
            [Cell(s.title, s.title.lower(), data=s), Cell(human_size(s.size), s.size, right=True),
             Cell(s.money.format(), s.price, right=True), Cell(s.sha256[:16] + "…", s.sha256)]
            for s in shares
        ])  # fmt: skip
        self.empty.setVisible(not shares)
        self.show_earnings(self.peer.earnings())
        if self.peer.stopped_because and not running:
            self.error.setText(self.peer.stopped_because)
            self.error.show()

    def show_earnings(self, e: dict[str, int]) -> None:
        """Every amount this wallet owns as a seller: all coins received, those still waiting for redemption,
        those paid to the broker account, and any the broker refused."""
        cur = self.peer.settings.currency

        def m(key: str) -> str:
            return Money(e[key], cur).format()

        downloads = self.tr("1 download sold") if e["downloads"] == 1 else self.tr("%d downloads sold") % e["downloads"]
        text = self.tr("%s · coins received %s · waiting for redemption %s · redeemed at the broker %s") % (
            downloads, m("earned"), m("pending"), m("redeemed"))  # fmt: skip
        if e.get("rejected"):
            text += " · " + self.tr("refused by the broker %s") % m("rejected")
        self.earnings.setText(text)

    def show_broker_account(self, account: dict[str, Any]) -> None:
        """The broker's side of what was redeemed: what it holds for this wallet as a seller and what it paid out."""
        payable = Money.from_json(account["payable"], "payable").format()
        paid = Money.from_json(account["paid_out"], "paid_out").format()
        self.at_broker.setText(self.tr("At the broker: %s held for you as a seller · %s paid out") % (payable, paid))
        self.at_broker.show()

    def load_broker_account(self) -> None:
        """Ask the broker (off the GUI thread) what it holds for this wallet as a seller."""
        self.bridge.run(self.peer.broker_account, on_done=self.show_broker_account, on_error=lambda _e: None)

    def show_standing(self, standing: dict[str, Any]) -> None:
        """The broker's view of this account: requested from peers, supplied, and the supply policy."""
        req = Money.from_json(standing["requested"], "requested").format()
        sup = Money.from_json(standing["supplied"], "supplied").format()
        text = self.tr("Your standing: bought %s from peers, supplied %s.") % (req, sup)
        if standing.get("policy"):
            text += " " + (self.tr("You may buy coins.") if standing["may_buy_coins"] else
                           self.tr("The broker asks you to share more before you buy more coins."))  # fmt: skip
        else:
            text += " " + self.tr("This broker sets no sharing rule.")
        self.standing.setText(text)

    # -- actions ------------------------------------------------------------------------------------------------
    def open_settings(self) -> Any:
        """Open the sharing settings dialog (modal); after Save, new files get the new default price."""
        if self._settings_dialog is None:
            return None
        dialog = self._settings_dialog(self)

        def saved() -> None:
            if dialog.saved is not None:
                self.price.setValue(dialog.saved.default_price)
            self.refresh()

        dialog.accepted.connect(saved)
        dialog.open()
        return dialog

    def _work(self, fn: Any, *args: Any) -> None:
        self.error.hide()

        def failed(exc: BaseException) -> None:
            self.error.setText(describe(exc))
            self.error.show()
            self.refresh()

        def done(_: Any) -> None:
            self.refresh()
            if self.peer.running:
                self.bridge.run(self.peer.standing, on_done=self.show_standing, on_error=lambda _e: None)
            self.load_broker_account()

        self.bridge.run(fn, *args, on_done=done, on_error=failed)

    def _toggle(self) -> None:
        self._work(self.peer.switch_off if self.peer.running else self.peer.switch_on)

    def _after_change(self) -> Any:
        if self.peer.running:
            self.peer.publish()

    def _add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, self.tr("Files to share"))
        if paths:
            self.add_paths([Path(p) for p in paths])

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Folder to share"))
        if folder:
            self._work(self._add_folder_now, Path(folder), self.price.value())

    def _add_folder_now(self, folder: Path, price: int) -> None:
        self.peer.shares.add_folder(folder, price)
        self._after_change()

    def add_paths(self, paths: list[Path]) -> None:
        """Share these files at the chosen price (hashing runs off the GUI thread)."""
        price = self.price.value()

        def add() -> None:
            for p in paths:
                self.peer.shares.add_file(p, price)
            self._after_change()

        self._work(add)

    def _remove(self) -> None:
        share = self.table.selected_data()
        if share is not None:

            def remove() -> None:
                self.peer.shares.remove(share.item_id)
                self._after_change()

            self._work(remove)

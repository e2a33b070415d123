"""The main window: balance per broker and currency at the top, a sidebar of pages, menus and shortcuts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.dialogs import (
    BackupDialog,
    BuyCoinsDialog,
    ChangePassphraseDialog,
    ReceiptDialog,
    RestoreDialog,
    ReturnChainDialog,
    SettingsDialog,
)
from wallet_app.gui.formatting import plural, when
from wallet_app.gui.pages import ActivityPage, AllowancesPage, BrokersPage, CoinsPage, Page
from wallet_app.gui.spending import SpendingPage
from wallet_app.gui.theme import icon
from wallet_app.gui.widgets import muted

__all__ = ["MainWindow"]


class _BalanceCard(QFrame):
    def __init__(self, amount: str, caption: str) -> None:
        super().__init__()
        self.setObjectName("Card")
        box = QVBoxLayout(self)
        box.setContentsMargins(16, 8, 20, 8)
        box.setSpacing(0)
        self.amount = QLabel(amount)
        self.amount.setObjectName("BalanceAmount")
        self.caption = QLabel(caption)
        self.caption.setObjectName("BalanceCaption")
        box.addWidget(self.amount)
        box.addWidget(self.caption)


class MainWindow(QMainWindow):
    """Everything the customer sees once the wallet is unlocked."""

    lock_requested = Signal()
    restore_done = Signal()
    refreshed = Signal()

    PAGES = ("coins", "activity", "spending", "allowances", "brokers")

    def __init__(self, backend: GuiBackend, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.bridge = backend.bridge
        self.qsettings = settings
        self.snapshot: dict[str, Any] = {
            "balance": [],
            "chains": [],
            "activity": [],
            "allowances": [],
            "brokers": [],
            "accounts": [],
            "recoverable": [],
        }
        self.account_dialog: Any = None  # the last top-up / cash-out / recover dialog opened
        self._offered: set[str] = set()  # chains already offered for recovery this session
        self._offer_after_restore = False
        self.notifications: list[str] = []
        self.on_notify: Any = None
        self.settings_dialog: SettingsDialog | None = None
        self.setWindowTitle(self.tr("NetPay Wallet"))
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(QSize(960, 600))

        central = QWidget()
        central.setObjectName("Page")
        root = QVBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._header())
        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("Sidebar")
        self.sidebar.setFixedWidth(200)
        self.sidebar.setIconSize(QSize(20, 20))
        self.stack = QStackedWidget()
        self.coins_page = CoinsPage()
        self.activity_page = ActivityPage()
        self.spending_page = SpendingPage()
        self.allowances_page = AllowancesPage()
        self.brokers_page = BrokersPage()
        self.pages: list[Page] = [
            self.coins_page,
            self.activity_page,
            self.spending_page,
            self.allowances_page,
            self.brokers_page,
        ]
        names = [self.tr("Coins"), self.tr("Activity"), self.tr("Spending"), self.tr("Allowances"), self.tr("Brokers")]
        for key, name, page in zip(self.PAGES, names, self.pages, strict=True):
            item = QListWidgetItem(icon(key), name)
            item.setSizeHint(QSize(180, 40))
            self.sidebar.addItem(item)
            self.stack.addWidget(page)
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        body.addWidget(self.sidebar)
        body.addWidget(self.stack, 1)
        root.addLayout(body, 1)
        self.setCentralWidget(central)
        self.status_label = muted("", wrap=False)
        self.statusBar().addPermanentWidget(self.status_label)
        self.statusBar().setSizeGripEnabled(False)
        self._menus()

        self.coins_page.buy_requested.connect(self.buy_coins)
        self.coins_page.return_requested.connect(self.return_chain)
        self.activity_page.open_requested.connect(self.open_receipt)
        self.allowances_page.revoke_requested.connect(self.revoke_allowance)
        self.brokers_page.add_requested.connect(self.add_broker)
        self.brokers_page.top_up_requested.connect(self.top_up)
        self.brokers_page.cash_out_requested.connect(self.cash_out)
        self.brokers_page.hosted_buy_requested.connect(self.hosted_buy)
        self.brokers_page.hosted_return_requested.connect(self.hosted_return)
        self.brokers_page.recover_requested.connect(self.recover)
        self.restore_done.connect(self._restored)
        # the broker accounts move without the wallet (refunds after a grace period, another device): re-read them
        self.account_timer = QTimer(self)
        self.account_timer.setInterval(60_000)
        self.account_timer.timeout.connect(self.refresh_accounts)
        self.bridge.balance_changed.connect(self.refresh)
        self.bridge.activity_changed.connect(self.refresh)
        self.bridge.allowance_payment.connect(self.allowance_paid)
        self.bridge.subscription_event.connect(self.subscription_notice)
        self._refresh_pending = False
        self._refresh_again = False
        self._restore_geometry()

    # --- layout ----------------------------------------------------------------------------------------------
    def _header(self) -> QFrame:
        header = QFrame()
        header.setObjectName("Header")
        row = QHBoxLayout(header)
        row.setContentsMargins(20, 14, 20, 14)
        row.setSpacing(12)
        logo = QLabel()
        logo.setPixmap(icon("app").pixmap(40, 40))
        row.addWidget(logo)
        titles = QVBoxLayout()
        titles.setSpacing(0)
        title = QLabel(self.tr("NetPay Wallet"))
        title.setObjectName("Title")
        titles.addWidget(title)
        self.user_label = muted("", wrap=False)
        titles.addWidget(self.user_label)
        row.addLayout(titles)
        row.addSpacing(24)
        self.balance_row = QHBoxLayout()
        self.balance_row.setSpacing(10)
        row.addLayout(self.balance_row)
        row.addStretch(1)
        self.lock_button = QPushButton(self.tr("Lock"))
        self.lock_button.setToolTip(self.tr("Lock the wallet (Ctrl+L)"))
        self.buy_button = QPushButton(icon("buy"), self.tr("Buy coins"))
        self.buy_button.setObjectName("Primary")
        self.buy_button.setToolTip(self.tr("Buy coins (Ctrl+B)"))
        row.addWidget(self.lock_button)
        row.addWidget(self.buy_button)
        self.lock_button.clicked.connect(self.lock_requested)
        self.buy_button.clicked.connect(self.buy_coins)
        return header

    def _action(self, menu: Any, text: str, shortcut: QKeySequence | str | None, slot: Any) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _menus(self) -> None:
        bar = self.menuBar()
        wallet = bar.addMenu(self.tr("&Wallet"))
        self.buy_action = self._action(wallet, self.tr("&Buy coins…"), "Ctrl+B", self.buy_coins)
        self._action(wallet, self.tr("&Return selected chain…"), None, self._return_selected)
        wallet.addSeparator()
        self._action(wallet, self.tr("Back &up…"), "Ctrl+Shift+S", self.backup)
        self._action(wallet, self.tr("R&estore from backup…"), None, self.restore)
        self._action(wallet, self.tr("Change &passphrase…"), None, self.change_passphrase)
        self._action(wallet, self.tr("&Settings…"), "Ctrl+,", self.settings)
        wallet.addSeparator()
        self.lock_action = self._action(wallet, self.tr("&Lock"), "Ctrl+L", self.lock_requested)
        self._action(wallet, self.tr("&Quit"), "Ctrl+Q", self._quit)
        view = bar.addMenu(self.tr("&View"))
        names = [
            self.tr("&Coins"),
            self.tr("&Activity"),
            self.tr("S&pending"),
            self.tr("A&llowances"),
            self.tr("B&rokers"),
        ]
        for i, name in enumerate(names):
            self._action(view, name, f"Ctrl+{i + 1}", lambda _c=False, i=i: self.show_page(i))
        view.addSeparator()
        self._action(view, self.tr("&Refresh"), "F5", self.refresh)
        find = QAction(self)
        find.setShortcut(QKeySequence("Ctrl+F"))
        find.triggered.connect(self._find)
        self.addAction(find)

    def show_page(self, index: int) -> None:
        self.sidebar.setCurrentRow(index)

    def _find(self) -> None:
        self.show_page(1)
        self.activity_page.search.setFocus()
        self.activity_page.search.selectAll()

    # --- data ------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload everything from the vault in a worker. Bursts of events coalesce into one reload, and an event
        that arrives while a reload runs triggers one more afterwards, so the window never shows stale data."""
        if self._refresh_pending:
            self._refresh_again = True
            return
        self._refresh_pending = True
        self._refresh_again = False
        QTimer.singleShot(30, self._refresh_now)

    def _refresh_now(self) -> None:
        if self.backend.state != "unlocked":
            self._refresh_done()
            return
        self.bridge.run(self.backend.snapshot, on_done=self._apply, on_error=self._refresh_failed)

    def _refresh_done(self) -> None:
        self._refresh_pending = False
        if self._refresh_again:
            self.refresh()

    def _refresh_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(self.tr("Could not read the wallet: %1").replace("%1", str(exc)), 8000)
        self._refresh_done()

    def _apply(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        self._update_balance()
        for page in self.pages:
            page.update_data(snapshot)
        accounts = [f"{b.username}@{b.name}" for b in snapshot["brokers"] if b.username]
        self.user_label.setText(", ".join(accounts) or self.tr("No broker account yet"))
        self.refreshed.emit()
        self._refresh_done()
        self._maybe_offer_recovery()

    def refresh_accounts(self) -> None:
        """Fetch every broker account again in a worker; the snapshot follows (the service emits balance_changed)."""
        if self.backend.state != "unlocked":
            return
        self.bridge.run(
            self.backend.service.refresh_accounts,
            on_done=self._accounts_refreshed,
            on_error=lambda exc: self.statusBar().showMessage(str(exc), 8000),
        )

    def _accounts_refreshed(self, failed: Any) -> None:
        if failed:
            names = {b.broker_id: b.name for b in self.snapshot["brokers"]}
            who = ", ".join(names.get(b, b) for b in failed)
            self.statusBar().showMessage(
                self.tr("Could not update the account at %1; showing the last known balance.").replace("%1", who), 8000
            )

    def _restored(self) -> None:
        self._offer_after_restore = True
        self.refresh_accounts()

    def _maybe_offer_recovery(self) -> None:
        """Offer Recover once per session for chains of the account the wallet lacks: when the wallet holds no chain
        of that broker (a fresh wallet after logging in) or right after a backup restore."""
        if self.account_dialog is not None and self.account_dialog.isVisible():
            return
        lost = [c for c in self.snapshot.get("recoverable", []) if c.status != "recovering"]
        new = [c for c in lost if c.chain_id not in self._offered]
        if not new:
            return
        held = {c.broker_id for c in self.snapshot["chains"]}
        offer = [c for c in new if self._offer_after_restore or c.broker_id not in held]
        if not offer:
            return
        self._offer_after_restore = False
        self._offered.update(c.chain_id for c in lost)
        self.recover(offer[0].broker_id)

    def balance_text(self) -> str:
        lines = self.snapshot["balance"]
        return "  ·  ".join(line.unspent.format() for line in lines) if lines else "—"

    def _update_balance(self) -> None:
        while self.balance_row.count():
            item = self.balance_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        names = {b.broker_id: b.name for b in self.snapshot["brokers"]}
        lines = self.snapshot["balance"]
        if not lines:
            self.balance_row.addWidget(_BalanceCard(self.tr("No coins"), self.tr("Buy coins to start")))
        for line in lines:
            chains = plural(line.chains, self.tr("%n chain"), self.tr("%n chains"))
            caption = self.tr("%1 · %2").replace("%1", names.get(line.broker_id, line.broker_id)).replace("%2", chains)
            if line.pending.amount:
                caption += self.tr(" · %1 pending").replace("%1", line.pending.format())
            self.balance_row.addWidget(_BalanceCard(line.unspent.format(), caption))
        for account in self.snapshot.get("accounts", []):
            caption = self.tr("%1 account").replace("%1", account.broker_name)
            self.balance_row.addWidget(_BalanceCard(account.balance.format(), caption))

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # --- actions -----------------------------------------------------------------------------------------------
    def _account(self, broker_id: str) -> Any:
        return next((a for a in self.snapshot.get("accounts", []) if a.broker_id == broker_id), None)

    def top_up(self, broker_id: str) -> Any:
        from wallet_app.gui.account import TopUpDialog

        account = self._account(broker_id)
        if account is None:
            return None
        self.account_dialog = TopUpDialog(self.backend, account, self)
        self.account_dialog.accepted.connect(self.refresh)
        self.account_dialog.open()
        return self.account_dialog

    def cash_out(self, broker_id: str) -> Any:
        from wallet_app.gui.account import CashOutDialog

        account = self._account(broker_id)
        if account is None:
            return None
        self.account_dialog = CashOutDialog(self.backend, account, self)
        self.account_dialog.accepted.connect(self.refresh)
        self.account_dialog.open()
        return self.account_dialog

    def hosted_buy(self, broker_id: str) -> Any:
        from wallet_app.gui.account import HostedBuyDialog

        account = self._account(broker_id)
        if account is None:
            return None
        self.account_dialog = HostedBuyDialog(self.backend, account, self)
        self.account_dialog.accepted.connect(self.refresh)
        self.account_dialog.open()
        return self.account_dialog

    def hosted_return(self, broker_id: str) -> Any:
        from wallet_app.gui.account import HostedReturnDialog

        account = self._account(broker_id)
        if account is None or account.hosted is None:
            return None
        self.account_dialog = HostedReturnDialog(self.backend, account, self)
        self.account_dialog.accepted.connect(self.refresh)
        self.account_dialog.open()
        return self.account_dialog

    def recover(self, broker_id: str) -> Any:
        from wallet_app.gui.account import RecoverDialog

        names = {b.broker_id: b.name for b in self.snapshot["brokers"]}
        vendors = {e.vendor_id: e.vendor_name for e in self.snapshot["activity"] if e.vendor_id and e.vendor_name}
        chains = list(self.snapshot.get("recoverable", []))
        dialog = RecoverDialog(self.backend, broker_id, names.get(broker_id, broker_id), chains, vendors, self)
        dialog.finished.connect(lambda _r: self.refresh())
        self.account_dialog = dialog
        dialog.open()
        return dialog

    def buy_coins(self) -> BuyCoinsDialog:
        balances = {a.broker_id: a.balance for a in self.snapshot.get("accounts", [])}
        dialog = BuyCoinsDialog(self.backend, list(self.snapshot["brokers"]), self, accounts=balances)
        dialog.accepted.connect(self.refresh)
        dialog.open()
        return dialog

    def _return_selected(self) -> None:
        chain = self.coins_page.table.selected_data()
        if chain is not None:
            self.return_chain(chain)

    def return_chain(self, chain: Any) -> ReturnChainDialog:
        dialog = ReturnChainDialog(self.backend, chain, self)
        dialog.finished.connect(lambda _r: self.refresh())
        dialog.open()
        return dialog

    def open_receipt(self, entry: Any) -> ReceiptDialog:
        dialog = ReceiptDialog(self.backend, entry, self)
        dialog.open()
        return dialog

    def revoke_allowance(self, allowance: Any) -> None:
        self.bridge.run(
            self.backend.service.revoke_allowance,
            allowance.vendor_id,
            on_done=lambda _r: self._revoked(allowance),
            on_error=lambda exc: self.statusBar().showMessage(str(exc), 8000),
        )

    def _revoked(self, allowance: Any) -> None:
        self.statusBar().showMessage(self.tr("Allowance for %1 revoked.").replace("%1", allowance.vendor_name), 6000)
        self.refresh()

    def add_broker(self) -> Any:
        from wallet_app.gui.brokers import AddBrokerDialog

        dialog = AddBrokerDialog(self.backend, self)
        dialog.accepted.connect(self.refresh)
        dialog.open()
        return dialog

    def backup(self) -> BackupDialog:
        base = self.backend.data_dir or Path.home()
        dialog = BackupDialog(self.backend, Path(base) / "wallet-backup.npbackup", self)
        dialog.accepted.connect(lambda: self.statusBar().showMessage(self.tr("Backup written."), 6000))
        dialog.open()
        return dialog

    def restore(self) -> RestoreDialog:
        dialog = RestoreDialog(self.backend, self)
        dialog.accepted.connect(self.refresh)
        dialog.accepted.connect(self.restore_done)
        dialog.accepted.connect(lambda: self.statusBar().showMessage(self.tr("Wallet restored from backup."), 6000))
        dialog.open()
        return dialog

    def change_passphrase(self) -> ChangePassphraseDialog:
        dialog = ChangePassphraseDialog(self.backend, self)
        dialog.accepted.connect(lambda: self.statusBar().showMessage(self.tr("Passphrase changed."), 6000))
        dialog.open()
        return dialog

    def settings(self) -> None:
        """Read the settings in a worker, then open the dialog (``settings_dialog`` holds it)."""

        def show(values: Any) -> None:
            self.settings_dialog = SettingsDialog(self.backend, values, self)
            self.settings_dialog.open()

        self.bridge.run(self.backend.settings, on_done=show, on_error=lambda e: self.statusBar().showMessage(str(e)))

    def allowance_paid(self, paid: Any) -> None:
        """A payment went through under an allowance: tell the user (tray notification + status bar)."""
        amount = paid.amount.format() if hasattr(paid, "amount") else ""
        item = getattr(paid, "item_url", "") or ""
        text = self.tr("Paid %1 automatically under your allowance.").replace("%1", amount)
        if item:
            text += " " + item
        self.notifications.append(text)
        self.statusBar().showMessage(text, 8000)
        if self.on_notify is not None:
            self.on_notify(self.tr("NetPay payment"), text)

    def subscription_notice(self, sub: Any, renewed: bool) -> None:
        """A pass renewed (or could not within its cap): tell the user like an allowance payment."""
        if renewed:
            text = self.tr("%1 renewed for %2; next renewal %3.").replace("%1", sub.title).replace(
                "%2", sub.price.format()).replace("%3", when(sub.renews_at))  # fmt: skip
        else:
            text = self.tr("%1 will not renew: %2.").replace("%1", sub.title).replace("%2", sub.note)
        self.notifications.append(text)
        self.statusBar().showMessage(text, 8000)
        self.bridge.activity_changed.emit()
        if self.on_notify is not None:
            self.on_notify(self.tr("NetPay subscription"), text)

    def _quit(self) -> None:
        from PySide6.QtWidgets import QApplication

        self.close()
        QApplication.quit()

    # --- geometry ------------------------------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self.qsettings.value("main/geometry")
        size = self.qsettings.value("main/size")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)  # position, maximised state, screen
        # the size on its own too: restoreGeometry clamps to the current screen, which may be smaller for a moment
        self.resize(size if isinstance(size, QSize) and size.isValid() else QSize(1280, 800))
        page = self.qsettings.value("main/page", 0)
        self.show_page(int(page) if isinstance(page, (int, str)) and str(page).isdigit() else 0)

    def save_geometry(self) -> None:
        self.qsettings.setValue("main/geometry", self.saveGeometry())
        if not self.isMaximized() and not self.isFullScreen():
            self.qsettings.setValue("main/size", self.size())
        self.qsettings.setValue("main/page", self.sidebar.currentRow())
        self.qsettings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_geometry()
        super().closeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()
        if not self.account_timer.isActive():
            self.account_timer.start()
            self.refresh_accounts()


def _unused() -> Qt.AlignmentFlag:
    return Qt.AlignmentFlag.AlignLeft

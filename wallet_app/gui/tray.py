"""The tray icon: balance and pending prompts in its tooltip and menu, and a notification per allowance payment."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from wallet_app.gui.formatting import plural
from wallet_app.gui.theme import icon

__all__ = ["Tray"]


class Tray(QObject):
    """Wraps QSystemTrayIcon; where the system has no tray, notifications are still recorded and shown in-app."""

    show_requested = Signal()
    lock_requested = Signal()
    quit_requested = Signal()
    prompts_requested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(icon("tray"), self)
        self.menu = QMenu()
        self.balance_action = self.menu.addAction(self.tr("Balance: —"))
        self.balance_action.setEnabled(False)
        self.prompts_action = self.menu.addAction(self.tr("No purchases waiting"))
        self.prompts_action.triggered.connect(self.prompts_requested)
        self.menu.addSeparator()
        self.menu.addAction(self.tr("Open wallet")).triggered.connect(self.show_requested)
        self.menu.addAction(self.tr("Lock")).triggered.connect(self.lock_requested)
        self.menu.addSeparator()
        self.menu.addAction(self.tr("Quit")).triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.tooltip = ""
        self.messages: list[tuple[str, str]] = []
        self._balance = "—"
        self._pending = 0
        self._refresh()
        if self.available:
            self.icon.show()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.show_requested.emit()

    def set_balance(self, text: str) -> None:
        self._balance = text
        self._refresh()

    def set_pending(self, count: int) -> None:
        self._pending = count
        self._refresh()

    def _refresh(self) -> None:
        self.balance_action.setText(self.tr("Balance: %1").replace("%1", self._balance))
        waiting = (
            plural(self._pending, self.tr("1 purchase waiting for you"), self.tr("%n purchases waiting for you"))
            if self._pending
            else self.tr("No purchases waiting")
        )
        self.prompts_action.setText(waiting)
        self.prompts_action.setEnabled(self._pending > 0)
        self.icon.setIcon(icon("tray-pending" if self._pending else "tray"))
        self.tooltip = "NetPay Wallet — " + self._balance + ("\n" + waiting if self._pending else "")
        self.icon.setToolTip(self.tooltip)

    def notify(self, title: str, text: str) -> None:
        """Show a desktop notification (when a tray exists) and record it."""
        self.messages.append((title, text))
        if self.available and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, icon("app"), 6000)

    def hide(self) -> None:
        self.icon.hide()

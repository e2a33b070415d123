"""The tray icon: balance and pending prompts in its tooltip and menu, a notification per allowance payment, and
each running metered session (units paid, total) with an action that ends it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from wallet_app.gui.formatting import money, plural
from wallet_app.gui.theme import icon

__all__ = ["Tray"]


class Tray(QObject):
    """Wraps QSystemTrayIcon; where the system has no tray, notifications are still recorded and shown in-app."""

    show_requested = Signal()
    lock_requested = Signal()
    quit_requested = Signal()
    prompts_requested = Signal()
    end_metered_requested = Signal(str)  # session id: the user ends a metered session from the menu

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.available = QSystemTrayIcon.isSystemTrayAvailable()
        self.icon = QSystemTrayIcon(icon("tray"), self)
        self.menu = QMenu()
        self.balance_action = self.menu.addAction(self.tr("Balance: —"))
        self.balance_action.setEnabled(False)
        self.prompts_action = self.menu.addAction(self.tr("No purchases waiting"))
        self.prompts_action.triggered.connect(self.prompts_requested)
        self.metered_separator = self.menu.addSeparator()
        self.metered_actions: dict[str, QAction] = {}
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

    def set_metered(self, sessions: list[Any]) -> None:
        """Show each open metered session (``MeteredSession``) as "End <title> (n units, total)"; ended ones leave."""
        open_ids = {s.session_id for s in sessions}
        for sid in [k for k in self.metered_actions if k not in open_ids]:
            self.menu.removeAction(self.metered_actions.pop(sid))
        for s in sessions:
            units = plural(s.units_paid, self.tr("1 unit"), self.tr("%n units"))
            text = self.tr("End %1 (%2, %3)").replace("%1", s.title).replace("%2", units).replace("%3", money(s.total))
            action = self.metered_actions.get(s.session_id)
            if action is None:
                action = QAction(text, self.menu)
                action.triggered.connect(lambda _checked=False, sid=s.session_id: self.end_metered_requested.emit(sid))
                self.menu.insertAction(self.metered_separator, action)
                self.metered_actions[s.session_id] = action
            action.setText(text)
        self._refresh()

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
        if self.metered_actions:
            self.tooltip += "\n" + plural(len(self.metered_actions), self.tr("1 metered session running"),
                                           self.tr("%n metered sessions running"))  # fmt: skip
        self.icon.setToolTip(self.tooltip)

    def notify(self, title: str, text: str) -> None:
        """Show a desktop notification (when a tray exists) and record it."""
        self.messages.append((title, text))
        if self.available and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, icon("app"), 6000)

    def hide(self) -> None:
        self.icon.hide()

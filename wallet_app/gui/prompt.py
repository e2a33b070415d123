"""The purchase prompt, and the queue that shows prompts from different vendors one after another.

Safety rules (NETPAY.md §5): the dialog shows the vendor name and origin as certified by the broker, comes to the
front, has no default button (Enter does nothing), enables Pay only after a short delay and again after losing focus,
and Escape or closing the window declines.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from netpay.money import Money
from wallet_app.gui.errors import describe
from wallet_app.gui.formatting import plural
from wallet_app.gui.theme import icon
from wallet_app.gui.views import PromptView
from wallet_app.gui.widgets import Card, banner, fit_height, muted

__all__ = ["PromptQueue", "PurchasePrompt"]

#: Multiples of the price offered as "allow this vendor up to ..." limits.
_LIMIT_FACTORS = (1, 2, 5, 10)


class PurchasePrompt(QDialog):
    """Ask the customer to pay one quote. Emits ``decided(prompt_id, approve, allow_limit)`` exactly once."""

    decided = Signal(str, bool, object)

    #: Milliseconds before Pay becomes clickable (and again after the window regains focus).
    PAY_DELAY_MS = 1200

    def __init__(self, prompt: PromptView, waiting: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = prompt
        self._decided = False
        self.setObjectName("PurchasePrompt")
        self.setWindowTitle(self.tr("Confirm purchase"))
        self.setWindowIcon(icon("app"))
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, True)
        self.setFixedWidth(500)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(22, 20, 22, 20)
        outer.setSpacing(14)

        who = QLabel(self.tr("<b>%1</b> asks you to pay").replace("%1", _esc(prompt.vendor_name)))
        who.setObjectName("SectionTitle")
        outer.addWidget(who)
        origin = muted(self.tr("%1 · certified by your broker").replace("%1", prompt.origin))
        origin.setObjectName("Subtitle")
        outer.addWidget(origin)

        card = Card()
        card.body.addWidget(muted(self.tr("Item")))
        self.item_label = QLabel(prompt.title)
        self.item_label.setObjectName("SectionTitle")
        self.item_label.setWordWrap(True)
        card.body.addWidget(self.item_label)
        model = getattr(prompt, "model", None)
        if model is not None and model.kind == "bundle":  # one approval for several items
            count = self.tr("%1 items in one purchase, one receipt").replace("%1", str(len(model.items)))  # 2 or more
            card.body.addWidget(muted(count))
        metered = model if model is not None and model.kind == "metered" else None
        if metered is not None:  # one approval for a session: say what it may cost in all, and how it stops
            cap = metered.cap_units
            units = self.tr("%1 units").replace("%1", str(cap)) if cap != 1 else self.tr("1 unit")
            note = muted(
                self.tr("Pay as you use: %1 for every %2, paid in the background while you use it, at most %3 (%4). "
                        "It stops when the page stops; end it any time from the tray.")
                .replace("%1", prompt.price.format()).replace("%2", _esc(metered.unit)).replace("%3", units)
                .replace("%4", (prompt.price * cap).format())
            )  # fmt: skip
            note.setWordWrap(True)
            card.body.addWidget(note)
        card.body.addSpacing(6)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(4)
        self.price_label = QLabel(prompt.price.format())
        self.price_label.setObjectName("PriceAmount")
        self.after_label = QLabel(prompt.balance_after.format())
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        price_text = self.tr("Price of the first %1").replace("%1", metered.unit) if metered else self.tr("Price")
        grid.addWidget(muted(price_text), 0, 0)
        grid.addWidget(self.price_label, 0, 1, right)
        grid.addWidget(muted(self.tr("Balance after paying")), 1, 0)
        grid.addWidget(self.after_label, 1, 1, right)
        grid.setColumnStretch(0, 1)
        card.body.addLayout(grid)
        outer.addWidget(card)

        self.allow_check = QCheckBox(self.tr("From now on, pay %1 without asking").replace("%1", prompt.vendor_name))
        self.allow_limit = QComboBox()
        for factor in _LIMIT_FACTORS:
            limit = prompt.price * factor
            self.allow_limit.addItem(self.tr("up to %1 per purchase and per day").replace("%1", limit.format()), limit)
        self.allow_limit.setCurrentIndex(1)
        self.allow_limit.setEnabled(False)
        self.allow_check.toggled.connect(self.allow_limit.setEnabled)
        outer.addWidget(self.allow_check)
        allow_row = QHBoxLayout()
        allow_row.setContentsMargins(26, 0, 0, 0)
        allow_row.addWidget(self.allow_limit)
        allow_row.addStretch(1)
        outer.addLayout(allow_row)

        self.waiting_label = muted("")
        self.set_waiting(waiting)
        outer.addWidget(self.waiting_label)

        self.error = banner()
        outer.addWidget(self.error)
        if prompt.advice:
            self.after_label.setText(self.tr("no exact change"))
            self.error.setText(prompt.advice)
            self.error.show()
        elif not self.affordable:
            self.after_label.setText(self.tr("not enough coins"))
            self.error.setText(
                self.tr(
                    "Your wallet does not hold enough coins for this price. Buy coins, then buy "
                    "the item again; or decline."
                )
            )
            self.error.show()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        outer.addWidget(self.progress)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.decline_button = QPushButton(self.tr("Decline"))
        self.pay_button = QPushButton(self.tr("Pay %1").replace("%1", prompt.price.format()))
        self.pay_button.setObjectName("Primary")
        for button in (self.decline_button, self.pay_button):
            button.setAutoDefault(False)
            button.setDefault(False)
        self.pay_button.setEnabled(False)
        buttons.addWidget(self.decline_button)
        buttons.addWidget(self.pay_button)
        outer.addLayout(buttons)

        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.timeout.connect(self._enable_pay)
        self._expiry_timer = QTimer(self)
        self._expiry_timer.setSingleShot(True)
        self._expiry_timer.timeout.connect(self._expired)
        remaining_ms = int((prompt.expires_at - time.time()) * 1000)
        if prompt.expires_at and remaining_ms > 0:
            self._expiry_timer.start(min(remaining_ms, 2**31 - 1))

        self.pay_button.clicked.connect(self._pay_clicked)
        self.decline_button.clicked.connect(self.reject)

    # --- Pay delay ---------------------------------------------------------------------------------------------
    def _arm(self) -> None:
        self.pay_button.setEnabled(False)
        if not self._decided:
            self._arm_timer.start(self.PAY_DELAY_MS)

    def _enable_pay(self) -> None:
        if not self._decided and self.isVisible() and self.affordable:
            self.pay_button.setEnabled(True)

    @property
    def affordable(self) -> bool:
        """Some of the wallet's coins make the price exactly (else Pay never lights up)."""
        return self.prompt.balance_after.amount >= 0 and not self.prompt.advice

    def showEvent(self, event: QShowEvent) -> None:
        self.adjustSize()
        super().showEvent(event)
        self._arm()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange:
            if self.isActiveWindow():
                self.focus_gained()
            else:
                self.focus_lost()

    def focus_lost(self) -> None:
        """Another window took the focus: Pay goes dark so a click aimed elsewhere cannot land on it."""
        self._arm_timer.stop()
        self.pay_button.setEnabled(False)

    def focus_gained(self) -> None:
        """Back in front: Pay lights up again only after the delay."""
        self._arm()

    # --- decisions ---------------------------------------------------------------------------------------------
    def set_waiting(self, count: int) -> None:
        """Show how many other prompts wait behind this one."""
        waiting = plural(count, self.tr("1 more purchase waiting"), self.tr("%n more purchases waiting"))
        self.waiting_label.setText(waiting if count else "")
        self.waiting_label.setVisible(count > 0)

    def chosen_limit(self) -> Money | None:
        """The per-purchase allowance the customer chose, or None."""
        return self.allow_limit.currentData() if self.allow_check.isChecked() else None

    def _pay_clicked(self) -> None:
        if self._decided or not self.pay_button.isEnabled():
            return
        self._decided = True
        self._arm_timer.stop()
        self.pay_button.setEnabled(False)
        self.decline_button.setEnabled(False)
        self.allow_check.setEnabled(False)
        self.allow_limit.setEnabled(False)
        self.error.hide()
        self.progress.show()
        self.decided.emit(self.prompt.prompt_id, True, self.chosen_limit())

    def show_result(self, error: BaseException | None) -> None:
        """After an approval: close on success, or show what went wrong and offer Close."""
        self.progress.hide()
        if error is None:
            self.accept()
            return
        self.error.setText(self.tr("The payment did not go through: %1").replace("%1", describe(error)))
        self.error.show()
        fit_height(self)
        self.decline_button.setText(self.tr("Close"))
        self.decline_button.setEnabled(True)

    def reject(self) -> None:
        if not self._decided:
            self._decided = True
            self.decided.emit(self.prompt.prompt_id, False, None)
        super().reject()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()  # no default button: Enter never pays
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._decided:
            self.reject()
        super().closeEvent(event)

    def _expired(self) -> None:
        if not self._decided:
            self._decided = True
            self.decided.emit(self.prompt.prompt_id, False, None)
            super().reject()

    def close_from_outside(self) -> None:
        """The purchase was settled or withdrawn elsewhere: close without deciding."""
        self._decided = True
        super().reject()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class PromptQueue:
    """Shows one purchase prompt at a time; later prompts wait their turn instead of stacking windows."""

    def __init__(
        self,
        approve: Callable[[str, Money | None], Any],
        decline: Callable[[str], Any],
        run: Callable[..., Any],
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._approve = approve
        self._decline = decline
        self._run = run
        self._on_change = on_change
        self._waiting: deque[PromptView] = deque()
        self.current: PurchasePrompt | None = None

    @property
    def pending(self) -> int:
        """Prompts shown or waiting."""
        return len(self._waiting) + (1 if self.current is not None else 0)

    def add(self, prompt: PromptView) -> None:
        if (self.current is not None and self.current.prompt.prompt_id == prompt.prompt_id) or any(
            p.prompt_id == prompt.prompt_id for p in self._waiting
        ):
            return
        self._waiting.append(prompt)
        if self.current is None:
            self._show_next()
        else:
            self.current.set_waiting(len(self._waiting))
        self._changed()

    def withdraw(self, prompt_id: str) -> None:
        """A prompt was settled elsewhere (expired, paid by another path): drop it."""
        self._waiting = deque(p for p in self._waiting if p.prompt_id != prompt_id)
        if self.current is not None and self.current.prompt.prompt_id == prompt_id and not self.current._decided:
            self.current.close_from_outside()
        elif self.current is not None:
            self.current.set_waiting(len(self._waiting))
        self._changed()

    def _show_next(self) -> None:
        if not self._waiting:
            self.current = None
            self._changed()
            return
        prompt = self._waiting.popleft()
        dialog = PurchasePrompt(prompt, waiting=len(self._waiting))
        dialog.decided.connect(self._decided)
        dialog.finished.connect(lambda _r, d=dialog: self._finished(d))
        self.current = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def _decided(self, prompt_id: str, approve: bool, limit: Money | None) -> None:
        dialog = self.current
        if approve:
            self._run(
                self._approve,
                prompt_id,
                limit,
                on_done=lambda _r: dialog.show_result(None) if dialog is not None else None,
                on_error=lambda exc: dialog.show_result(exc) if dialog is not None else None,
            )
        else:
            self._run(self._decline, prompt_id, on_error=lambda _exc: None)

    def _finished(self, dialog: PurchasePrompt) -> None:
        if self.current is dialog:
            dialog.deleteLater()
            self.current = None
            QTimer.singleShot(0, self._show_next)
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.pending)

"""A dialog base that runs its action in a background worker, with progress and a clear error banner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wallet_app.gui.bridge import Bridge
from wallet_app.gui.errors import describe
from wallet_app.gui.theme import icon
from wallet_app.gui.widgets import banner, fit_height, heading, muted

__all__ = ["WorkDialog"]


class WorkDialog(QDialog):
    """Title, explanation, a form, an error/success banner, a progress bar and Cancel / action buttons."""

    def __init__(
        self, bridge: Bridge, title: str, intro: str, action: str, parent: QWidget | None = None, danger: bool = False
    ) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle(title)  # the platform adds " — NetPay Wallet" (the application display name)
        self.setWindowIcon(icon("app"))
        self.setMinimumWidth(480)
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(24, 20, 24, 20)
        self.outer.setSpacing(12)
        self.outer.addWidget(heading(title, "Title"))
        if intro:
            self.intro = muted(intro)
            self.outer.addWidget(self.intro)
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(16)
        self.form.setVerticalSpacing(10)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.outer.addLayout(self.form)
        self.error = banner("Error")
        self.success = banner("Success")
        self.outer.addWidget(self.error)
        self.outer.addWidget(self.success)
        for message in (self.error, self.success):
            message.installEventFilter(self)  # the dialog fits each message as it appears or goes
        self.status = muted("")
        self.status.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.outer.addWidget(self.status)
        self.outer.addWidget(self.progress)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.action_button = QPushButton(action)
        self.action_button.setObjectName("Danger" if danger else "Primary")
        self.cancel_button.setAutoDefault(False)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.action_button)
        self.outer.addLayout(buttons)
        self.cancel_button.clicked.connect(self.reject)
        self.action_button.clicked.connect(self._action)
        self.working = False
        self.last_error: BaseException | None = None

    # subclasses implement: validate() -> str | None, work() -> (fn, args), done(result)
    def validate(self) -> str | None:
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        raise NotImplementedError

    def done_ok(self, result: Any) -> None:
        self.accept()

    def inputs(self) -> list[QWidget]:
        return []

    def _action(self) -> None:
        if self.working:
            return
        self.error.hide()
        self.success.hide()
        problem = self.validate()
        if problem:
            self.show_error(problem)
            return
        fn, args, with_progress = self.work()
        self._set_working(True)
        self.bridge.run(
            fn,
            *args,
            on_done=self._finished,
            on_error=self._failed,
            on_progress=self.on_progress if with_progress else None,
        )

    def on_progress(self, percent: int, text: str) -> None:
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 100)
        self.progress.setValue(percent)
        if text:
            self.status.setText(text)
            self.status.show()

    def _set_working(self, working: bool) -> None:
        self.working = working
        self.progress.setVisible(working)
        self.progress.setRange(0, 0)
        self.status.setVisible(working and bool(self.status.text()))
        self.action_button.setEnabled(not working)
        self.cancel_button.setEnabled(not working)
        for widget in self.inputs():
            widget.setEnabled(not working)

    def _finished(self, result: Any) -> None:
        self._set_working(False)
        self.status.hide()
        self.done_ok(result)

    def _failed(self, exc: BaseException) -> None:
        self._set_working(False)
        self.status.hide()
        self.last_error = exc
        self.show_error(self.explain(exc))

    def explain(self, exc: BaseException) -> str:
        return describe(exc)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched in (self.error, self.success) and event.type() in (QEvent.Type.Show, QEvent.Type.Hide):
            fit_height(self)
        return False

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()

    def show_success(self, text: str) -> None:
        self.success.setText(text)
        self.success.show()

    def reject(self) -> None:
        if not self.working:
            super().reject()


def label(text: str) -> QLabel:
    return QLabel(text)

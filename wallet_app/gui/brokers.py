"""Add a broker by URL: look it up, show its id and key fingerprint, trust it once the user compared them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit, QWidget

from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.base import WorkDialog
from wallet_app.gui.first_run import DEMO_BROKER_URL

__all__ = ["AddBrokerDialog"]


class AddBrokerDialog(WorkDialog):
    """First press looks the broker up; the second (after ticking the box) trusts it."""

    def __init__(self, backend: GuiBackend, parent: QWidget | None = None) -> None:
        super().__init__(
            backend.bridge,
            self.tr("Add a broker"),
            self.tr(
                "Enter the broker's address. Compare the fingerprint with the one it publishes before trusting it."
            ),
            self.tr("Look up"),
            parent,
        )
        self.backend = backend
        self.url = QLineEdit(DEMO_BROKER_URL)
        self.form.addRow(self.tr("Address"), self.url)
        self.name = QLabel()
        self.broker_id = QLabel()
        self.fingerprint = QLabel()
        self.fingerprint.setObjectName("Fingerprint")
        self.fingerprint.setWordWrap(True)
        self.trust = QCheckBox(self.tr("I compared the fingerprint"))
        self.info: Any = None
        self.url.textEdited.connect(lambda _t: self._reset())

    def _reset(self) -> None:
        self.info = None
        self.action_button.setText(self.tr("Look up"))

    def inputs(self) -> list[QWidget]:
        return [self.url, self.trust]

    def validate(self) -> str | None:
        if self.info is not None and not self.trust.isChecked():
            return self.tr("Tick the box once you compared the fingerprint.")
        if not self.url.text().strip().startswith(("http://", "https://")):
            return self.tr("Enter the broker's address, starting with http:// or https://.")
        return None

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        if self.info is None:
            return self.backend.service.add_broker, (self.url.text().strip().rstrip("/"),), False
        return self.backend.service.trust_broker, (self.info.broker_id,), False

    def done_ok(self, result: Any) -> None:
        if self.info is None:
            self.info = result
            self.name.setText(result.name)
            self.broker_id.setText(result.broker_id)
            self.fingerprint.setText(result.fingerprint)
            if self.form.rowCount() == 1:
                self.form.addRow(self.tr("Name"), self.name)
                self.form.addRow(self.tr("Broker id"), self.broker_id)
                self.form.addRow(self.tr("Fingerprint"), self.fingerprint)
                self.form.addRow("", self.trust)
            self.action_button.setText(self.tr("Trust broker"))
        else:
            self.accept()

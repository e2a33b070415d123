"""The sharing settings dialog: listen address and port of the peer server, the price new files get, the broker
whose index lists them, and whether sharing starts again with the wallet. Values are checked by
:func:`wallet_app.peer.config.validate_config`; a bad one is named in the dialog and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QWidget

from netpay.money import Money
from wallet_app.gui.base import WorkDialog
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.errors import describe
from wallet_app.gui.widgets import muted
from wallet_app.peer.config import SharingConfig, load_config, save_config, validate_config

__all__ = ["SharingSettingsDialog"]


class SharingSettingsDialog(WorkDialog):
    """Edit the sharing settings; ``saved`` holds the stored :class:`SharingConfig` after Save."""

    def __init__(self, bridge: Bridge, service: Any, peer: Any, brokers: list[tuple[str, str]],
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(
            bridge,
            self.tr("Sharing settings"),
            self.tr("Where other wallets reach your files, and what new files cost."),
            self.tr("Save"),
            parent,
        )
        self.setMinimumWidth(560)
        self.service = service
        self.peer = peer
        self.currency = peer.settings.currency
        config = load_config(service)
        self.host = QLineEdit(config.host)
        self.port = QLineEdit(str(config.port))
        self.port.setPlaceholderText("0")
        self.price = QLineEdit(Money(config.default_price, self.currency).format())
        self.broker = QComboBox()
        self.broker.addItem(self.tr("First broker with an account"), "")
        for broker_id, name in brokers:
            self.broker.addItem(name, broker_id)
        index = self.broker.findData(config.broker_id)
        self.broker.setCurrentIndex(max(index, 0))
        self.at_login = QCheckBox(self.tr("Share again when the wallet starts"))
        self.at_login.setChecked(config.at_login)
        self.form.addRow(self.tr("Listen address"), self.host)
        self.form.addRow(self.tr("Port"), self.port)
        self.form.addRow("", muted(self.tr("0 picks a free port once and keeps it. 0.0.0.0 listens on every "
                                           "interface of this computer."), wrap=True))  # fmt: skip
        self.form.addRow(self.tr("Price for new files"), self.price)
        self.form.addRow(self.tr("List files at"), self.broker)
        self.form.addRow("", self.at_login)
        self.form.addRow("", muted(self.tr("Only if sharing was on when the wallet stopped."), wrap=True))
        self.form.addRow("", muted(self.tr("A new address or port applies at once; another broker when the wallet "
                                           "starts next."), wrap=True))  # fmt: skip
        self.saved: SharingConfig | None = None

    def inputs(self) -> list[QWidget]:
        return [self.host, self.port, self.price, self.broker, self.at_login]

    def work(self) -> tuple[Callable[..., Any], tuple[Any, ...], bool]:
        values = (self.host.text(), self.port.text(), self.price.text(), str(self.broker.currentData() or ""),
                  self.at_login.isChecked())  # fmt: skip
        brokers = [str(self.broker.itemData(i)) for i in range(1, self.broker.count())]
        callback_port = int(self.service.get_setting("callback_port", 8765))

        def save() -> SharingConfig:
            config = validate_config(*values[:3], self.currency, *values[3:], brokers, callback_port)
            save_config(self.service, config)
            self.peer.reconfigure(config.host, config.port)
            return config

        return save, (), False

    def explain(self, exc: BaseException) -> str:
        return describe(exc)

    def done_ok(self, result: Any) -> None:
        self.saved = result
        self.accept()

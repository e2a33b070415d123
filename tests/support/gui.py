"""A test harness for the wallet's windows: the real services, coordinator and callback, wired as the app wires them.

:class:`GuiWallet` owns one wallet (vault in a temp dir, in-memory test keyring, cheap KDF), its purchase
coordinator and callback server on a free loopback port, and the :class:`~wallet_app.gui.app.WalletWindows`. Pages
hand purchases to the wallet as a browser would: ``offer(vendor, item)`` fetches a signed quote from the live vendor
and posts it to the callback with the vendor's origin.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import requests
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPixmap
from PySide6.QtWidgets import QWidget

from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.test_keyring import MemoryKeyring
from wallet_app.callback.coordinator import PurchaseCoordinator
from wallet_app.callback.origins import OriginRegistry
from wallet_app.callback.server import CallbackServer
from wallet_app.callback.services_adapter import ServicesWalletPort
from wallet_app.gui.app import WalletWindows
from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.bridge import Bridge
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletEvents, WalletService

__all__ = ["SCREENSHOTS", "GuiWallet", "compose", "save_screenshot"]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"


class GuiWallet:
    """One wallet with its windows, callback and coordinator, against a live broker."""

    def __init__(self, data_dir: Path, broker: RunningBroker, keyring_backend: Any | None = None) -> None:
        self.data_dir = data_dir
        self.broker = broker
        self.keyring = keyring_backend if keyring_backend is not None else MemoryKeyring()
        self.events = WalletEvents()
        self.service = WalletService(data_dir, key_store=KeyStore(self.keyring, kdf=FAST_TEST_KDF), events=self.events)
        port = ServicesWalletPort(self.service)
        self.coordinator = PurchaseCoordinator(port, registry=OriginRegistry(port.trusted_broker_keys))
        self.server = CallbackServer(self.coordinator, port=0).start()
        self.bridge = Bridge()
        self.backend = GuiBackend(
            self.service, self.bridge, events=self.events, coordinator=self.coordinator, data_dir=data_dir
        )
        self.windows = WalletWindows(self.backend, data_dir, demo_broker_url=broker.url, callback_url=self.server.url)
        self.http = requests.Session()

    # --- quick set-up through the services (for tests about later windows) ----------------------------------------
    def set_up_account(self, passphrase: str | None = None, username: str = "alice") -> None:
        self.service.create(passphrase)
        info = self.service.add_broker(self.broker.url)
        self.service.trust_broker(info.broker_id)
        self.service.register(info.broker_id, username, PASSWORD)

    def buy(self, coins: int = 500, cents: int = 1) -> Any:
        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
        return self.service.buy_coins(self.broker.broker_id, coins, Money(cents, "EUR"), card=card)

    # --- a page handing a purchase over ---------------------------------------------------------------------------
    def offer(self, vendor: Any, item_id: str) -> dict[str, Any]:
        """Fetch a quote from ``vendor`` and post it to the callback as the vendor's page would."""
        resp = self.http.post(f"{vendor.url}/v1/quotes", json={"item_id": item_id}, timeout=10)
        resp.raise_for_status()
        answer = self.http.post(
            f"{self.server.url}/v1/purchase",
            json=resp.json(),
            headers={"Origin": vendor.url},
            timeout=30,
        )
        body: dict[str, Any] = answer.json()
        body["_http_status"] = answer.status_code
        return body

    def poll(self, answer: dict[str, Any], origin: str) -> dict[str, Any]:
        resp = self.http.get(
            f"{self.server.url}/v1/purchase/{answer['prompt_id']}",
            params={"token": answer["poll_token"]},
            headers={"Origin": origin},
            timeout=10,
        )
        result: dict[str, Any] = resp.json()
        return result

    def close(self) -> None:
        self.windows.shutdown()
        for widget in (self.windows.window, self.windows.wizard, self.windows.unlock_dialog):
            if widget is not None:
                widget.close()
        if self.windows.prompts.current is not None:
            self.windows.prompts.current.close_from_outside()
        self.windows.tray.hide()
        self.server.stop()
        self.coordinator.shutdown()
        self.service.close()
        self.http.close()


def compose(background: QWidget, dialog: QWidget | None = None, size: tuple[int, int] = (1280, 800)) -> QPixmap:
    """A 1280x800 picture of ``background`` with ``dialog`` (if any) centred on top of a dimmed copy of it."""
    background.resize(*size)
    shot = background.grab()
    if dialog is None:
        return shot
    canvas = QPixmap(shot.size())
    canvas.fill(Qt.GlobalColor.white)
    painter = QPainter(canvas)
    painter.drawPixmap(0, 0, shot)
    painter.fillRect(QRect(QPoint(0, 0), shot.size()), QColor(15, 23, 42, 110))
    front = dialog.grab()
    x = (shot.width() - front.width()) // 2
    y = (shot.height() - front.height()) // 2
    painter.setPen(QColor(15, 23, 42, 60))
    painter.drawRect(x - 1, y - 1, front.width() + 1, front.height() + 1)
    painter.drawPixmap(x, y, front)
    painter.end()
    return canvas


def save_screenshot(pixmap: QPixmap, name: str) -> Path:
    """Save as PNG under docs/screenshots/ when it is missing or ``NETPAY_UPDATE_SCREENSHOTS=1`` (so ordinary test
    runs do not rewrite tracked files), else in a temporary folder; checks the size stays under 400 KB."""
    target = SCREENSHOTS
    if (SCREENSHOTS / name).exists() and os.environ.get("NETPAY_UPDATE_SCREENSHOTS") != "1":
        target = Path(tempfile.gettempdir()) / "netpay-screenshots"
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    assert pixmap.size().width() == 1280 and pixmap.size().height() == 800, pixmap.size()
    assert pixmap.save(str(path), "PNG", 9), f"could not save {path}"
    assert path.stat().st_size < 400_000, f"{name} is {path.stat().st_size} bytes"
    return path

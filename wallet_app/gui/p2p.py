"""Puts the P2P pages (Sharing, Find) into the main window's sidebar, for the broker chosen in the sharing settings
(else the first the wallet has an account at). Sharing stays off until the user presses "Start sharing", and comes
back when the wallet starts if it was on (and ``sharing_at_login`` allows). The peer server's interface, port,
default price and broker are the sharing settings (:mod:`wallet_app.peer.config`, edited in the Sharing page's
Settings dialog); ``sharing_public_url``, ``sharing_tls_cert`` and ``sharing_tls_key`` are further wallet settings.
Nothing here touches the browser callback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QListWidgetItem

from netpay.errors import Forbidden
from wallet_app.gui.errors import describe
from wallet_app.gui.find import FindPage
from wallet_app.gui.sharing import SharingPage
from wallet_app.gui.sharing_settings import SharingSettingsDialog
from wallet_app.gui.theme import icon
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.peer.checkout import PromptedPayment
from wallet_app.peer.config import load_config
from wallet_app.peer.server import PeerServer, PeerSettings
from wallet_app.peer.vaultdb import PeerVault

__all__ = ["P2PPages", "install_p2p_pages"]


@dataclass
class P2PPages:
    """The pages and the peer server behind them (stop it when the wallet quits or locks)."""

    peer: PeerServer
    sharing: SharingPage
    find: FindPage

    resume: Any = None  # Callable[[], None]: share again if sharing was on (at start, and after an unlock)

    def shutdown(self) -> None:
        self.peer.stop()


def _no_prompt(_checked: Any) -> Any:
    raise Forbidden("buying needs the wallet's purchase prompt, which is not running", reason="no_prompt")


def install_p2p_pages(window: Any, backend: Any) -> P2PPages | None:
    """Add Sharing and Find to ``window`` (a :class:`~wallet_app.gui.main_window.MainWindow`); None when no broker
    account exists yet (the pages need one: the broker certifies the peer and indexes its files)."""
    service = backend.service
    brokers = [b for b in service.brokers() if b.trusted and b.username]
    if not brokers:
        return None
    config = load_config(service)
    broker = next((b for b in brokers if b.broker_id == config.broker_id), brokers[0])
    data = Path(service.session.directory) / "peer"
    settings = PeerSettings(
        data_dir=data, broker_url=broker.url, broker_public_key=broker.public_key_hex,
        display_name=str(service.get_setting("sharing_name", f"{broker.username}'s files")),
        host=config.host, port=config.port,
        public_url=str(service.get_setting("sharing_public_url", "")), enabled=True,
        tls_cert=service.get_setting("sharing_tls_cert"), tls_key=service.get_setting("sharing_tls_key"),
        currency=broker.currencies[0] if broker.currencies else "EUR",
    )  # fmt: skip

    def token() -> str:
        result: str = service.brokers_desk.call(broker.broker_id, lambda _client, t: t)
        return result

    peer = PeerServer(settings, token, PeerVault(service.session))
    choices = [(b.broker_id, b.name) for b in brokers]
    sharing = SharingPage(peer, window.bridge,
                          settings_dialog=lambda parent: SharingSettingsDialog(window.bridge, service, peer, choices,
                                                                               parent))  # fmt: skip
    sharing.price.setValue(config.default_price)
    pay = PromptedPayment(backend.coordinator, service) if backend.coordinator is not None else _no_prompt
    find = FindPage(PeerBuyer(service, Path.home() / "Downloads" / "NetPay"), broker.url, window.bridge, pay)
    for key, name, page in (("sharing", window.tr("Sharing"), sharing), ("find", window.tr("Find"), find)):
        item = QListWidgetItem(icon(key), name)
        item.setSizeHint(QSize(180, 40))
        window.sidebar.addItem(item)
        window.stack.addWidget(page)
        window.pages.append(page)

    def resumed(on: bool) -> None:
        sharing.refresh()
        sharing.load_broker_account()
        if on:
            window.bridge.run(peer.standing, on_done=sharing.show_standing, on_error=lambda _e: None)

    def not_resumed(exc: BaseException) -> None:
        sharing.refresh()
        sharing.error.setText(window.tr("Sharing could not start again: %s") % describe(exc))
        sharing.error.show()

    def resume() -> None:
        window.bridge.run(peer.resume, on_done=resumed, on_error=not_resumed)

    resume()  # sharing was on when the wallet quit
    return P2PPages(peer, sharing, find, resume)

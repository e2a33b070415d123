"""The sharing settings dialog (issue 20): bad values are named and change nothing; good ones are stored in the
vault and move a running peer server at once; screenshot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.broker import RunningBroker
from tests.support.gui import compose, save_screenshot
from tests.support.peer import make_peer
from tests.support.wallet import funded_wallet
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.sharing import SharingPage
from wallet_app.gui.sharing_settings import SharingSettingsDialog
from wallet_app.peer.config import SharingConfig, load_config


def _settings_rows(wallet: Any) -> list[Any]:
    return wallet.vault.query("SELECT key, value_json FROM settings WHERE key LIKE 'sharing_%' ORDER BY key")


@pytest.fixture
def page(qtbot: Any, qapp: Any, wallet_factory: Any, broker: RunningBroker, tmp_path: Path) -> Any:
    from wallet_app.gui.theme import apply_theme

    apply_theme(qapp, dark=False)
    wallet = wallet_factory("seller")
    broker_id = funded_wallet(wallet, broker.url, chains=0)
    peer = make_peer(wallet, broker_id, broker.url, broker.public_key.hex, tmp_path / "peer")
    bridge = Bridge()
    brokers = [(broker_id, "Test Broker")]

    def dialog(parent: Any) -> SharingSettingsDialog:
        return SharingSettingsDialog(bridge, wallet, peer, brokers, parent)

    sharing = SharingPage(peer, bridge, settings_dialog=dialog)
    qtbot.addWidget(sharing)
    yield sharing, wallet, peer, broker_id
    peer.stop()
    bridge.wait_idle()


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("host", "example.com", "is not an IP address"),
        ("host", "127.0.0.1; rm -rf /", "is not an IP address"),
        ("host", "224.0.0.1", "multicast"),
        ("port", "80", "from 1024 to 65535"),
        ("port", "70000", "from 1024 to 65535"),
        ("port", "-1", "from 1024 to 65535"),
        ("port", "8765", "browser callback"),
        ("price", "0", "above zero"),
        ("price", "abc", "above zero"),
        ("price", "100.01", "at most €100.00"),
        ("price", "0.001", "above zero"),
    ],
)
def test_a_bad_value_is_named_and_nothing_is_stored(qtbot: Any, page: Any, field: str, text: str, says: str) -> None:
    sharing, wallet, _peer, _ = page
    before = _settings_rows(wallet)
    dialog = sharing.open_settings()
    qtbot.addWidget(dialog)
    dialog.price.setText("0.07")  # a good value beside the bad one is not stored either
    getattr(dialog, field).setText(text)
    dialog.action_button.click()
    qtbot.waitUntil(lambda: not dialog.error.isHidden(), timeout=10000)
    assert says in dialog.error.text() and dialog.isVisible()
    assert _settings_rows(wallet) == before and load_config(wallet) == SharingConfig()
    assert sharing.price.value() == 5


def test_good_values_are_stored_and_move_a_running_server(qtbot: Any, page: Any, tmp_path: Path) -> None:
    sharing, wallet, peer, broker_id = page
    (tmp_path / "a.txt").write_bytes(os.urandom(100))
    peer.shares.add_file(tmp_path / "a.txt", 3)
    old_url = peer.switch_on()
    sharing.refresh()
    dialog = sharing.open_settings()
    qtbot.addWidget(dialog)
    assert dialog.host.text() == "127.0.0.1" and dialog.port.text() == "0" and dialog.price.text() == "€0.05"
    from netpay_web.live import free_port

    port = free_port("127.0.0.1")
    dialog.port.setText(str(port))
    dialog.price.setText("0,12")
    dialog.broker.setCurrentIndex(1)
    dialog.at_login.setChecked(False)
    save_screenshot(compose(sharing, dialog), "wallet-sharing-settings.png")
    dialog.action_button.click()
    qtbot.waitUntil(lambda: dialog.saved is not None, timeout=20000)
    assert load_config(wallet) == SharingConfig("127.0.0.1", port, 12, broker_id, False)
    assert sharing.price.value() == 12
    assert peer.running and peer.base_url == f"http://127.0.0.1:{port}" != old_url
    assert requests.get(f"{peer.base_url}/v1/catalog", timeout=10).json()["items"][0]["title"] == "a.txt"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{old_url}/v1/catalog", timeout=5)
    # and sharing does not come back by itself at the next start, as asked
    again = make_peer(wallet, broker_id, peer.settings.broker_url, peer.settings.broker_public_key, tmp_path / "p")
    assert not again.resume()

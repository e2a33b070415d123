"""The Sharing and Find pages (issue 20) with real wallets, a real broker and a real peer server; screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from tests.support.broker import RunningBroker
from tests.support.gui import compose, save_screenshot
from tests.support.peer import make_peer
from tests.support.wallet import funded_wallet
from wallet_app.callback.coordinator import PurchaseCoordinator
from wallet_app.callback.origins import OriginRegistry
from wallet_app.callback.services_adapter import ServicesWalletPort
from wallet_app.gui.backend import GuiBackend
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.find import FindPage
from wallet_app.gui.prompt import PromptQueue, PurchasePrompt
from wallet_app.gui.sharing import SharingPage
from wallet_app.gui.sharing_settings import SharingSettingsDialog
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.peer.checkout import PromptedPayment

FILES = [("Lecture 1 - introduction.mp4", 48_000_000 // 64, 12), ("Field recordings, harbour at dawn.flac",
         900_000, 8), ("Sketchbook scans 2026.pdf", 3_200_000 // 4, 5), ("Knitting pattern - winter hat.pdf",
         210_000, 2)]  # fmt: skip


def test_share_find_buy_and_screenshots(qtbot: Any, qapp: Any, wallet_factory: Any, broker: RunningBroker,
                                        tmp_path: Path) -> None:  # fmt: skip
    from wallet_app.gui.theme import apply_theme

    apply_theme(qapp, dark=False)
    seller_wallet = wallet_factory("seller")
    broker_id = funded_wallet(seller_wallet, broker.url, chains=0)
    peer = make_peer(seller_wallet, broker_id, broker.url, broker.public_key.hex, tmp_path / "peer")
    bridge = Bridge()
    choices = [(broker_id, "Test Broker")]
    sharing = SharingPage(
        peer, bridge, settings_dialog=lambda parent: SharingSettingsDialog(bridge, seller_wallet, peer, choices, parent)
    )
    qtbot.addWidget(sharing)
    assert sharing.toggle.text() == "Start sharing" and "off" in sharing.state.text()
    folder = tmp_path / "shared"
    folder.mkdir()
    paths = []
    for name, size, price in FILES:
        (folder / name).write_bytes(os.urandom(size))
        peer.shares.add_file(folder / name, price)
        paths.append(folder / name)
    sharing.toggle.click()
    qtbot.waitUntil(lambda: peer.running and sharing.toggle.text() == "Stop sharing", timeout=20000)

    buyer_wallet = wallet_factory("buyer")
    funded_wallet(buyer_wallet, broker.url, chains=1, coins=200)
    # the buyer's window wiring: the purchase coordinator behind the browser hand-off and its prompt queue
    port = ServicesWalletPort(buyer_wallet)
    coordinator = PurchaseCoordinator(port, registry=OriginRegistry(port.trusted_broker_keys))
    backend = GuiBackend(buyer_wallet, bridge, coordinator=coordinator)
    prompts = PromptQueue(backend.approve, backend.decline, bridge.run)
    bridge.prompt_requested.connect(prompts.add)
    find = FindPage(PeerBuyer(buyer_wallet, tmp_path / "downloads"), broker.url, bridge,
                    PromptedPayment(coordinator, buyer_wallet))  # fmt: skip
    qtbot.addWidget(find)
    find.query.setText("pdf")
    find.search_button.click()
    qtbot.waitUntil(lambda: find.table.rowCount() == 2, timeout=20000)
    assert find.page_label.text() == "Page 1 of 1 · 2 results"
    find.query.setText("")
    find.search_button.click()
    qtbot.waitUntil(lambda: find.table.rowCount() == 4, timeout=20000)

    # declined in the prompt: nothing paid, nothing downloaded
    find.table.selectRow(1)  # the sketchbook, 5 cents
    find.buy_button.click()
    qtbot.waitUntil(lambda: prompts.current is not None, timeout=20000)
    prompts.current.decline_button.click()
    qtbot.waitUntil(lambda: not find.error.isHidden(), timeout=20000)
    assert find.error.text() == "You declined; nothing was paid."
    assert peer.earnings()["downloads"] == 0 and not list((tmp_path / "downloads").glob("*"))

    find.table.selectRow(0)  # cheapest first: the knitting pattern, 2 cents
    find.buy_button.click()
    qtbot.waitUntil(lambda: prompts.current is not None, timeout=20000)
    dialog = prompts.current
    assert dialog.price_label.text() == "€0.02" and dialog.after_label.text() == "€1.98"
    assert "Alice's files" in dialog.allow_check.text() and dialog.item_label.text() == FILES[3][0]
    save_screenshot(compose(find, dialog), "wallet-find-prompt.png")
    dialog.allow_check.setChecked(True)  # from now on, pay Alice's files without asking (up to €0.04)
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 5000)
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not find.success.isHidden() or not find.error.isHidden(), timeout=30000)
    assert not find.success.isHidden(), find.error.text()
    bought = next((tmp_path / "downloads").glob("Knitting pattern*"))
    assert bought.read_bytes() == paths[3].read_bytes()
    assert find.success.text() == f"Saved {bought.name} (fingerprint checked); its receipt is in Activity."
    assert [a.vendor_id for a in buyer_wallet.allowances()] == [peer.peer_id]
    save_screenshot(compose(find), "wallet-find.png")
    coordinator.shutdown()

    sharing.refresh()
    sharing.show_standing(peer.standing())
    assert sharing.earnings.text() == ("1 download sold · coins received €0.02 · waiting for redemption €0.02 · "
                                       "redeemed at the broker €0.00")  # fmt: skip
    assert "supplied €0.00" in sharing.standing.text()
    sharing.redeem_button.click()  # every amount the seller owns: received, waiting, redeemed, held at the broker
    qtbot.waitUntil(lambda: "redeemed at the broker €0.02" in sharing.earnings.text(), timeout=20000)
    held = "At the broker: €0.02 held for you as a seller · €0.00 paid out"
    qtbot.waitUntil(lambda: sharing.at_broker.text() == held, timeout=20000)  # asked again after the redemption
    assert "waiting for redemption €0.00" in sharing.earnings.text()
    qtbot.waitUntil(lambda: "supplied €0.02" in sharing.standing.text(), timeout=20000)
    save_screenshot(compose(sharing), "wallet-sharing.png")
    sharing.toggle.click()
    qtbot.waitUntil(lambda: not peer.running and sharing.toggle.text() == "Start sharing", timeout=20000)
    bridge.wait_idle()


def test_the_main_window_has_sharing_and_find_with_sharing_off(qtbot: Any, gui_wallet: Any, tmp_path: Path) -> None:
    gui_wallet.set_up_account()
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    names = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert names[-2:] == ["Sharing", "Find"]
    p2p = gui_wallet.windows.p2p
    assert p2p is not None and not p2p.peer.running  # off until the user presses Start sharing
    assert p2p.peer.settings.host == "127.0.0.1"
    callback_port = int(gui_wallet.server.url.rsplit(":", 1)[1])
    window.sidebar.setCurrentRow(len(names) - 2)
    assert window.stack.currentWidget() is p2p.sharing
    p2p.peer.shares.add_file(_one_file(tmp_path), 3)
    p2p.sharing.toggle.click()
    qtbot.waitUntil(lambda: p2p.peer.running, timeout=20000)
    assert p2p.peer.port != callback_port  # its own port, never the callback's
    gui_wallet.windows.shutdown()
    assert not p2p.peer.running  # quitting the wallet stops sharing


def _one_file(tmp_path: Path) -> Path:
    path = tmp_path / "one.txt"
    path.write_bytes(b"one file")
    return path


def test_sharing_that_was_on_comes_back_when_the_window_opens(qtbot: Any, gui_wallet: Any, tmp_path: Path) -> None:
    gui_wallet.set_up_account()
    gui_wallet.service.set_setting("sharing_on", True)  # as the last run left it
    gui_wallet.windows.start()
    p2p = gui_wallet.windows.p2p
    qtbot.waitUntil(lambda: p2p.peer.running, timeout=20000)
    qtbot.waitUntil(lambda: p2p.sharing.toggle.text() == "Stop sharing", timeout=20000)
    gui_wallet.windows.shutdown()
    assert not p2p.peer.running and gui_wallet.service.get_setting("sharing_on") is True  # quitting keeps it on


def test_locking_stops_sharing_with_a_message_and_unlocking_brings_it_back(
    qtbot: Any, gui_wallet: Any, tmp_path: Path
) -> None:
    gui_wallet.set_up_account()
    gui_wallet.windows.start()
    p2p = gui_wallet.windows.p2p
    p2p.peer.shares.add_file(_one_file(tmp_path), 3)
    p2p.sharing.toggle.click()
    qtbot.waitUntil(lambda: gui_wallet.service.get_setting("sharing_on") is True, timeout=20000)  # switched on
    url = p2p.peer.base_url
    gui_wallet.windows.lock()
    qtbot.waitUntil(lambda: gui_wallet.service.state == "locked", timeout=20000)
    # at once, or as soon as an operation under way ends (the lock does not wait for it)
    qtbot.waitUntil(lambda: not p2p.peer.running, timeout=20000)
    assert p2p.peer.stopped_because == "Sharing stopped because the wallet locked."
    gui_wallet.service.unlock()
    gui_wallet.windows.show_main()
    qtbot.waitUntil(lambda: p2p.peer.running, timeout=20000)
    assert p2p.peer.base_url == url and p2p.peer.stopped_because == ""
    gui_wallet.windows.shutdown()

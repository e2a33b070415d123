"""The Sharing and Find pages (issue 20) with real wallets, a real broker and a real peer server; screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support.broker import RunningBroker
from tests.support.gui import compose, save_screenshot
from tests.support.peer import make_peer
from tests.support.wallet import funded_wallet
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.find import FindPage
from wallet_app.gui.sharing import SharingPage
from wallet_app.peer.buyer import PeerBuyer

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
    sharing = SharingPage(peer, bridge)
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
    find = FindPage(PeerBuyer(buyer_wallet, tmp_path / "downloads"), broker.url, bridge)
    qtbot.addWidget(find)
    asked: list[str] = []
    find.confirm = lambda text: asked.append(text) or True
    find.query.setText("pdf")
    find.search_button.click()
    qtbot.waitUntil(lambda: find.table.rowCount() == 2, timeout=20000)
    assert find.page_label.text() == "Page 1 of 1 · 2 results"
    find.query.setText("")
    find.search_button.click()
    qtbot.waitUntil(lambda: find.table.rowCount() == 4, timeout=20000)
    find.table.selectRow(0)  # cheapest first: the knitting pattern, 2 cents
    find.buy_button.click()
    qtbot.waitUntil(lambda: not find.success.isHidden() or not find.error.isHidden(), timeout=30000)
    assert not find.success.isHidden(), find.error.text()
    assert "Pay €0.02 to Alice's files" in asked[0] and "You will have €1.98 left" in asked[0]
    bought = next((tmp_path / "downloads").glob("Knitting pattern*"))
    assert bought.read_bytes() == paths[3].read_bytes()
    assert find.success.text() == f"Saved {bought.name} (fingerprint checked) with its receipt."
    save_screenshot(compose(find), "wallet-find.png")

    sharing.refresh()
    sharing.show_standing(peer.standing())
    assert sharing.earnings.text() == (
        "1 download sold · coins received €0.02 · waiting for redemption €0.02 · redeemed to your broker account €0.00"
    )
    assert "supplied €0.00" in sharing.standing.text()
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

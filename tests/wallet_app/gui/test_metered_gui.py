"""A metered session in the wallet's windows: the prompt says what the session may cost in all, the units are paid
with no prompt, the tray lists the running session with its units and total and ends it, and Activity shows one
line with the units and the total; screenshots of the prompt and of Activity."""

from __future__ import annotations

import requests
from PySide6.QtCore import Qt

from tests.support.gui import compose, save_screenshot
from tests.wallet_app.gui.test_wallet_actions import _ready
from wallet_app.gui.prompt import PurchasePrompt

PODCAST = "planet-podcast"


def _unit(gui_wallet, vendor, session_id: str, n: int) -> requests.Response:
    return gui_wallet.http.post(f"{gui_wallet.server.url}/v1/metered/unit", json={"session_id": session_id,
                                "unit_no": n}, headers={"Origin": vendor.url}, timeout=30)  # fmt: skip


def test_metered_session_prompt_tray_and_activity(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    answer = gui_wallet.offer(vendor, PODCAST)
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    dialog = gui_wallet.windows.prompts.current
    texts = [w.text() for w in dialog.findChildren(type(dialog.price_label))]
    assert any("€0.01 for every 30 s of audio" in t and "at most 20 units (€0.20)" in t for t in texts), texts
    assert "Price of the first 30 s of audio" in texts
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    save_screenshot(compose(window, dialog), "wallet-metered-prompt.png")
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "paid", timeout=10000)
    session_id = gui_wallet.poll(answer, vendor.url)["session_id"]
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is None, timeout=5000)
    for n in (2, 3, 4):
        resp = _unit(gui_wallet, vendor, session_id, n)
        assert resp.status_code == 200, resp.text
    assert gui_wallet.windows.prompts.current is None  # no prompt for the units
    tray = gui_wallet.windows.tray
    qtbot.waitUntil(lambda: session_id in tray.metered_actions
                    and "4 units" in tray.metered_actions[session_id].text(), timeout=5000)  # fmt: skip
    action = tray.metered_actions[session_id]
    assert action.text() == "End The Planet Podcast: this week in Metropolis (4 units, €0.04)"
    assert "1 metered session running" in tray.tooltip
    window.show_page(window.PAGES.index("activity"))
    page = window.activity_page
    qtbot.waitUntil(lambda: any(e.kind == "metered" and e.amount.amount == 4 for e in page._entries), timeout=5000)
    rows = [[page.table.item(r, c).text() for c in range(5)] for r in range(page.table.rowCount())]
    metered_rows = [r for r in rows if r[1].startswith("Pay as you use")]
    assert len(metered_rows) == 1
    assert metered_rows[0][1:] == ["Pay as you use: The Planet Podcast: this week in Metropolis · 4 units of 30 s "
                                   "of audio", "Daily Planet", "−€0.04", "Running"]  # fmt: skip
    assert not [r for r in rows if r[1] == "The Planet Podcast: this week in Metropolis"]  # units folded in
    window.refresh()
    qtbot.waitUntil(lambda: window.balance_text() == "€4.96", timeout=5000)  # 500 coins less 4 units
    qtbot.wait(50)
    save_screenshot(compose(window), "wallet-metered-activity.png")
    tray.menu.adjustSize()
    save_screenshot(compose(window, tray.menu), "wallet-metered-tray.png")
    # the user ends it from the tray: the menu entry goes, the shop's session ends, no further unit is paid
    action.trigger()
    qtbot.waitUntil(lambda: session_id not in tray.metered_actions, timeout=10000)
    qtbot.waitUntil(lambda: vendor.vendor.store.one("SELECT status FROM metered_sessions")["status"] == "ended",
                    timeout=10000)  # fmt: skip
    late = _unit(gui_wallet, vendor, session_id, 5)
    assert late.status_code == 409 and late.json()["error"]["details"]["reason"] == "user"
    window.refresh()
    qtbot.waitUntil(lambda: any(e.kind == "metered" and e.status == "ended" for e in page._entries), timeout=5000)
    assert vendor.vendor.store.one("SELECT units_paid FROM metered_sessions")["units_paid"] == 4

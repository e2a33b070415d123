"""How the windows look: messages are never cut, disabled buttons look disabled and say why, plurals read right,
the status bar keeps off the window's edge, an empty table says so in its place. Each test saves what it looked at
under ``$TMPDIR/netpay-screenshots/looks-*.png``."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QTableWidget, QWidget

from netpay.money import Money
from tests.support.gui import compose
from tests.support.vendor import CARDS
from wallet_app.gui.formatting import plural

SHOTS = Path(tempfile.gettempdir()) / "netpay-screenshots"


def _save(widget_or_pixmap, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    pixmap = widget_or_pixmap.grab() if isinstance(widget_or_pixmap, QWidget) else widget_or_pixmap
    assert pixmap.save(str(SHOTS / f"looks-{name}.png"), "PNG")


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _uncut(label: QLabel) -> None:
    """The label shows all its (wrapped) lines and is not squeezed below its own size hint."""
    assert label.isVisible(), label.text()
    need = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
    assert label.height() >= need, f"{label.text()!r}: {label.height()} px shown, {need} px needed"


def _colours(image: QImage) -> set[int]:
    return {image.pixel(x, y) & 0xFFFFFF for y in range(image.height()) for x in range(image.width())}


def test_unlock_messages_show_in_full(qtbot, gui_wallet):
    gui_wallet.set_up_account(passphrase="a long passphrase")
    gui_wallet.service.lock()
    gui_wallet.windows.start()
    dialog = gui_wallet.windows.unlock_dialog
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.windowTitle() == "Unlock your wallet"  # the platform adds " — NetPay Wallet" itself
    _click(qtbot, dialog.action_button)  # empty passphrase
    _uncut(dialog.error)
    _save(dialog, "unlock-empty")
    dialog.passphrase.setText("not the passphrase")
    _click(qtbot, dialog.action_button)
    qtbot.waitUntil(lambda: not dialog.working and dialog.error.isVisible(), timeout=10000)
    assert "does not open this wallet" in dialog.error.text()
    _uncut(dialog.error)
    assert dialog.error.heightForWidth(dialog.error.width()) > dialog.error.fontMetrics().height() * 2  # 2 lines
    _save(dialog, "unlock-wrong")
    tall = dialog.height()
    dialog.error.hide()  # and the space goes when the message goes
    assert dialog.height() < tall - dialog.error.fontMetrics().height()


def test_return_dialog_keeps_its_rows_after_the_refund(qtbot, gui_wallet):
    gui_wallet.set_up_account()
    chain = gui_wallet.buy(200, 1)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    assert window.coins_page.select_chain(chain.chain_id)
    dialog = window.return_chain(window.coins_page.table.selected_data())
    qtbot.waitUntil(dialog.isVisible)
    _click(qtbot, dialog.action_button)
    qtbot.waitUntil(lambda: not dialog.working and dialog.success.isVisible(), timeout=20000)
    _uncut(dialog.success)
    rows = [dialog.form.itemAt(r, dialog.form.ItemRole.LabelRole).widget() for r in range(dialog.form.rowCount())]
    assert [r.text() for r in rows] == ["Chain", "Coins left", "Expected refund"]
    for row in rows:
        _uncut(row)
    _save(compose(window, dialog), "return-refunded")


def test_disabled_red_buttons_look_disabled_and_say_why(qtbot, gui_wallet, vendor):
    gui_wallet.set_up_account()
    chain = gui_wallet.buy(200, 1)
    gui_wallet.service.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(100, "EUR"))
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    page = window.coins_page
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=5000)
    button = page.return_button
    assert not button.isEnabled() and "Select a chain" in button.toolTip()
    disabled = _colours(button.grab().toImage())
    _save(compose(window), "coins-nothing-selected")
    page.select_chain(chain.chain_id)
    assert button.isEnabled()
    enabled = _colours(button.grab().toImage())
    danger = QColor("#b91c1c").rgb() & 0xFFFFFF  # the red text of an enabled Danger button (light theme)
    assert danger in enabled and danger not in disabled

    gui_wallet.service.return_chain(chain.chain_id)
    window.refresh()
    qtbot.waitUntil(lambda: page.table.item(0, 7).text() == "Returned", timeout=5000)
    page.select_chain(chain.chain_id)
    assert not button.isEnabled() and "Returned" in button.toolTip()

    window.show_page(3)
    revoke = window.allowances_page.revoke_button
    qtbot.waitUntil(lambda: window.allowances_page.table.rowCount() == 1, timeout=5000)
    assert not revoke.isEnabled() and "Select an allowance" in revoke.toolTip()
    assert danger not in _colours(revoke.grab().toImage())
    window.allowances_page.select_vendor(vendor.vendor_id)
    assert revoke.isEnabled() and "Daily Planet" in revoke.toolTip()
    _save(compose(window), "allowance-selected")


def test_plurals_read_right_and_the_status_bar_keeps_off_the_edge(qtbot, gui_wallet, vendor, vendor_factory):
    assert plural(1, "%n chain", "%n chains") == "1 chain"
    assert plural(2, "%n chain", "%n chains") == "2 chains"
    assert plural(1200, "%n coin", "%n coins") == "1,200 coins"
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    gui_wallet.set_up_account()
    gui_wallet.buy(200, 1)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    captions = [w.text() for w in window.findChildren(QLabel) if w.objectName() == "BalanceCaption"]
    assert captions == ["NetPay Demo Broker · 1 chain"]
    gui_wallet.offer(vendor, "night-market-returns")
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.pending == 1, timeout=5000)
    qtbot.waitUntil(lambda: window.status_label.text().endswith("1 purchase waiting"), timeout=5000)
    gui_wallet.offer(cards, "thank-you-sunrise")
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.pending == 2, timeout=5000)
    qtbot.waitUntil(lambda: window.status_label.text().endswith("2 purchases waiting"), timeout=5000)
    prompt = gui_wallet.windows.prompts.current
    assert prompt.waiting_label.text() == "1 more purchase waiting"
    assert "2 purchases waiting for you" in gui_wallet.windows.tray.tooltip
    texts = [w.text() for top in (window, prompt) for w in top.findChildren(QLabel)]
    assert not [t for t in texts if "(s)" in t]
    shot = compose(window)
    _save(shot, "status-two-waiting")
    _save(prompt, "prompt-one-more-waiting")
    # The status bar's text ends at least 8 px before the window's right edge.
    bar = window.statusBar()
    image = shot.toImage()
    background = image.pixel(image.width() - 2, bar.y() + bar.height() // 2)
    text_x = [
        x
        for x in range(image.width() - 40, image.width())
        for y in range(bar.y() + 3, bar.y() + bar.height() - 3)
        if image.pixel(x, y) != background
    ]
    assert text_x and image.width() - 1 - max(text_x) >= 8, image.width() - 1 - max(text_x, default=0)


def test_an_empty_table_says_so_in_its_place(qtbot, gui_wallet):
    gui_wallet.set_up_account()
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(window.isVisible)
    window.resize(1280, 800)
    for index, page in ((0, window.coins_page), (3, window.allowances_page)):
        window.show_page(index)
        qtbot.waitUntil(lambda page=page: page.empty.isVisible(), timeout=5000)
        assert not page.table.isVisible()
        assert page.empty.height() > 300  # it fills the table's place, not a line under it
        assert page.empty.alignment() & Qt.AlignmentFlag.AlignCenter
    _save(compose(window), "allowances-empty")
    gui_wallet.buy(100, 1)
    window.show_page(0)
    qtbot.waitUntil(lambda: window.coins_page.table.isVisible(), timeout=5000)
    assert not window.coins_page.empty.isVisible()


def _texts(widget: QWidget) -> set[str]:
    """Every text a user can read on ``widget``: labels, buttons, checkboxes, combo items, table headers."""
    out: set[str] = set()
    for w in [widget, *widget.findChildren(QWidget)]:
        if isinstance(w, (QLabel, QAbstractButton)):
            out.add(w.text().replace("&", ""))
        elif isinstance(w, QComboBox):
            out.update(w.itemText(i) for i in range(w.count()))
        elif isinstance(w, QTableWidget):
            out.update(w.horizontalHeaderItem(c).text() for c in range(w.columnCount()))
    return out


def test_the_readme_names_the_buttons_and_boxes_the_wallet_shows(qtbot, gui_wallet, vendor):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    steps = readme.split("To follow it in a browser:", 1)[1].split("Ctrl+C stops everything", 1)[0]
    named = {" ".join(n.split()) for n in re.findall(r"\*\*([^*]+)\*\*", steps)}
    gui_wallet.set_up_account()
    chain = gui_wallet.buy(200, 1)
    gui_wallet.service.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(100, "EUR"))
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    window.coins_page.select_chain(chain.chain_id)
    shown = _texts(window)
    for dialog in (window.buy_coins(), window.return_chain(chain)):
        shown |= _texts(dialog)
        dialog.reject()
    gui_wallet.service.revoke_allowance(vendor.vendor_id)
    answer = gui_wallet.offer(vendor, "harbour-bridge-reopens")  # €0.05, as step 2 says
    assert answer["status"] == "pending"
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    shown |= _texts(gui_wallet.windows.prompts.current)
    shop_side = {"Buy"}  # the shop page's button (the Buy coins dialog has one too)
    for name in sorted(named - shop_side):
        pattern = re.escape(name).replace("…", ".*")
        assert any(re.fullmatch(pattern, text) for text in shown), f"the README names {name!r}; the wallet shows none"

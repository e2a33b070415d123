"""The purchase prompt against a live broker, vendors and the wallet's real callback: approve, decline, the Pay
delay, Enter never paying, Escape declining, prompts from two vendors queueing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import Qt

from tests.support.gui import compose, save_screenshot
from tests.support.vendor import CARDS
from wallet_app.gui.prompt import PurchasePrompt


def _ready(qtbot, gui_wallet):
    gui_wallet.set_up_account()
    gui_wallet.buy(500, 1)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: window.coins_page.table.rowCount() == 1, timeout=5000)
    return window


def _prompt(qtbot, gui_wallet) -> PurchasePrompt:
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is not None, timeout=5000)
    dialog = gui_wallet.windows.prompts.current
    assert dialog is not None
    return dialog


def test_approve_pays_only_after_the_delay_and_shows_the_certified_vendor(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    answer = gui_wallet.offer(vendor, "harbour-bridge-reopens")
    assert answer["status"] == "pending"
    dialog = _prompt(qtbot, gui_wallet)

    # What the customer sees: the certified name and origin, the item, the price and the balance after.
    assert dialog.prompt.vendor_name == "Daily Planet"
    assert dialog.prompt.origin == vendor.url
    assert "Harbour bridge reopens" in dialog.item_label.text()
    assert dialog.price_label.text() == "€0.05"
    assert dialog.after_label.text() == "€4.95"
    assert dialog.isVisible()

    # No default button; Pay is disabled at first, so early clicks and Enter do nothing.
    assert not dialog.pay_button.isDefault() and not dialog.pay_button.autoDefault()
    dialog.focus_gained()  # restart the delay here, so a slow machine cannot let it run out before the clicks
    assert not dialog.pay_button.isEnabled()
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.wait(100)
    assert gui_wallet.poll(answer, vendor.url)["status"] == "pending"
    assert dialog.isVisible()

    # Losing focus disables Pay again and restarts the delay.
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    save_screenshot(compose(window, dialog), "wallet-prompt.png")
    # (the offscreen platform does not move the focus between windows, so call what activation changes call)
    dialog.focus_lost()
    assert not dialog.pay_button.isEnabled()
    dialog.focus_gained()
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    assert gui_wallet.poll(answer, vendor.url)["status"] == "pending"
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)

    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "paid", timeout=10000)
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is None, timeout=5000)
    paid = gui_wallet.poll(answer, vendor.url)
    assert paid["access_token"]
    # The window follows: balance and activity show the purchase.
    qtbot.waitUntil(lambda: window.balance_text() == "€4.95", timeout=5000)
    qtbot.waitUntil(lambda: window.activity_page.table.rowCount() == 2, timeout=5000)


def test_escape_declines_and_nothing_is_paid(qtbot, gui_wallet, vendor):
    window = _ready(qtbot, gui_wallet)
    answer = gui_wallet.offer(vendor, "night-market-returns")
    dialog = _prompt(qtbot, gui_wallet)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "declined", timeout=5000)
    assert gui_wallet.windows.prompts.current is None
    assert [line.unspent.amount for line in gui_wallet.service.balance()] == [500]
    assert window.balance_text() == "€5.00"


def test_decline_button_and_prompts_from_two_vendors_queue(qtbot, gui_wallet, vendor, vendor_factory):
    _ready(qtbot, gui_wallet)
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    first = gui_wallet.offer(vendor, "observatory-finds-comet")
    second = gui_wallet.offer(cards, "thank-you-sunrise")
    assert first["status"] == second["status"] == "pending"
    dialog = _prompt(qtbot, gui_wallet)
    # One window at a time: the second waits behind the first, and says so.
    assert gui_wallet.windows.prompts.pending == 2
    assert dialog.prompt.vendor_name == "Daily Planet"
    assert dialog.waiting_label.isVisibleTo(dialog)
    assert "1" in dialog.waiting_label.text()
    assert gui_wallet.windows.tray.prompts_action.isEnabled()

    qtbot.mouseClick(dialog.decline_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(first, vendor.url)["status"] == "declined", timeout=5000)
    qtbot.waitUntil(
        lambda: gui_wallet.windows.prompts.current is not None and gui_wallet.windows.prompts.current is not dialog,
        timeout=5000,
    )
    nxt = gui_wallet.windows.prompts.current
    assert nxt.prompt.vendor_name == "Paper Lantern Cards"
    assert not nxt.waiting_label.isVisibleTo(nxt)
    qtbot.waitUntil(nxt.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    qtbot.mouseClick(nxt.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(second, cards.url)["status"] == "paid", timeout=10000)
    assert [line.unspent.amount for line in gui_wallet.service.balance()] == [490]


def test_approve_when_the_vendor_went_away_shows_why_and_offers_close(qtbot, gui_wallet, vendor):
    _ready(qtbot, gui_wallet)
    answer = gui_wallet.offer(vendor, "council-budget-explained")
    dialog = _prompt(qtbot, gui_wallet)
    vendor.stop()  # the shop goes down between the quote and the customer's click
    qtbot.waitUntil(dialog.pay_button.isEnabled, timeout=PurchasePrompt.PAY_DELAY_MS + 2000)
    qtbot.mouseClick(dialog.pay_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog), timeout=20000)
    assert "did not go through" in dialog.error.text()
    assert dialog.decline_button.text() == "Close" and dialog.decline_button.isEnabled()
    assert not dialog.pay_button.isEnabled()
    assert gui_wallet.poll(answer, vendor.url)["status"] == "failed"
    qtbot.mouseClick(dialog.decline_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.windows.prompts.current is None, timeout=5000)


def test_a_price_above_the_balance_never_enables_pay(qtbot, gui_wallet, vendor):
    gui_wallet.set_up_account()
    gui_wallet.buy(20, 1)  # €0.20; the day pass costs €0.50
    gui_wallet.windows.start()
    answer = gui_wallet.offer(vendor, "day-pass")
    dialog = _prompt(qtbot, gui_wallet)
    assert "not hold enough coins" in dialog.error.text() and dialog.after_label.text() == "not enough coins"
    qtbot.wait(PurchasePrompt.PAY_DELAY_MS + 300)
    assert not dialog.pay_button.isEnabled()
    qtbot.mouseClick(dialog.decline_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "declined", timeout=5000)


def test_the_allowance_limit_follows_its_checkbox_and_looks_it(qtbot, gui_wallet, vendor):
    """Unticked, the limit drop-down is disabled and drawn as disabled (it once looked ready to use); ticked, it is
    enabled and drawn as a normal field; the choice counts only while the box is ticked."""
    window = _ready(qtbot, gui_wallet)
    answer = gui_wallet.offer(vendor, "harbour-bridge-reopens")
    dialog = _prompt(qtbot, gui_wallet)
    combo = dialog.allow_limit
    assert not dialog.allow_check.isChecked() and not combo.isEnabled()
    assert dialog.chosen_limit() is None

    def text_colours() -> set[int]:
        image = combo.grab().toImage()
        return {image.pixel(x, y) & 0xFFFFFF for y in range(image.height()) for x in range(image.width())}

    unticked = text_colours()
    shots = Path(tempfile.gettempdir()) / "netpay-screenshots"
    shots.mkdir(exist_ok=True)
    assert compose(window, dialog).save(str(shots / "prompt-allowance-off.png"), "PNG")
    dialog.allow_check.setChecked(True)
    assert combo.isEnabled()
    ticked = text_colours()
    assert dialog.chosen_limit() == combo.currentData()
    white, disabled_fill = 0xFFFFFF, 0xF1F5F9  # the light theme's field and disabled-field backgrounds
    assert disabled_fill in unticked and white not in unticked
    assert white in ticked and disabled_fill not in ticked
    dialog.allow_check.setChecked(False)
    assert not combo.isEnabled() and dialog.chosen_limit() is None
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: gui_wallet.poll(answer, vendor.url)["status"] == "declined", timeout=5000)

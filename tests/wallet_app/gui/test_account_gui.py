"""The broker account in the window, against a live broker and vendors: the header card and the Brokers page show the
balance and statement; Buy coins says it pays from the account and does; refunds and cash-outs are Activity entries
the Refunds filter shows and the spending chart leaves out; a fresh wallet logging in to an account with chains it
lacks is offered Recover. Screenshots (new names) of each go to docs/screenshots/ as the gallery's do."""

from __future__ import annotations

import secrets

from PySide6.QtCore import Qt

from netpay.money import Money
from tests.support.broker import TEST_CARD
from tests.support.gui import PASSWORD, compose, save_screenshot
from tests.support.vendor import CARDS, pay
from wallet_app.gui.account import CashOutDialog, RecoverDialog


def _eur(cents: int) -> Money:
    return Money(cents, "EUR")


def _finish(qtbot, dialog):
    qtbot.mouseClick(dialog.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=20000)
    assert dialog.error.isHidden(), dialog.error.text()


def _header_texts(window) -> list[str]:
    out = []
    for i in range(window.balance_row.count()):
        card = window.balance_row.itemAt(i).widget()
        out.append(f"{card.amount.text()} | {card.caption.text()}")
    return out


def test_account_on_brokers_page_buy_from_account_refunds_and_cash_out(qtbot, gui_wallet, vendor, vendor_factory):
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    gui_wallet.set_up_account()
    service = gui_wallet.service
    bid = gui_wallet.broker.broker_id
    service.top_up(bid, _eur(2000), TEST_CARD, secrets.token_hex(8))  # the demo's €20.00
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: bid in window.brokers_page.panels, timeout=10000)
    assert "€20.00 | Test Broker account" in _header_texts(window) or any(
        t.startswith("€20.00 | ") and t.endswith(" account") for t in _header_texts(window)
    )
    assert window.brokers_page.panels[bid].balance.text() == "€20.00"

    # Buy coins: the dialog says the account pays and the card is not charged; then it does so.
    dialog = window.buy_coins()
    dialog.length.setValue(500)
    assert "your account (balance €20.00); the card is not charged" in dialog.split.text()
    assert dialog.paid_from() == (_eur(500), _eur(0))
    qtbot.wait(50)
    save_screenshot(compose(window, dialog), "wallet-buy-from-account.png")
    _finish(qtbot, dialog)
    qtbot.waitUntil(lambda: window.brokers_page.panels.get(bid) is not None
                    and window.brokers_page.panels[bid].balance.text() == "€15.00", timeout=10000)  # fmt: skip
    [view] = service.accounts()
    assert [e.kind for e in view.entries] == ["topup", "purchase"]  # no second card charge

    # A second chain, bigger than what is left: €15.00 from the account, €5.00 by card.
    dialog = window.buy_coins()
    dialog.coin_value.setCurrentIndex([v.amount for v in dialog.brokers[0].coin_values].index(5))
    dialog.length.setValue(400)
    assert dialog.paid_from() == (_eur(1500), _eur(500))
    assert "your account: €15.00 of its €15.00, and your card: €5.00" in dialog.split.text()
    _finish(qtbot, dialog)
    [view] = service.accounts()
    assert [(e.kind, e.amount.amount) for e in view.entries][2:] == [("topup", 500), ("purchase", -2000)]
    assert service.account_balance(bid) == _eur(0)

    # Spend, return one chain (a partial refund), cash it out.
    for item, shop in (("harbour-bridge-reopens", vendor), ("thank-you-sunrise", cards)):
        service.set_allowance(shop.vendor_id, shop.vendor_id, _eur(50), _eur(500))
        assert gui_wallet.offer(shop, item)["status"] == "paid"
    one_cent = next(c for c in service.list_chains() if c.coin_value == _eur(1))
    refund = service.return_chain(one_cent.chain_id)
    assert refund.amount == one_cent.unspent
    qtbot.waitUntil(lambda: window.brokers_page.panels.get(bid) is not None
                    and window.brokers_page.panels[bid].balance.text() == refund.format(), timeout=10000)  # fmt: skip
    cash = window.cash_out(bid)
    assert isinstance(cash, CashOutDialog) and cash.amount.text() == refund.format().lstrip("€")
    cash.amount.setText("1.00")
    _finish(qtbot, cash)
    assert service.account_balance(bid) == refund - _eur(100)

    window.show_page(1)
    qtbot.waitUntil(lambda: any(
        window.activity_page.table.item(r, 1).text().startswith("Paid back to test card")
        for r in range(window.activity_page.table.rowCount())), timeout=10000)  # fmt: skip
    table = window.activity_page.table
    rows = [[table.item(r, c).text() for c in range(5)] for r in range(table.rowCount())]
    refund_rows = [r for r in rows if r[1].startswith("Returned")]
    assert len(refund_rows) == 1 and refund_rows[0][3] == "+" + refund.format() and refund_rows[0][4] == "Done"
    assert refund_rows[0][2] == "Test Broker" or refund_rows[0][2] == service.brokers()[0].name
    cash_rows = [r for r in rows if r[1].startswith("Paid back")]
    assert len(cash_rows) == 1 and cash_rows[0][3] == "−€1.00"
    paid = sum(e.amount.amount for e in service.activity() if e.kind == "payment" and e.status == "settled")
    assert paid == 15  # refunds (€4.90 back) and the cash-out are not spending:
    assert window.spending_page.total_label.text().startswith(_eur(paid).format() + " spent")
    save_screenshot(compose(window), "wallet-activity-refund.png")
    window.activity_page.filter.setCurrentIndex(window.activity_page.FILTERS.index("return"))
    kinds = {table.item(r, 0).data(Qt.ItemDataRole.UserRole).kind for r in range(table.rowCount())}
    assert kinds == {"return", "cashout"} and table.rowCount() == 2
    assert not window.activity_page.open_button.isEnabled()
    window.activity_page.filter.setCurrentIndex(0)

    window.show_page(4)
    qtbot.waitUntil(lambda: window.brokers_page.panels.get(bid) is not None
                    and window.brokers_page.panels[bid].balance.text() == (refund - _eur(100)).format(),
                    timeout=10000)  # fmt: skip
    panel = window.brokers_page.panels[bid]
    texts = [panel.table.item(r, 1).text() for r in range(panel.table.rowCount())]
    assert texts[0].startswith("Paid back to test card") and any(t.startswith("Returned") for t in texts)
    save_screenshot(compose(window), "wallet-brokers-account.png")


def test_fresh_wallet_is_offered_recover_and_gets_the_refund(qtbot, gui_wallet, vendor):
    broker = gui_wallet.broker
    token = broker.new_customer("frank", PASSWORD, topup=1000)
    spent_cert, spent_chain = broker.buy_chain(token, length=300)
    broker.buy_chain(token, length=100, coin_value=2)
    assert pay(vendor, "harbour-bridge-reopens", spent_cert, spent_chain).status_code == 200
    vendor.vendor.reporter.flush()

    service = gui_wallet.service  # a new wallet on another computer: log in to the existing account
    service.create(None)
    info = service.add_broker(broker.url)
    service.trust_broker(info.broker_id)
    service.login(info.broker_id, "frank", PASSWORD)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: isinstance(window.account_dialog, RecoverDialog), timeout=10000)
    dialog = window.account_dialog
    assert dialog.table.rowCount() == 2 and dialog.action_button.text() == "Recover 2 chains"
    cells = {dialog.table.item(r, 0).key: [dialog.table.item(r, c).text() for c in range(6)] for r in range(2)}
    assert cells[spent_cert.body.chain_id.hex()][3:] == ["5", "Daily Planet", "€2.95"]
    qtbot.wait(50)
    save_screenshot(compose(window, dialog), "wallet-recover.png")
    _finish(qtbot, dialog)
    assert "2 chains returned: €4.95 refunded to your account." in dialog.success.text()
    assert service.account_balance(info.broker_id) == _eur(1000 - 300 - 200 + 495)
    dialog.accept()
    qtbot.waitUntil(lambda: window.brokers_page.panels.get(info.broker_id) is not None
                    and window.brokers_page.panels[info.broker_id].recover_button is None, timeout=10000)  # fmt: skip


def test_top_up_and_a_refused_cash_out(qtbot, gui_wallet):
    from wallet_app.gui.account import TopUpDialog

    gui_wallet.set_up_account()
    bid = gui_wallet.broker.broker_id
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    qtbot.waitUntil(lambda: bid in window.brokers_page.panels, timeout=10000)
    assert not window.brokers_page.panels[bid].cash_out_button.isEnabled()  # nothing to cash out yet
    dialog = window.top_up(bid)
    assert isinstance(dialog, TopUpDialog)
    dialog.amount.setText("7.50")
    key = dialog.key()
    assert dialog.key() == key  # the same request keeps its key (a retry is charged once)
    _finish(qtbot, dialog)
    assert dialog.new_balance == _eur(750)
    qtbot.waitUntil(lambda: window.brokers_page.panels.get(bid) is not None
                    and window.brokers_page.panels[bid].balance.text() == "€7.50", timeout=10000)  # fmt: skip

    cash = window.cash_out(bid)
    cash.amount.setText("8.00")  # more than the balance: said at once, nothing sent
    qtbot.mouseClick(cash.action_button, Qt.MouseButton.LeftButton)
    assert cash.error.isVisible() and "€7.50" in cash.error.text()
    cash.card_row.number.setText("4000 0000 0000 0002")  # a card that never paid in: the broker refuses
    cash.amount.setText("2.00")
    qtbot.mouseClick(cash.action_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not cash.working, timeout=20000)
    assert cash.error.isVisible() and cash.new_balance is None
    assert gui_wallet.service.account_balance(bid) == _eur(750)
    cash.reject()


def test_a_wallet_holding_chains_shows_recover_without_opening_it(qtbot, gui_wallet):
    """Another wallet of the same account bought a chain: the Brokers page says so and offers Recover, but the
    window does not push the dialog (that chain may be in use on the other computer)."""
    gui_wallet.set_up_account(username="gina")
    gui_wallet.buy(100, 1)
    broker = gui_wallet.broker
    token = broker.session.post(f"{broker.url}/v1/sessions", json={"username": "gina", "password": PASSWORD}).json()
    broker.buy_chain(token["token"], length=100, coin_value=2, card=True)
    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    bid = broker.broker_id
    qtbot.waitUntil(lambda: bid in window.brokers_page.panels
                    and window.brokers_page.panels[bid].recover_button is not None, timeout=10000)  # fmt: skip
    panel = window.brokers_page.panels[bid]
    assert panel.recover_line.text() == "1 chain bought on this account is not in this wallet (up to €2.00 unspent)."
    assert window.account_dialog is None
    qtbot.mouseClick(panel.recover_button, Qt.MouseButton.LeftButton)
    assert isinstance(window.account_dialog, RecoverDialog) and window.account_dialog.table.rowCount() == 1
    window.account_dialog.reject()

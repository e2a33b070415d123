"""A realistic session (two vendors, allowances, a returned chain), then a 1280x800 screenshot of every page.

The pictures go to docs/screenshots/ (shown in the README; rewritten with ``NETPAY_UPDATE_SCREENSHOTS=1``); the test
checks what each page shows, and ``save_screenshot`` that each is 1280x800 and under 400 KB.
"""

from __future__ import annotations

from netpay.money import Money
from tests.support.gui import compose, save_screenshot
from tests.support.vendor import CARDS

ARTICLES = ["harbour-bridge-reopens", "night-market-returns", "observatory-finds-comet", "council-budget-explained"]
GREETINGS = ["thank-you-sunrise", "happy-birthday-confetti"]


def test_every_page_with_real_purchases(qtbot, gui_wallet, vendor, vendor_factory):
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    gui_wallet.set_up_account()
    main_chain = gui_wallet.buy(1000, 1)
    spare = gui_wallet.buy(200, 5)
    service = gui_wallet.service
    service.set_allowance(vendor.vendor_id, "Daily Planet", Money(10, "EUR"), Money(100, "EUR"))
    service.set_allowance(cards.vendor_id, "Paper Lantern Cards", Money(20, "EUR"), Money(60, "EUR"))
    for item in ARTICLES:
        assert gui_wallet.offer(vendor, item)["status"] == "paid"
    for item in GREETINGS:
        assert gui_wallet.offer(cards, item)["status"] == "paid"
    service.return_chain(spare.chain_id)

    gui_wallet.windows.start()
    window = gui_wallet.windows.window
    # six purchases, two coin purchases (the returned one says so) and the refund of the returned chain
    qtbot.waitUntil(lambda: window.activity_page.table.rowCount() == 9, timeout=10000)
    statuses = [window.activity_page.table.item(r, 4).text() for r in range(9)]
    assert statuses.count("Paid · allowance") == 6 and "Returned" in statuses and "Done" in statuses
    # 4 articles (18c) + 2 cards (25c) = 43c, paid from either chain; then the 5c chain was returned.
    [line] = service.balance()
    assert window.balance_text() == line.unspent.format()
    assert line.unspent.amount == 1000 - sum(
        c.settled * c.coin_value.amount for c in service.list_chains() if c.coin_value.amount == 1
    )
    assert window.coins_page.table.rowCount() == 2
    assert main_chain.chain_id in {window.coins_page.table.item(r, 0).key for r in range(2)}
    assert window.allowances_page.table.rowCount() == 2
    assert "€0.43 spent" in window.spending_page.total_label.text()
    assert line.unspent.format() in gui_wallet.windows.tray.tooltip

    names = ["coins", "activity", "spending", "allowances", "brokers"]
    for index, name in enumerate(names):
        window.show_page(index)
        qtbot.wait(50)
        save_screenshot(compose(window), f"wallet-{name}.png")

"""The broker account in the wallet, against a real broker and real vendors on loopback: balance and statement,
buying from the account / the card / both, top-ups and cash-outs, refunds in Activity, and recovering the chains of a
lost wallet from a fresh one (one custodian down, one answering garbage; the broker's grace period is passed with
the broker's own clock setting, not with sleeps)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from netpay.errors import IdempotencyConflict, InsufficientFunds
from netpay.money import Money
from tests.support.broker import TEST_CARD, RunningBroker, TestVendor, start_broker
from tests.support.vendor import CARDS, RunningVendor, pay
from wallet_app.services import WalletService

GRACE_S = 30
PASSWORD = "correct horse battery"


class Clock:
    """The broker's clock: wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return int(time.time()) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(tmp_path: Path, clock: Clock) -> Iterator[RunningBroker]:
    """This module's broker keeps a close grace period (custodians get GRACE_S to answer) on a movable clock."""
    running = start_broker(tmp_path / "broker", close_grace_s=GRACE_S, clock=clock)
    yield running
    running.stop()


def _eur(cents: int) -> Money:
    return Money(cents, "EUR")


def _trial_balance(broker: RunningBroker) -> dict[str, Any]:
    tb: dict[str, Any] = broker.session.get(
        f"{broker.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": broker.operator_token}
    ).json()
    assert tb["balanced"] and all(tb["checks"].values()), tb
    return tb


def _logged_in(wallet: WalletService, broker: RunningBroker, username: str, register: bool = True) -> str:
    info = wallet.add_broker(broker.url)
    wallet.trust_broker(info.broker_id)
    (wallet.register if register else wallet.login)(info.broker_id, username, PASSWORD)
    return info.broker_id


def test_account_balance_statement_and_buying_from_account_card_and_both(
    wallet: WalletService, broker: RunningBroker
) -> None:
    bid = _logged_in(wallet, broker, "alice")
    [view] = wallet.accounts()  # fetched right after registering
    assert view.balance == _eur(0) and view.entries == () and view.username == "alice"
    assert wallet.top_up(bid, _eur(300), TEST_CARD, secrets.token_hex(8)) == _eur(300)
    assert wallet.account_balance(bid) == _eur(300)

    wallet.buy_coins(bid, 200, _eur(1), card=None)  # from the account alone
    assert wallet.account_balance(bid) == _eur(100)
    wallet.buy_coins(bid, 25, _eur(10), card=TEST_CARD)  # €1.00 from the account, €1.50 by card
    assert wallet.account_balance(bid) == _eur(0)
    wallet.buy_coins(bid, 20, _eur(2), card=TEST_CARD)  # by card alone
    assert wallet.account_balance(bid) == _eur(0)

    [view] = wallet.accounts()
    assert [(e.kind, e.amount.amount) for e in view.entries] == [
        ("topup", 300),
        ("purchase", -200),
        ("topup", 150),
        ("purchase", -250),
        ("topup", 40),
        ("purchase", -40),
    ]
    assert all(e.description for e in view.entries)
    with pytest.raises(InsufficientFunds):
        wallet.buy_coins(bid, 10, _eur(1), card=None)  # nothing left on the account, no card: refused
    assert sum(line.unspent.amount for line in wallet.balance()) == 200 + 250 + 40
    _trial_balance(broker)


def test_cash_out_refunds_and_activity(wallet: WalletService, broker: RunningBroker, vendor: RunningVendor) -> None:
    from tests.support.wallet import quote_for

    bid = _logged_in(wallet, broker, "bob")
    wallet.top_up(bid, _eur(2000), TEST_CARD, secrets.token_hex(8))
    chain = wallet.buy_coins(bid, 100, _eur(1))
    q, c = quote_for(vendor.url, "harbour-bridge-reopens")  # 5 cents
    checked = wallet.check_quote(q, c, vendor.url)
    wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    assert wallet.return_chain(chain.chain_id) == _eur(95)
    assert wallet.account_balance(bid) == _eur(1995)  # refreshed after the return, without asking

    key = secrets.token_hex(8)
    assert wallet.cash_out(bid, _eur(1500), TEST_CARD, key) == _eur(495)
    assert wallet.cash_out(bid, _eur(1500), TEST_CARD, key) == _eur(495)  # a retry pays out once
    before = _trial_balance(broker)
    with pytest.raises(IdempotencyConflict):
        wallet.cash_out(bid, _eur(400), TEST_CARD, key)
    with pytest.raises(InsufficientFunds):
        wallet.cash_out(bid, _eur(496), TEST_CARD, secrets.token_hex(8))
    assert _trial_balance(broker)["accounts"] == before["accounts"]
    assert wallet.account_balance(bid) == _eur(495)

    kinds = [(e.kind, e.status, e.amount.amount, e.broker_id) for e in wallet.activity() if e.kind != "payment"]
    assert ("return", "done", 95, bid) in kinds and ("cashout", "done", 1500, bid) in kinds
    assert [k for k in kinds if k[0] == "cashout"] == [("cashout", "done", 1500, bid)]  # one entry, not two
    [view] = wallet.accounts()
    assert [e.kind for e in view.entries] == ["topup", "purchase", "refund", "cashout"]


def _garbage_server() -> tuple[ThreadingHTTPServer, str]:
    class Garbage(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"type": "custody_release", "version": 1, "body": [1, 2'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_recover_a_lost_wallet_from_a_fresh_one(
    wallet_factory: Callable[..., WalletService],
    broker: RunningBroker,
    clock: Clock,
    vendor: RunningVendor,
    vendor_factory: Any,
) -> None:
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    # The lost wallet: bought three chains on carol's account and spent from two of them at two vendors.
    token = broker.new_customer("carol", PASSWORD, topup=1000)
    news_cert, news_chain = broker.buy_chain(token, length=100)
    cards_cert, cards_chain = broker.buy_chain(token, length=100)
    odd_cert, _ = broker.buy_chain(token, length=50, coin_value=2)
    assert pay(vendor, "harbour-bridge-reopens", news_cert, news_chain).status_code == 200  # 5 coins
    assert pay(cards, "thank-you-sunrise", cards_cert, cards_chain).status_code == 200  # 10 coins
    vendor.vendor.reporter.flush()
    cards.vendor.reporter.flush()
    cards.stop()  # the card shop is down when the customer recovers
    server, garbage_url = _garbage_server()  # a custodian that answers garbage to the close request
    try:
        odd = TestVendor("odd-shop")
        broker.register_vendor(odd.vendor_id, odd.key, api_url=garbage_url)
        claimed = broker.session.post(f"{broker.url}/v1/custody/claims", json=odd.claim(odd_cert.body.chain_id))
        assert claimed.status_code == 200, claimed.text

        fresh = wallet_factory("fresh")
        bid = _logged_in(fresh, broker, "carol", register=False)
        assert fresh.account_balance(bid) == _eur(1000 - 100 - 100 - 100)
        found = {c.chain_id: c for c in fresh.recoverable_chains(bid)}
        assert set(found) == {
            news_cert.body.chain_id.hex(),
            cards_cert.body.chain_id.hex(),
            odd_cert.body.chain_id.hex(),
        }
        news = found[news_cert.body.chain_id.hex()]
        assert (news.custodian, news.reported_index, news.at_most) == (vendor.vendor_id, 5, _eur(95))
        card_chain = found[cards_cert.body.chain_id.hex()]
        assert (card_chain.custodian, card_chain.reported_index, card_chain.at_most) == (cards.vendor_id, 10, _eur(90))
        assert found[odd_cert.body.chain_id.hex()].custodian == "odd-shop"

        outcomes = {o.chain_id: o for o in fresh.recover_chains(bid)}
        assert outcomes[news.chain_id].status == "closed" and outcomes[news.chain_id].refund == _eur(95)
        # the card shop is down and the odd shop answers garbage: nothing refunded yet, the broker waits
        assert outcomes[card_chain.chain_id].status == "closing" and outcomes[card_chain.chain_id].refund == _eur(0)
        assert outcomes[odd_cert.body.chain_id.hex()].status == "closing"
        assert fresh.account_balance(bid) == _eur(700 + 95)
        _trial_balance(broker)
        pending = {e.ref: e for e in fresh.activity() if e.kind == "return"}
        assert pending[news.chain_id].status == "done" and pending[news.chain_id].amount == _eur(95)
        assert pending[card_chain.chain_id].status == "closing"
        assert {c.status for c in fresh.recoverable_chains(bid)} == {"recovering"}

        clock.offset += GRACE_S  # the grace period passes (broker clock): closed at the last reported index
        assert fresh.refresh_accounts() == {}
        assert fresh.recoverable_chains(bid) == []
        assert fresh.account_balance(bid) == _eur(700 + 95 + 90 + 100)
        refunds = {e.ref: (e.status, e.amount) for e in fresh.activity() if e.kind == "return"}
        assert refunds == {
            news.chain_id: ("done", _eur(95)),
            card_chain.chain_id: ("done", _eur(90)),
            odd_cert.body.chain_id.hex(): ("done", _eur(100)),
        }
        assert fresh.list_chains() == []  # the fresh wallet never held them
        _trial_balance(broker)
    finally:
        server.shutdown()
        server.server_close()


def test_recovering_an_unknown_chain_is_refused_and_moves_nothing(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker
) -> None:
    from netpay.errors import NotFound

    broker.new_customer("dave", PASSWORD, topup=100)
    fresh = wallet_factory("fresh")
    bid = _logged_in(fresh, broker, "dave", register=False)
    assert fresh.recoverable_chains(bid) == []
    with pytest.raises(NotFound):
        fresh.recover_chains(bid, ["00" * 16])
    assert fresh.vault.one("SELECT COUNT(*) FROM recoveries")[0] == 0
    assert fresh.account_balance(bid) == _eur(100)
    _trial_balance(broker)


def test_restore_offers_the_chains_the_backup_lacks(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    w = wallet_factory("w")
    bid = _logged_in(w, broker, "erin")
    w.top_up(bid, _eur(500), TEST_CARD, secrets.token_hex(8))
    kept = w.buy_coins(bid, 100, _eur(1))
    w.backup(tmp_path / "old.npbackup", "backup passphrase")
    later = w.buy_coins(bid, 100, _eur(2))  # bought after the backup
    w.restore(tmp_path / "old.npbackup", "backup passphrase")
    [lost] = w.recoverable_chains(bid)
    assert lost.chain_id == later.chain_id and lost.at_most == _eur(200)
    from netpay.errors import NotFound

    with pytest.raises(NotFound):  # a chain the wallet holds is never closed by a recovery
        w.recover_chains(bid, [kept.chain_id])
    assert [c.status for c in w.list_chains()] == ["active"]
    [outcome] = w.recover_chains(bid)
    assert outcome.status == "closed" and outcome.refund == _eur(200)
    assert w.account_balance(bid) == _eur(500 - 100 - 200 + 200)
    _trial_balance(broker)


def test_a_return_while_the_custodian_is_down_is_a_pending_refund_until_the_grace_period_ends(
    wallet: WalletService, broker: RunningBroker, clock: Clock, vendor: RunningVendor
) -> None:
    from tests.support.wallet import quote_for

    bid = _logged_in(wallet, broker, "hank")
    chain = wallet.buy_coins(bid, 100, _eur(1), card=TEST_CARD)
    q, c = quote_for(vendor.url, "harbour-bridge-reopens")  # 5 cents
    checked = wallet.check_quote(q, c, vendor.url)
    wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    vendor.vendor.reporter.flush()
    vendor.stop()
    assert wallet.return_chain(chain.chain_id) == _eur(0)  # nothing yet: the broker waits for the vendor
    [entry] = [e for e in wallet.activity() if e.kind == "return"]
    assert (entry.status, entry.amount, entry.ref) == ("closing", _eur(95), chain.chain_id)
    assert wallet.account_balance(bid) == _eur(0)
    clock.offset += GRACE_S
    assert wallet.refresh_accounts() == {}
    [entry] = [e for e in wallet.activity() if e.kind == "return"]
    assert (entry.status, entry.amount) == ("done", _eur(95))
    assert [c.status for c in wallet.list_chains()] == ["returned"]
    assert wallet.account_balance(bid) == _eur(95)
    _trial_balance(broker)

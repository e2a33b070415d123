"""The next payment journalled ahead (``PayingSession`` with the vault in this process): it is durable before it can
leave, leaves only when the program asks, is taken back without a trace when not asked for (closing, another payment
first, the quote about to expire), holds its price in the rules without ever blocking a call, and a program killed
while holding one leaves a pending payment that the wallet sends at its next open. Real broker, shop and vault."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor
from tests.support.wallet import WalletOnDisk
from tests.wallet_app.client.test_pay_in_request import counting, recorded, spends
from tests.wallet_app.services.test_payments import arrivals
from wallet_app.client import OverBudget, PayingSession, SpendingRules
from wallet_app.services import WalletService

ROOT = Path(__file__).resolve().parents[3]


def rules(**kw: int) -> SpendingRules:
    return SpendingRules.parse("EUR", **kw)


def position(wallet: WalletService) -> int:
    (chain,) = wallet.list_chains()
    return chain.position


def unspent(wallet: WalletService) -> int:
    (chain,) = wallet.list_chains()
    return chain.unspent


def held_at_shop(vendor: RunningVendor) -> int:
    (row,) = vendor.vendor.store.query("SELECT last_index FROM chains")
    return int(row[0])


def run_paying(disk: WalletOnDisk, vendor: RunningVendor, then: str) -> subprocess.CompletedProcess[str]:
    """A child process opens the wallet, pays one search through a session, waits for the next payment to be
    journalled ahead, then runs ``then``."""
    script = (
        disk.opener() + "from wallet_app.client import PayingSession, SpendingRules;"
        "api = PayingSession(w, SpendingRules.parse('EUR', per_request=1, daily=10));"
        f"r = api.get({vendor.url + '/api/search'!r}, params={{'q': 'comet'}}, timeout=10);"
        f"assert r.status_code == 200 and api.settle(10); {then}"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_the_next_payment_is_durable_before_anyone_asks_and_leaves_only_when_asked(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    vendor = vendor_factory(wrap=lambda app: arrivals(app, events))
    fsyncs: list[str] = []
    import wallet_app.vault.store as store

    real = os.fsync

    def noting(fd: int) -> None:
        real(fd)
        if threading.current_thread().name != "vault-writer":  # (its idle-time fsyncs send nothing)
            fsyncs.append(threading.current_thread().name)
            events.append("fsync")

    monkeypatch.setattr(store.os, "fsync", noting)
    api = PayingSession(funded_wallet, rules(per_request=1, daily=10))
    url = f"{vendor.url}/api/search"
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200 and api.settle(10)
    # the challenge, the journal of this payment, the payment; then the next one journalled by the helper, unsent
    assert events == ["/api/search", "fsync", "/api/search", "fsync"]
    assert fsyncs[-1].startswith("netpay-ahead")
    assert spends(funded_wallet) == [("settled", None), ("pending", None)] and recorded(vendor) == 1
    assert position(funded_wallet) == 2  # its coin is taken: no other payment can use that index
    events.clear()
    seen = counting(api)
    assert api.get(url, params={"q": "market"}, timeout=10).json()["query"] == "market"
    assert api.settle(10)
    assert seen == [("/api/search", 200)]  # one request, nothing journalled in the call itself
    assert events == ["/api/search", "fsync"]  # ...and the one after it journalled ahead again
    assert spends(funded_wallet) == [("settled", None)] * 2 + [("pending", None)] and recorded(vendor) == 2
    assert held_at_shop(vendor) == 2
    api.close()


def test_closing_takes_it_back_and_the_next_session_pays_with_the_same_coin(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    url = f"{vendor.url}/api/search"
    api = PayingSession(funded_wallet, rules(per_request=1, daily=10))
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200 and api.settle(10)
    assert position(funded_wallet) == 2 and unspent(funded_wallet) == 198
    api.close()
    assert spends(funded_wallet) == [("settled", None)]  # no trace of the payment that never left
    assert position(funded_wallet) == 1 and unspent(funded_wallet) == 199
    again = PayingSession(funded_wallet, rules(per_request=1, daily=10), prepare_ahead=False)
    assert again.get(url, params={"q": "market"}, timeout=10).status_code == 200
    # the coin given back is the next one the shop expects: accepted, no gap, nothing refused
    assert spends(funded_wallet) == [("settled", None)] * 2 and held_at_shop(vendor) == 2
    assert position(funded_wallet) == 2


def test_another_payment_first_takes_it_back_and_is_never_refused_for_it(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    """Its price is held in the rules, but a payment for something else takes it back first: the coins leave in
    order, and the rules see only what is paid (4 cents a day: a 1-cent query and a 3-cent article both fit)."""
    api = PayingSession(funded_wallet, rules(daily=4))
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert api.settle(10) and api.budget.spent() == 2  # the query paid, and the next one's price held
    article = api.get(f"{vendor.url}/api/items/night-market-returns", timeout=10)
    assert article.status_code == 200 and article.json()["item_id"] == "night-market-returns"
    assert api.budget.spent() == 4 and len(api.payments) == 2
    assert spends(funded_wallet) == [("settled", None)] * 2  # the query's coin went to the article instead
    assert position(funded_wallet) == 4 and held_at_shop(vendor) == 4
    with pytest.raises(OverBudget):  # the kept quote would pass the day's budget: nothing is paid
        api.get(f"{vendor.url}/api/search", params={"q": "market"}, timeout=10)
    api.close()
    assert spends(funded_wallet) == [("settled", None)] * 2 and api.budget.spent() == 4


def test_none_is_journalled_ahead_past_the_rules(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(daily=1))
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert api.settle(10)
    assert spends(funded_wallet) == [("settled", None)] and api.budget.spent() == 1
    api.close()


def test_a_quote_about_to_expire_is_taken_back_not_sent(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    clock = [float(vendor.vendor.now())]
    api = PayingSession(funded_wallet, rules(daily=10), clock=lambda: clock[0])
    url = f"{vendor.url}/api/search"
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200 and api.settle(10)
    clock[0] += vendor.settings.quote_ttl_s  # the kept quote expires about now
    seen = counting(api)
    assert api.get(url, params={"q": "market"}, timeout=10).status_code == 200 and api.settle(10)
    assert seen == [("/api/search", 402), ("/api/search", 200)]  # its own challenge, paid with the same coin
    assert spends(funded_wallet)[:2] == [("settled", None)] * 2 and recorded(vendor) == 2
    assert held_at_shop(vendor) == 2
    api.close()
    assert spends(funded_wallet) == [("settled", None)] * 2 and api.budget.spent() == 2


def test_threads_sharing_a_session_never_overspend_or_skip_a_coin(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    api = PayingSession(funded_wallet, rules(per_request=1, daily=12))
    url = f"{vendor.url}/api/search"
    errors: list[BaseException] = []

    def work(n: int) -> None:
        for i in range(5):
            try:
                api.get(url, params={"q": f"thread {n} query {i}"}, timeout=30)
            except OverBudget:
                pass
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api.close()
    assert not errors
    rows = spends(funded_wallet)
    assert rows == [("settled", None)] * len(rows) and len(rows) == len(api.payments) <= 12
    assert api.budget.spent() == len(rows) == recorded(vendor)
    assert position(funded_wallet) == held_at_shop(vendor) == len(rows)  # every coin the shop's, in order


def test_a_program_killed_holding_one_leaves_it_pending_and_the_wallet_sends_it(
    tmp_path: Path, broker: RunningBroker, vendor: RunningVendor
) -> None:
    disk = WalletOnDisk.funded(tmp_path, broker.url, coins=50)
    proc = run_paying(disk, vendor, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert proc.returncode == -9, proc.stderr
    assert recorded(vendor) == 1
    w = disk.service()
    w.unlock(recover=False)
    assert sorted(r[0] for r in w.vault.query("SELECT status FROM spends")) == ["pending", "settled"]
    (chain,) = w.list_chains()
    assert (chain.position, chain.settled, chain.pending, chain.unspent) == (2, 1, 1, 48)  # no coin reused
    assert w.recover_pending() == 1  # sent like any pending payment: the shop's receipt, a token for one query
    rows = w.vault.query("SELECT status, access_token FROM spends")
    assert [r[0] for r in rows] == ["settled", "settled"] and all(r[1] for r in rows)
    assert recorded(vendor) == 2 and held_at_shop(vendor) == 2
    w.close()


def test_one_sent_by_the_wallets_recovery_meanwhile_is_kept_not_taken_back(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    """The wallet's own recovery (any pending payment is re-sent) may send the one journalled ahead before the
    program asks for it: it is then paid, so closing takes nothing back, finishes it (the same receipt again) and
    keeps it in the history."""
    api = PayingSession(funded_wallet, rules(daily=10))
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert api.settle(10)
    assert funded_wallet.recover_pending() == 1
    assert recorded(vendor) == 2
    api.close()
    assert len(api.payments) == 2 and api.budget.spent() == 2
    assert spends(funded_wallet) == [("settled", None)] * 2 and position(funded_wallet) == 2


def test_its_chain_is_not_used_by_another_payment_meanwhile(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    """A payment outside the library (the same wallet paying a page) while one is journalled ahead never takes the
    chain's later coins (the wallet does not pick a chain with a payment pending), so taking it back leaves no gap."""
    from netpay.errors import InsufficientCoins
    from tests.support.wallet import quote_for

    api = PayingSession(funded_wallet, rules(daily=10))
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert api.settle(10)
    q, c = quote_for(vendor.url, "night-market-returns")
    checked = funded_wallet.check_quote(q, c, None)
    with pytest.raises(InsufficientCoins):  # its only chain is busy: nothing journalled, nothing sent
        funded_wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
    api.close()
    paid = funded_wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
    assert paid.amount.amount == 3 and position(funded_wallet) == held_at_shop(vendor) == 4


def test_a_script_that_exits_without_closing_leaves_nothing_pending(
    tmp_path: Path, broker: RunningBroker, vendor: RunningVendor
) -> None:
    disk = WalletOnDisk.funded(tmp_path, broker.url, coins=50)
    proc = run_paying(disk, vendor, "print('paid', flush=True)")  # ...and ends, nothing closed
    assert proc.returncode == 0 and proc.stdout.strip() == "paid", proc.stderr
    w = disk.service()
    w.unlock(recover=False)
    assert [r[0] for r in w.vault.query("SELECT status FROM spends")] == ["settled"]
    (chain,) = w.list_chains()
    assert (chain.position, chain.settled, chain.pending, chain.unspent) == (1, 1, 0, 49)
    w.close()


def test_locking_the_wallet_takes_it_back_first(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(daily=10))
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert api.settle(10)
    funded_wallet.lock()  # (the idle timer, or a program closing the wallet before its session)
    funded_wallet.unlock(recover=False)
    assert spends(funded_wallet) == [("settled", None)] and position(funded_wallet) == 1
    assert api.budget.spent() == 1
    api.close()


def test_a_next_quote_from_another_vendor_is_never_journalled(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """A shop (or whoever sits between) that hands out another vendor's quote as the next one (``NetPay-Quote``):
    the wallet checks it before journalling it ahead, as before paying any quote, and refuses it (its certificate
    does not name this origin). Nothing is journalled, the other vendor is paid nothing, and the next call pays the
    shop's own challenge."""
    import base64
    import json

    other = vendor_factory(name="Elsewhere")
    theirs = requests.post(
        f"{other.url}/v1/quotes", json={"item_id": "archive-search"}, timeout=10
    ).json()  # a genuine quote, signed by the other vendor
    swapped = base64.urlsafe_b64encode(json.dumps(theirs).encode()).rstrip(b"=")

    def swaps_the_next_quote(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            async def sending(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    headers = [(k, swapped if k == b"netpay-quote" else v) for k, v in message["headers"]]
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, sending)

        return wrapped

    shop = vendor_factory(wrap=swaps_the_next_quote)
    api = PayingSession(funded_wallet, rules(daily=10))
    url = f"{shop.url}/api/search"
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200 and api.settle(10)
    assert spends(funded_wallet) == [("settled", None)] and api.budget.spent() == 1
    seen = counting(api)
    assert api.get(url, params={"q": "market"}, timeout=10).json()["query"] == "market"
    assert seen == [("/api/search", 402), ("/api/search", 200)]  # the swapped quote refused, the shop's own paid
    api.close()
    assert spends(funded_wallet) == [("settled", None)] * 2 and recorded(other) == 0 and recorded(shop) == 2


def test_a_closed_wallet_and_its_sessions_are_freed(tmp_path: Path) -> None:
    """One payer per wallet service, found again by every session on it, but never keeping a closed one alive."""
    import gc
    import weakref

    from tests.support.wallet import new_wallet
    from wallet_app.client.vault_payer import VaultPayer

    w = new_wallet(tmp_path / "w")
    a, b = PayingSession(w, rules(daily=10)), PayingSession(w, rules(daily=10))
    assert a.payer is b.payer is VaultPayer.of(w)
    gone = weakref.ref(w)
    for api in (a, b):
        api.close()
    w.close()
    del a, b, api, w
    gc.collect()
    assert gone() is None


def test_a_shop_that_hands_out_the_same_next_quote_again_is_paid_once_for_it(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """A shop that replays the next quote it handed out first in every later answer: the payment journalled ahead
    pays it once; journalling it again is refused by the wallet (already paid), and each later query is paid on the
    shop's own challenge. Nothing is paid twice, nothing stays pending."""
    first: list[bytes] = []

    def replays_the_next_quote(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            async def sending(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    headers = []
                    for k, v in message["headers"]:
                        if k == b"netpay-quote":
                            if not first:
                                first.append(v)
                            v = first[0]
                        headers.append((k, v))
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, sending)

        return wrapped

    shop = vendor_factory(wrap=replays_the_next_quote)
    api = PayingSession(funded_wallet, rules(daily=10))
    url = f"{shop.url}/api/search"
    for q in ("comet", "market", "budget", "cup"):
        assert api.get(url, params={"q": q}, timeout=10).json()["query"] == q
        assert api.settle(10)
    api.close()
    assert spends(funded_wallet) == [("settled", None)] * 4 and recorded(shop) == 4
    assert api.budget.spent() == 4 and len(api.payments) == 4

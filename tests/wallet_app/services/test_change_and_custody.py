"""Exact change, custody refusals and revocations, with the wallet core against a real broker and real vendors on
loopback (issues 14 and 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from netpay.errors import InsufficientCoins, Revoked
from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor
from tests.support.wallet import funded_wallet as fund
from tests.support.wallet import quote_for
from wallet_app.services import WalletService
from wallet_app.services.revocations import HARD_S, RETRY_S, SOFT_S

FIVE = "harbour-bridge-reopens"  # 5 cents at the Daily Planet
SIX = "council-budget-explained"  # 6 cents
THREE = "night-market-returns"  # 3 cents


def _pay(wallet: WalletService, vendor: RunningVendor, item: str = FIVE) -> Any:
    q, c = quote_for(vendor.url, item)
    checked = wallet.check_quote(q, c, vendor.url)
    return wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")


def _chains_paid(paid: Any) -> list[tuple[str, int]]:
    return [(s.chain_id.hex(), s.to_index - s.from_index) for s in paid.receipt.body.segments]


def _buy(wallet: WalletService, broker_id: str, coins: int, value: int) -> str:
    from tests.support.broker import TEST_CARD

    return wallet.buy_coins(broker_id, coins, Money(value, "EUR"), card=TEST_CARD).chain_id


# ----- exact change -----------------------------------------------------------------------------------------------
def test_five_cents_with_two_cent_coins_says_what_to_buy(
    wallet: WalletService, broker: RunningBroker, vendor: RunningVendor
) -> None:
    fund(wallet, broker.url, chains=1, coins=10, coin_value=2)  # EUR 0.20 in 2-cent coins
    q, c = quote_for(vendor.url, FIVE)
    checked = wallet.check_quote(q, c, vendor.url)
    assert not checked.affordable and checked.change_advice is not None
    assert "buy coins of €0.01" in checked.change_advice and "€0.05" in checked.change_advice
    with pytest.raises(InsufficientCoins) as err:
        wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")
    assert err.value.code == "insufficient_coins"  # the stable code, with the why and what in details
    assert err.value.details["reason"] == "no_exact_change"
    assert err.value.details["buy"] == {"amount": 1, "currency": "EUR"}
    (chain,) = wallet.list_chains()
    assert chain.position == 0 and not [e for e in wallet.activity() if e.kind == "payment"]  # nothing spent
    paid = _pay(wallet, vendor, SIX)  # an even price is paid from the same coins
    assert [n for _c, n in _chains_paid(paid)] == [3]


def test_six_cents_with_five_and_two_cent_chains_pays_two_two_two(
    wallet: WalletService, broker: RunningBroker, vendor: RunningVendor
) -> None:
    broker_id = fund(wallet, broker.url, chains=1, coins=10, coin_value=5)
    two = _buy(wallet, broker_id, 10, 2)
    paid = _pay(wallet, vendor, SIX)
    assert _chains_paid(paid) == [(two, 3)]
    assert wallet.balance()[0].unspent == Money(64, "EUR")


def test_not_enough_coins_says_short(wallet: WalletService, broker: RunningBroker, vendor: RunningVendor) -> None:
    fund(wallet, broker.url, chains=1, coins=2, coin_value=1)
    with pytest.raises(InsufficientCoins) as err:
        _pay(wallet, vendor, FIVE)
    assert err.value.details["reason"] == "short" and "Not enough coins for €0.05" in err.value.message


def test_exact_change_across_1_2_5_10_cent_chains(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    from tests.support.vendor import CARDS

    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards", vendor_id="cards")
    broker_id = fund(wallet, broker.url, chains=1, coins=1, coin_value=10)
    ten = wallet.list_chains()[0].chain_id
    five = _buy(wallet, broker_id, 1, 5)
    two = _buy(wallet, broker_id, 1, 2)
    one = _buy(wallet, broker_id, 3, 1)
    news = vendor_factory()
    paid = _pay(wallet, cards, "thinking-of-you-sea")  # 12 cents: no chain alone; 10 + 2 (before 10 + 1 + 1)
    assert _chains_paid(paid) == [(ten, 1), (two, 1)]
    paid = _pay(wallet, news, SIX)  # 6 cents from 5 + 1 x 3 left: 5 + 1
    assert _chains_paid(paid) == [(five, 1), (one, 1)]
    with pytest.raises(InsufficientCoins) as err:  # 2 cents left for 3
        _pay(wallet, news, THREE)
    assert err.value.details["reason"] == "short"


# ----- custody refusals -------------------------------------------------------------------------------------------
def test_chain_refused_for_custody_is_remembered_and_another_pays(
    wallet: WalletService, broker: RunningBroker, vendor: RunningVendor
) -> None:
    """A chain closed at the broker behind this wallet's back (another device, a recovery) is refused by the vendor
    (`revoked`, with a signed refusal): the wallet remembers it, pays with another chain, and never offers it to
    that vendor again. Stays a refusal whatever custody rules the servers adopt."""
    broker_id = fund(wallet, broker.url, chains=1, coins=100)
    first = wallet.list_chains()[0].chain_id
    second = _buy(wallet, broker_id, 50, 1)
    wallet.refresh_revocations()  # fresh list (no hard refresh before paying); the chain is closed after it
    wallet.brokers_desk.call(broker_id, lambda c, t: c.close_chain(t, first))
    paid = _pay(wallet, vendor, FIVE)
    assert _chains_paid(paid) == [(second, 5)]
    rows = wallet.vault.query("SELECT vendor_id, chain_id, code FROM chain_refusals")
    assert [tuple(r) for r in rows] == [(vendor.vendor_id, first, "revoked")]
    spends = wallet.vault.query("SELECT status, error_code FROM spends ORDER BY created_at, rowid")
    assert [tuple(s) for s in spends] == [("released", "revoked"), ("settled", None)]
    chain = next(s for s in wallet.list_chains() if s.chain_id == first)
    assert chain.position == 0  # the refused coins were given back (the vendor signed that it recorded nothing)
    for _ in range(2):  # never offered to that vendor again: no second refusal
        assert [c for c, _n in _chains_paid(_pay(wallet, vendor, THREE))] == [second]
    assert wallet.vault.one("SELECT COUNT(*) FROM spends WHERE status = 'released'")[0] == 1
    wallet.refresh_revocations()  # the broker's list says it; the wallet asks the broker what became of it
    chain = next(s for s in wallet.list_chains() if s.chain_id == first)
    assert chain.revoked and chain.status == "returned"  # closed elsewhere: refunded to the account
    assert wallet.balance()[0].unspent == Money(50 - 11, "EUR")
    wallet.refresh_revocations()  # asked once only: an unchanged list marks nothing for a resync again
    assert wallet.vault.one("SELECT COUNT(*) FROM chains WHERE needs_resync = 1")[0] == 0


def test_returning_to_an_earlier_vendor_never_keeps_picking_a_refused_chain(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """A -> B -> A with the chain the wallet prefers. Whether the servers let custody come back to A (issue 14) or
    refuse it, the purchase at A is paid, and A is never offered a chain it refused."""
    a = vendor_factory(vendor_id="planet-a", name="Planet A")
    b = vendor_factory(vendor_id="planet-b", name="Planet B")
    c = vendor_factory(vendor_id="planet-c", name="Planet C")
    broker_id = fund(wallet, broker.url, chains=1, coins=100)
    x = wallet.list_chains()[0].chain_id
    y = _buy(wallet, broker_id, 50, 1)
    assert [ch for ch, _n in _chains_paid(_pay(wallet, a))] == [x]  # both unheld: the one with more coins left
    assert [ch for ch, _n in _chains_paid(_pay(wallet, c))] == [y]  # x is A's, y nobody's: y
    assert [ch for ch, _n in _chains_paid(_pay(wallet, b))] == [x]  # both held elsewhere: more coins left
    paid = _pay(wallet, a)  # x again (held by B now): back to A
    refusals = {tuple(r) for r in wallet.vault.query("SELECT vendor_id, chain_id FROM chain_refusals")}
    assert refusals <= {(a.vendor_id, x)}
    used = [ch for ch, _n in _chains_paid(paid)]
    assert used == ([y] if refusals else [x])
    for _ in range(3):
        again = [ch for ch, _n in _chains_paid(_pay(wallet, a, THREE))]
        assert x not in again if refusals else again == [x]  # the chain A holds, or never the one it refused
    released = wallet.vault.one("SELECT COUNT(*) FROM spends WHERE status = 'released'")[0]
    assert released == len(refusals) <= 1


def test_a_forged_custody_refusal_is_not_remembered(
    wallet: WalletService, broker: RunningBroker, vendor: RunningVendor
) -> None:
    """Only a refusal signed by the certified vendor counts: a refusal without proof burns the indexes (the
    old rule) and remembers nothing, so a man in the middle cannot make the wallet shun its chains."""
    fund(wallet, broker.url, chains=2, coins=20)
    engine = wallet.payments
    real = engine.vendor_client

    class Liar:
        def __init__(self, url: str) -> None:
            self.inner = real(url)

        def pay(self, wire: Any, url: str) -> Any:
            from netpay.errors import CustodyConflict

            raise CustodyConflict("no", chain_id=wire["segments"][0]["chain_id"])

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    engine.vendor_client = Liar
    with pytest.raises(Exception) as err:
        _pay(wallet, vendor)
    assert getattr(err.value, "code", None) == "custody_conflict"
    assert wallet.vault.query("SELECT * FROM chain_refusals") == []
    (burned,) = [s for s in wallet.list_chains() if s.position]
    assert (burned.position, burned.burned) == (5, 5)  # no proof: the indexes stay spent, as before
    engine.vendor_client = real
    assert _pay(wallet, vendor, THREE).amount == Money(3, "EUR")  # from the other chain (more coins left)


# ----- revocations ------------------------------------------------------------------------------------------------
def _revoke_vendor(broker: RunningBroker, vendor_id: str) -> None:
    resp = requests.post(
        f"{broker.url}/v1/vendors/{vendor_id}/revoke", json={}, headers={"X-Operator-Token": broker.operator_token}
    )
    resp.raise_for_status()


def test_revocations_soft_window_hard_limit_and_broker_down(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """The list's age is set back by hand (quotes expire in minutes, so the wallet's clock cannot be moved)."""
    import threading
    import time

    from wallet_app.clients.broker import BrokerClient

    broker_id = fund(wallet, broker.url, chains=2, coins=100)
    bad = vendor_factory(vendor_id="bad-news", name="Bad News")
    good = vendor_factory(vendor_id="good-news", name="Good News")
    fetches: list[str] = []  # "block": on the paying thread; "background": on the refresh thread
    real_refresh = wallet.brokers_desk.refresh_revocations

    def counted(broker_ids: list[str] | None = None) -> None:
        fetches.append("block" if threading.current_thread() is threading.main_thread() else "background")
        real_refresh(broker_ids)

    def age(seconds: float) -> None:
        wallet.trust.fetched_at[broker_id] = time.time() - seconds

    wallet.brokers_desk.refresh_revocations = counted  # type: ignore[method-assign]
    assert broker_id not in wallet.trust.fetched_at
    _pay(wallet, bad)  # never fetched: fetched before the quote is checked
    assert fetches == ["block"]
    _revoke_vendor(broker, bad.vendor_id)
    age(SOFT_S - 10)
    _pay(wallet, bad, THREE)  # inside the soft window: no round trip, the list held is used
    assert fetches == ["block"]
    age(SOFT_S + 10)  # past the soft window: refreshed in the background, this purchase not delayed
    _pay(wallet, good, THREE)
    wallet.revocations.join()
    assert fetches == ["block", "background"] and bad.vendor_id in wallet.trust.revoked_vendors
    q, c = quote_for(bad.url, THREE)
    with pytest.raises(Revoked) as err:
        wallet.check_quote(q, c, bad.url)
    assert "Bad News is revoked" in err.value.message
    holder = next(s for s in wallet.list_chains() if s.holder == bad.vendor_id)
    assert holder.holder_revoked and not holder.revoked

    # Past the hard limit the list is fetched before paying; with the broker down the wallet still pays (the
    # broker is never on a payment's path), and does not block on it again for RETRY_S.
    wallet.brokers_desk.client_for = lambda _url: BrokerClient("http://127.0.0.1:9")  # type: ignore[method-assign]
    age(HARD_S + 10)
    paid = _pay(wallet, good, THREE)  # one blocking try, then paid with the list held
    wallet.revocations.join()
    assert paid.amount == Money(3, "EUR") and fetches.count("block") == 2
    age(HARD_S + 10)  # (a failed refresh reloads the vault's fetched_at, the real one)
    _pay(wallet, good, THREE)
    wallet.revocations.join()
    assert fetches.count("block") == 2  # not again within RETRY_S; the background keeps trying
    assert fetches.count("background") >= 3
    wallet.revocations._failed_at[broker_id] -= RETRY_S + 1
    age(HARD_S + 10)
    _pay(wallet, good, THREE)
    assert fetches.count("block") == 3


def test_a_revocation_list_signed_by_another_broker_is_refused(
    wallet_factory: Callable[..., WalletService], broker_factory: Callable[..., RunningBroker]
) -> None:
    b1, b2 = broker_factory(), broker_factory()
    wallet = wallet_factory()
    fund(wallet, b1.url, chains=1, coins=5)
    before = wallet.vault.query("SELECT * FROM revocations")
    wallet.brokers_desk.client_for = lambda url: type(  # type: ignore[method-assign]
        "C", (), {"revocations": lambda self: requests.get(f"{b2.url}/v1/revocations").json()}
    )()
    with pytest.raises(Exception) as err:
        wallet.refresh_revocations()
    assert getattr(err.value, "code", None) in ("untrusted_signer", "bad_signature")
    assert [tuple(r) for r in wallet.vault.query("SELECT * FROM revocations")] == [tuple(r) for r in before]


def test_an_older_revocation_list_never_replaces_a_newer_one(
    wallet: WalletService, broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """A list replayed from before a revocation (a stale cache, a replica lagging behind, an attacker replaying
    the broker's own signed list) must not un-revoke a vendor."""
    fund(wallet, broker.url, chains=1, coins=5)
    bad = vendor_factory(vendor_id="bad-news", name="Bad News")
    old_list = requests.get(f"{broker.url}/v1/revocations", timeout=10).json()
    _revoke_vendor(broker, bad.vendor_id)
    wallet.refresh_revocations()
    assert bad.vendor_id in wallet.trust.revoked_vendors
    stored = [tuple(r) for r in wallet.vault.query("SELECT * FROM revocations")]
    wallet.brokers_desk.client_for = lambda _url: type(  # type: ignore[method-assign]
        "Replayer", (), {"revocations": lambda self: old_list}
    )()
    wallet.refresh_revocations()
    assert bad.vendor_id in wallet.trust.revoked_vendors
    assert [tuple(r) for r in wallet.vault.query("SELECT * FROM revocations")] == stored

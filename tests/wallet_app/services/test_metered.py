"""Metered sessions in the wallet against a real broker and shop: approve once, then each unit is paid with no
prompt, journalled before it leaves, once, in order, up to the cap; the session ends when the page stops, the user
ends it, the wallet locks or the shop misbehaves, and a shop that is down mid-session gets no unit twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netpay.errors import Forbidden, MeteredSessionEnded, MeteredUnitOutOfOrder, PeerUnavailable, WalletLocked
from netpay.money import Money
from tests.support.broker import RunningBroker
from tests.support.vendor import NEWSPAPER, RunningVendor
from tests.support.wallet import funded_wallet, quote_for
from wallet_app.services import WalletService

PODCAST = "planet-podcast"  # 1 cent per 30 s, at most 20 units


def _open(w: WalletService, vendor: RunningVendor, via: Any = "prompt") -> str:
    q, c = quote_for(vendor.url, PODCAST)
    checked = w.check_quote(q, c, vendor.url)
    paid = w.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, via)
    return paid.receipt.body.receipt_id


def _shop_units(vendor: RunningVendor, session_id: str) -> tuple[int, int]:
    """(units the shop's session counts, spends the shop recorded)"""
    row = vendor.vendor.store.one("SELECT units_paid FROM metered_sessions WHERE session_id = ?", (session_id,))
    spends = vendor.vendor.store.one("SELECT COUNT(*) AS n FROM spends")
    return int(row["units_paid"]), int(spends["n"])


def _unspent(w: WalletService) -> int:
    return sum(line.unspent.amount for line in w.balance())


@pytest.fixture
def listener(wallet_factory: Callable[..., WalletService], broker: RunningBroker) -> WalletService:
    w = wallet_factory()
    funded_wallet(w, broker.url, coins=200)
    return w


def test_units_are_paid_without_prompt_once_each_and_activity_shows_the_total(
    listener: WalletService, vendor: RunningVendor
) -> None:
    w = listener
    changes: list[Any] = []
    w.events.metered_changed.append(changes.append)
    start = _unspent(w)
    sid = _open(w, vendor)
    for n in (2, 3, 4):
        unit = w.pay_metered_unit(sid, n, vendor.url)
        assert unit.unit_no == n and unit.units_paid == n and not unit.ended
    again = w.pay_metered_unit(sid, 3, vendor.url)  # the page asked twice: answered, not paid again
    assert again.units_paid == 4
    assert _unspent(w) == start - 4
    assert _shop_units(vendor, sid) == (4, 4)
    spends = w.vault.query("SELECT via, status FROM spends ORDER BY created_at")
    assert [r["via"] for r in spends] == ["prompt", "metered", "metered", "metered"]
    assert all(r["status"] == "settled" for r in spends)
    lines = [e for e in w.activity() if e.kind == "metered"]
    assert len(lines) == 1 and lines[0].amount == Money(4, "EUR") and "4 units of 30 s of audio" in str(lines[0].title)
    assert not [e for e in w.activity() if e.kind == "payment"]  # the units are folded into the session's line
    assert changes and changes[-1].units_paid == 4


def _small_cap_shop(vendor_factory: Callable[..., RunningVendor], tmp_path: Path, cap: int) -> RunningVendor:
    data = json.loads(NEWSPAPER.read_text())
    for item in data["items"]:
        if item["item_id"] == PODCAST:
            item["model"]["cap_units"] = cap
    path = tmp_path / "small-cap.json"
    path.write_text(json.dumps(data))
    return vendor_factory(catalog=path)


def test_the_cap_ends_the_session(
    listener: WalletService, vendor_factory: Callable[..., RunningVendor], tmp_path: Path
) -> None:
    w = listener
    shop = _small_cap_shop(vendor_factory, tmp_path, 3)
    sid = _open(w, shop)
    assert not w.pay_metered_unit(sid, 2, shop.url).ended
    last = w.pay_metered_unit(sid, 3, shop.url)
    assert last.ended and last.total == Money(3, "EUR")
    with pytest.raises(MeteredSessionEnded):
        w.pay_metered_unit(sid, 4, shop.url)
    assert w.metered_sessions()[0].end_reason == "cap"
    assert _shop_units(shop, sid) == (3, 3)


def test_page_closed_or_user_ended_pays_nothing_more(listener: WalletService, vendor: RunningVendor) -> None:
    w = listener
    sid = _open(w, vendor)
    w.pay_metered_unit(sid, 2, vendor.url)
    before = _unspent(w)
    ended = w.end_metered(sid, "page")
    assert ended.status == "ended" and ended.units_paid == 2
    with pytest.raises(MeteredSessionEnded):
        w.pay_metered_unit(sid, 3, vendor.url)
    assert _unspent(w) == before
    assert vendor.vendor.store.one("SELECT status FROM metered_sessions")["status"] == "ended"
    assert _shop_units(vendor, sid) == (2, 2)


def test_units_out_of_order_or_from_another_site_are_refused(listener: WalletService, vendor: RunningVendor) -> None:
    w = listener
    sid = _open(w, vendor)
    before = _unspent(w)
    with pytest.raises(MeteredUnitOutOfOrder):
        w.pay_metered_unit(sid, 3, vendor.url)
    with pytest.raises(MeteredUnitOutOfOrder):
        w.pay_metered_unit(sid, 21, vendor.url)
    with pytest.raises(Forbidden):
        w.pay_metered_unit(sid, 2, "http://evil.example")
    assert _unspent(w) == before and _shop_units(vendor, sid) == (1, 1)


def test_a_locked_wallet_ends_its_sessions(listener: WalletService, vendor: RunningVendor) -> None:
    w = listener
    sid = _open(w, vendor)
    w.pay_metered_unit(sid, 2, vendor.url)
    w.lock()
    with pytest.raises(WalletLocked):
        w.pay_metered_unit(sid, 3, vendor.url)
    w.unlock()
    with pytest.raises(MeteredSessionEnded):  # unlocking does not resume paying
        w.pay_metered_unit(sid, 3, vendor.url)
    assert w.metered_sessions()[0].end_reason == "locked"
    assert _shop_units(vendor, sid) == (2, 2)


def test_shop_down_mid_session_pays_no_unit_twice(
    listener: WalletService, vendor_factory: Callable[..., RunningVendor], tmp_path: Any
) -> None:
    w = listener
    shop = vendor_factory()
    sid = _open(w, shop)
    w.pay_metered_unit(sid, 2, shop.url)
    # the shop goes down after quoting unit 3 and before the payment arrives: the spend is journalled, pending
    real = w.payments.vendor_client

    class DownOnPay:
        def __init__(self, url: str) -> None:
            self.c = real(url)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.c, name)

        def pay(self, *args: Any, **kwargs: Any) -> Any:
            raise PeerUnavailable("the shop is down")

    w.payments.vendor_client = DownOnPay  # type: ignore[assignment]
    with pytest.raises(PeerUnavailable):
        w.pay_metered_unit(sid, 3, shop.url)
    pending = w.vault.query("SELECT status FROM spends WHERE quote_id = ?", (f"{sid}.3",))
    assert [r["status"] for r in pending] == ["pending"]
    assert _shop_units(shop, sid) == (2, 2)
    with pytest.raises(PeerUnavailable):  # asked again while the shop is still down: no second spend
        w.pay_metered_unit(sid, 3, shop.url)
    assert len(w.vault.query("SELECT 1 FROM spends WHERE quote_id LIKE ?", (f"{sid}.%",))) == 2
    w.payments.vendor_client = real  # type: ignore[method-assign]
    unit = w.pay_metered_unit(sid, 3, shop.url)  # the shop is back: the journalled payment is re-sent, not a new one
    assert unit.units_paid == 3
    assert _shop_units(shop, sid) == (3, 3)
    assert len(w.vault.query("SELECT 1 FROM spends WHERE quote_id LIKE ?", (f"{sid}.%",))) == 2
    assert w.pay_metered_unit(sid, 4, shop.url).units_paid == 4


def test_a_shop_stopped_mid_session_refuses_nothing_paid(
    listener: WalletService, vendor_factory: Callable[..., RunningVendor]
) -> None:
    w = listener
    shop = vendor_factory()
    sid = _open(w, shop)
    shop.stop()
    before = _unspent(w)
    with pytest.raises(PeerUnavailable):
        w.pay_metered_unit(sid, 2, shop.url)
    assert _unspent(w) == before  # the quote could not be had: nothing journalled, nothing spent
    assert not w.vault.query("SELECT 1 FROM spends WHERE status = 'pending'")


def test_a_session_opened_under_an_allowance_stops_at_its_day_budget(
    listener: WalletService, vendor: RunningVendor
) -> None:
    w = listener
    w.set_allowance(vendor.vendor_id, "Daily Planet", Money(2, "EUR"), Money(4, "EUR"))
    sid = _open(w, vendor, via="allowance")
    for n in (2, 3, 4):
        w.pay_metered_unit(sid, n, vendor.url)
    assert w.allowances()[0].spent_today == Money(4, "EUR")  # the units count against the allowance
    with pytest.raises(MeteredSessionEnded) as ended:
        w.pay_metered_unit(sid, 5, vendor.url)
    assert ended.value.details["reason"] == "budget"
    assert _shop_units(vendor, sid) == (4, 4)


def test_a_count_lost_in_a_crash_is_caught_up_from_the_spends(listener: WalletService, vendor: RunningVendor) -> None:
    w = listener
    sid = _open(w, vendor)
    w.pay_metered_unit(sid, 2, vendor.url)
    w.vault.flush()
    with w.vault.tx() as c:  # as if the process died before the unit's count reached the vault
        c.execute("UPDATE metered_sessions SET units_paid = 1")
    assert w.pay_metered_unit(sid, 2, vendor.url).units_paid == 2  # answered from the settled spend, not paid again
    assert w.pay_metered_unit(sid, 3, vendor.url).units_paid == 3
    assert _shop_units(vendor, sid) == (3, 3)


def test_a_page_gone_without_a_word_ends_its_session_when_idle(
    wallet_factory: Callable[..., WalletService], broker: RunningBroker, vendor: RunningVendor
) -> None:
    import time

    from wallet_app.services.metered import IDLE_END_S

    offset = [0]
    w = wallet_factory(clock=lambda: time.time() + offset[0])
    funded_wallet(w, broker.url, coins=50)
    sid = _open(w, vendor)
    w.pay_metered_unit(sid, 2, vendor.url)
    assert w.metered.end_idle() == 0  # still in use
    offset[0] = IDLE_END_S + 1
    assert w.metered.end_idle() == 1
    with pytest.raises(MeteredSessionEnded) as ended:
        w.pay_metered_unit(sid, 3, vendor.url)
    assert ended.value.details["reason"] == "idle"
    assert vendor.vendor.store.one("SELECT status FROM metered_sessions")["status"] == "ended"

"""The shop keeps hosted grants in its database (vendor migration 6), not in the process: a restarted shop honours a
grant it accepted before and redeems its coins, another process of the shop honours it too, and a grant is accepted
once only, whichever process is handed it (the same callback or the same broker answer twice)."""

from __future__ import annotations

import json
import re
import secrets
import sys
from pathlib import Path

import psycopg
import pytest
import requests

from netpay.errors import ReplayedRequest
from netpay.keys import load_or_create_key
from netpay_web.live import free_ports
from tests.support.broker import RunningBroker, start_broker
from tests.support.hosted import PAID, PASSWORD, authorize, hidden_fields, hosted_customer, hosted_summary
from tests.support.postgres import database_url_for, postgres_available
from tests.support.processes import ServerProcess, together
from tests.support.vendor import RunningVendor, start_vendor
from vendor_stub.hosted import GrantBook


def _buy(browser: requests.Session, shop_url: str, item: str) -> requests.Response:
    return browser.post(f"{shop_url}/hosted/buy/{item}", allow_redirects=False)


def _redeemed(broker: RunningBroker, vendor_id: str) -> int:
    row = broker.broker.core.db.one("SELECT COALESCE(SUM(amount), 0) FROM redeemed WHERE vendor_id = ?", (vendor_id,))
    assert row is not None
    return int(row[0])


def test_a_restarted_shop_honours_and_redeems_its_grant(broker: RunningBroker, tmp_path: Path) -> None:
    """Grant, buy, restart the shop (its process gone, its database kept): the same cookie buys again from the same
    slice, and every coin of the grant the shop took is redeemed."""
    shop = start_vendor(broker, tmp_path / "shop")
    port = shop.server.port
    name, token = hosted_customer(broker)
    browser = requests.Session()
    assert PAID in authorize(browser, shop, name, "0.20").text  # 3 coins
    assert _buy(browser, shop.url, "observatory-finds-comet").status_code == 303  # 4 more
    shop.stop()
    shop = start_vendor(broker, tmp_path / "shop", port=port, register=False)
    try:
        r = _buy(browser, shop.url, "harbour-bridge-reopens")  # 5 more, from the grant the earlier process accepted
        assert r.status_code == 303 and "?code=" in r.headers["location"], r.text
        r = _buy(browser, shop.url, "observatory-finds-comet")  # 16 of 20
        assert r.status_code == 303, r.text
        r = _buy(browser, shop.url, "harbour-bridge-reopens")  # 16 + 5 = 21 > 20: over the budget
        assert r.status_code == 402 and 'data-code="insufficient_coins"' in r.text
        shop.vendor.reporter.flush()
        shop.vendor.redeemer.redeem()
        assert _redeemed(broker, shop.vendor_id) == 16
        [grant] = hosted_summary(broker, token)["grants"]
        assert grant["spent"]["amount"] == 16 and grant["remaining"]["amount"] == 4
    finally:
        shop.stop()


def test_the_same_grant_is_accepted_once(broker: RunningBroker, vendor: RunningVendor) -> None:
    """The broker's grant answer handed to the shop a second time (a replay, or another process given it): refused
    ``replayed``, the chain's index is not set back to the slice's start, nothing is written."""
    name, _ = hosted_customer(broker)
    browser = requests.Session()
    assert PAID in authorize(browser, vendor, name, "0.20").text  # 3 coins taken
    db = broker.broker.core.db
    [row] = db.query("SELECT g.wire, c.certificate FROM hosted_grants g JOIN chains c ON c.chain_id = g.chain_id")
    answer = {"grant": json.loads(row[0]), "certificate": json.loads(row[1])}
    vendor.vendor.reporter.flush()  # its report must not land between the snapshot and the check
    before = vendor.dump()
    for book in (GrantBook(vendor.vendor), GrantBook(vendor.vendor)):  # as a second worker of the shop would be
        with pytest.raises(ReplayedRequest):
            book.accept(answer, secrets.token_urlsafe(16))
    assert vendor.dump() == before
    r = _buy(browser, vendor.url, "observatory-finds-comet")  # the slice goes on from 3, not from 0
    assert r.status_code == 303, r.text
    rows = vendor.vendor.store.query("SELECT from_index, to_index FROM spends ORDER BY to_index")
    assert [tuple(r) for r in rows] == [(0, 3), (3, 7)]


def test_an_old_session_stops_when_the_shop_gets_a_newer_grant(broker: RunningBroker, vendor: RunningVendor) -> None:
    """Two browsers of one customer allow the same shop: the second grant starts where the first stopped (the shop
    released the chain at 3); the first browser's cookie no longer spends (its slice reaches coins now granted anew)."""
    name, _ = hosted_customer(broker)
    first, second = requests.Session(), requests.Session()
    assert PAID in authorize(first, vendor, name, "0.50").text  # 0..50, 3 taken
    assert PAID in authorize(second, vendor, name, "0.10").text  # 3..13, 3 taken
    vendor.vendor.reporter.flush()
    dump = vendor.dump()
    r = _buy(first, vendor.url, "observatory-finds-comet")
    assert r.status_code == 303 and r.headers["location"].startswith("/hosted/start"), r.text  # asked to allow again
    assert vendor.dump() == dump
    assert _buy(second, vendor.url, "observatory-finds-comet").status_code == 303


# -- two processes of one shop on PostgreSQL ---------------------------------------------------------------------


def _spawn_shop(data_dir: Path, url: str, broker: RunningBroker, public_url: str, port: int) -> ServerProcess:
    args = [sys.executable, "-m", "vendor_stub.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--database", url, "--broker", broker.url, "--broker-key", broker.public_key.hex, "--name", "Daily Planet",
            "--public-url", public_url]  # fmt: skip
    return ServerProcess(args, port, data_dir / f"vendor-{port}.log", "/healthz")


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")
def test_two_processes_of_one_shop_given_the_same_grant(tmp_path: Path) -> None:
    """The callback that carries a grant's code reaches both processes of the shop at once: exactly one accepts it
    (and pays the item), the other refuses; the other process then honours the grant the first accepted; the last
    coins of the budget, asked for at both processes at once, are paid once."""
    broker = start_broker(tmp_path / "broker", database_url=database_url_for(tmp_path / "broker"))
    shop_dir = tmp_path / "shop"
    shop_dir.mkdir()
    shop_url = database_url_for(shop_dir)
    port_a, port_b = free_ports(2)
    public = f"http://127.0.0.1:{port_a}"  # both processes serve one shop at one address (behind one front)
    broker.register_vendor("daily-planet", load_or_create_key(shop_dir / "vendor_key"), api_url=public,
                           display_name="Daily Planet")  # fmt: skip
    a = _spawn_shop(shop_dir, shop_url, broker, public, port_a)
    b = _spawn_shop(shop_dir, shop_url, broker, public, port_b)
    try:
        name, token = hosted_customer(broker)
        browser = requests.Session()
        start = browser.get(f"{a.url}/hosted/start?item=night-market-returns", allow_redirects=False)
        state_cookie = start.cookies["np_hosted_state"]
        page = browser.get(start.headers["location"])
        login = browser.post(f"{broker.url}/hosted/login",
                             data={**hidden_fields(page.text), "username": name, "password": PASSWORD})  # fmt: skip
        allow = {**hidden_fields(login.text), "budget": "0.10", "duration": "86400", "decision": "allow"}
        r = browser.post(f"{broker.url}/hosted/authorize", data=allow, allow_redirects=False)
        query = r.headers["location"].split("?", 1)[1]
        assert re.search(r"code=", query)
        cookie = {"Cookie": f"np_hosted_state={state_cookie}"}
        r1, r2 = together(
            lambda: requests.get(f"{a.url}/hosted/callback?{query}", headers=cookie, allow_redirects=False, timeout=60),
            lambda: requests.get(f"{b.url}/hosted/callback?{query}", headers=cookie, allow_redirects=False, timeout=60),
        )
        won = [r for r in (r1, r2) if r.status_code == 303]
        lost = [r for r in (r1, r2) if r.status_code != 303]
        assert len(won) == 1 and len(lost) == 1, (r1.status_code, r1.text, r2.status_code, r2.text)
        assert "?code=" in won[0].headers["location"]
        assert 'data-code="not_found"' in lost[0].text and lost[0].status_code == 404
        grant_cookie = won[0].cookies["np_grant_daily-planet"]
        other = b if won[0] is r1 else a
        with psycopg.connect(shop_url) as conn:
            grants = conn.execute("SELECT COUNT(*) FROM hosted_grants").fetchone()
            spends = conn.execute("SELECT COUNT(*), MAX(to_index) FROM spends").fetchone()
        assert grants == (1,) and spends == (1, 3)
        assert broker.broker.core.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0] == 1
        # The process that did not accept the grant honours it (4 more: 7 of 10).
        shopper = {"Cookie": f"np_grant_daily-planet={grant_cookie}"}
        r = requests.post(f"{other.url}/hosted/buy/observatory-finds-comet", headers=shopper, allow_redirects=False,
                          timeout=60)  # fmt: skip
        assert r.status_code == 303 and "?code=" in r.headers["location"], r.text
        # 3 coins are left: the same 3-coin purchase at both processes at once is paid once.
        r1, r2 = together(
            lambda: requests.post(f"{a.url}/hosted/buy/night-market-returns", headers=shopper,
                                  allow_redirects=False, timeout=60),
            lambda: requests.post(f"{b.url}/hosted/buy/night-market-returns", headers=shopper,
                                  allow_redirects=False, timeout=60),
        )  # fmt: skip
        paid = [r for r in (r1, r2) if r.status_code == 303]
        assert len(paid) >= 1, (r1.text, r2.text)
        with psycopg.connect(shop_url) as conn:
            spends = conn.execute("SELECT COUNT(*), MAX(to_index), SUM(coins) FROM spends").fetchone()
        assert spends == (len(paid) + 2, 10, 7 + 3 * len(paid)) and len(paid) == 1, (spends, r1.text, r2.text)
        s = hosted_summary(broker, token)
        assert s["grants"][0]["budget"]["amount"] == 10
    finally:
        a.stop()
        b.stop()
        broker.stop()

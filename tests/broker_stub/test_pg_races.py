"""Races between real processes sharing one PostgreSQL: exactly one wins, nothing is lost or paid twice.

Two ``netpay-broker`` processes serve one broker (one database, one key); two ``netpay-vendor`` processes serve one
shop. The requests of each race are released together by a barrier, each to another process. These run on
PostgreSQL whatever ``NETPAY_TEST_DB`` says (they are about several processes, which SQLite's single file does not
offer the servers), on the test session's own cluster.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from broker_stub.audit import audit_report
from netpay.keys import load_or_create_key
from netpay_web.live import free_port
from tests.support.broker import RunningBroker, TestVendor, start_broker
from tests.support.postgres import cluster, database_url_for, postgres_available
from tests.support.processes import ServerProcess, spawn_broker, spawn_vendor, together
from tests.support.vendor import buy_known_chain, get_quote, payment_of

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[RunningBroker, ServerProcess, ServerProcess, str]]:
    """One broker on PostgreSQL: this test's own (for setup and audits) plus two more processes."""
    data = tmp_path / "broker"
    url = database_url_for(data)
    own = start_broker(data, database_url=url)
    a, b = spawn_broker(data, url), spawn_broker(data, url)
    yield own, a, b, url
    for p in (a, b):
        p.stop()
    own.stop()


def _claim(url: str, wire: dict[str, Any]) -> Callable[[], requests.Response]:
    return lambda: requests.post(f"{url}/v1/custody/claims", json=wire, timeout=60)


def _redeem(url: str, wire: dict[str, Any]) -> Callable[[], requests.Response]:
    return lambda: requests.post(f"{url}/v1/redemptions", json=wire, timeout=60)


def _rows(own: RunningBroker, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    return list(own.broker.core.db.query(sql, params))


def test_two_vendors_claim_the_same_chain_at_once_on_two_processes(brokers: Any) -> None:
    own, a, b, _ = brokers
    v1, v2 = TestVendor("shop-one"), TestVendor("shop-two")
    own.register_vendor(v1.vendor_id, v1.key)
    own.register_vendor(v2.vendor_id, v2.key)
    token = own.new_customer(topup=10_000)
    for _ in range(8):
        chain_id = own.buy_chain(token, length=10)[0].body.chain_id
        r1, r2 = together(_claim(a.url, v1.claim(chain_id)), _claim(b.url, v2.claim(chain_id)))
        assert r1.status_code == r2.status_code == 200, (r1.text, r2.text)
        answers = {r.json()["custodian"]: r.json()["previous"] for r in (r1, r2)}
        # one after the other: exactly one was first (no previous custodian), the other took it over from it
        firsts = [v for v, prev in answers.items() if prev is None]
        assert len(firsts) == 1
        second = next(v for v in answers if v != firsts[0])
        assert answers[second]["vendor_id"] == firsts[0]
        rows = _rows(own, "SELECT seq, vendor_id FROM custody WHERE chain_id = ? ORDER BY seq", (chain_id.hex(),))
        assert [tuple(r) for r in rows] == [(1, firsts[0]), (2, second)]
        held = _rows(own, "SELECT custodian FROM chains WHERE chain_id = ?", (chain_id.hex(),))
        assert held[0][0] == second


def test_the_same_batch_and_the_same_coins_redeemed_twice_at_once(brokers: Any) -> None:
    own, a, b, _ = brokers
    shop = TestVendor("shop")
    own.register_vendor(shop.vendor_id, shop.key)
    token = own.new_customer(topup=100_000)
    total = 0
    for round_ in range(6):
        cert, traversal = own.buy_chain(token, length=50)
        chain_id = cert.body.chain_id
        assert own.session.post(f"{own.url}/v1/custody/claims", json=shop.claim(chain_id)).status_code == 200
        index, word = traversal.advance(20)
        if round_ % 2 == 0:  # the same batch (id and bytes) to both processes
            wire = shop.batch([(chain_id, 0, index, word)], batch_id=f"b{round_}")
            r1, r2 = together(_redeem(a.url, wire), _redeem(b.url, wire))
            assert r1.status_code == r2.status_code == 200 and r1.json() == r2.json()
        else:  # two batches claiming the same coins: one is paid, the other told they were redeemed already
            r1, r2 = together(
                _redeem(a.url, shop.batch([(chain_id, 0, index, word)], batch_id=f"x{round_}")),
                _redeem(b.url, shop.batch([(chain_id, 0, index, word)], batch_id=f"y{round_}")),
            )
            codes = sorted([r1.status_code, r2.status_code])
            assert codes == [200, 409], (r1.text, r2.text)
            loser = r1 if r1.status_code == 409 else r2
            assert loser.json()["error"]["details"]["reason"] == "already_redeemed"
        total += 20
        redeemed = _rows(own, "SELECT COUNT(*), SUM(amount) FROM redeemed WHERE chain_id = ?", (chain_id.hex(),))
        assert tuple(redeemed[0]) == (1, 20)
    report = audit_report(own.broker.core)
    assert report["balanced"], report
    assert -report["accounts"]["vendor_payables"] == total


def test_a_broker_killed_in_the_middle_of_a_redemption_batch(brokers: Any) -> None:
    """SIGKILL the process that holds a big batch's transaction open; the other process then redeems the batch
    exactly once, and the ledger balances."""
    own, a, b, _ = brokers
    shop = TestVendor("shop")
    own.register_vendor(shop.vendor_id, shop.key)
    token = own.new_customer(topup=100_000)
    cert, traversal = own.buy_chain(token, length=4000)
    chain_id = cert.body.chain_id
    assert own.session.post(f"{own.url}/v1/custody/claims", json=shop.claim(chain_id)).status_code == 200
    claims = []
    start = 0
    for _ in range(400):
        index, word = traversal.advance(10)
        claims.append((chain_id, start, index, word))
        start = index
    wire = shop.batch(claims, batch_id="big")
    admin = psycopg.connect(cluster().url("postgres"), autocommit=True)
    sent = threading.Thread(target=lambda: _swallow(_redeem(a.url, wire)), daemon=True)
    sent.start()
    # wait (no sleep-timing) until process A's transaction holds the batch's lock, then kill A outright
    while not admin.execute("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]:  # type: ignore[index]
        if not sent.is_alive():
            break
    a.kill()
    sent.join(timeout=60)
    done_before = _rows(own, "SELECT COUNT(*) FROM batches WHERE batch_id = 'big'")[0][0]
    again = _redeem(b.url, wire)()
    assert again.status_code == 200, again.text
    assert all(r["status"] == "accepted" for r in again.json()["body"]["results"])
    assert tuple(_rows(own, "SELECT COUNT(*), SUM(amount) FROM redeemed")[0]) == (400, 4000)
    report = audit_report(own.broker.core)
    assert report["balanced"] and -report["accounts"]["vendor_payables"] == 4000, report
    assert _redeem(b.url, wire)().json() == again.json()  # and the stored answer from now on
    admin.close()
    assert done_before in (0, 1)


def _swallow(call: Callable[[], requests.Response]) -> None:
    with contextlib.suppress(requests.RequestException):  # the process was killed under it
        call()


def test_the_same_payment_sent_to_two_processes_of_one_shop(tmp_path: Path) -> None:
    data = tmp_path / "broker"
    broker = start_broker(data, database_url=database_url_for(data))
    shop_dir = tmp_path / "shop"
    shop_url = database_url_for(shop_dir)
    shop_dir.mkdir()
    port = free_port()
    broker.register_vendor(
        "daily-planet", load_or_create_key(shop_dir / "vendor_key"), api_url=f"http://127.0.0.1:{port}"
    )
    first = spawn_vendor(shop_dir, shop_url, broker.url, broker.public_key.hex, port=port)
    second = spawn_vendor(shop_dir, shop_url, broker.url, broker.public_key.hex)
    try:
        chain = buy_known_chain(broker, n=200)
        at = 0
        for round_ in range(6):
            quote = get_quote(first.url, "harbour-bridge-reopens")
            price = quote["body"]["price"]["amount"]
            if round_ % 2 == 0:  # one payment, sent to both processes at once: one receipt
                wire = payment_of(quote, chain.segment(at, at + price))
                r1, r2 = together(
                    lambda w=wire: requests.post(f"{first.url}/v1/payments", json=w, timeout=60),
                    lambda w=wire: requests.post(f"{second.url}/v1/payments", json=w, timeout=60),
                )
                ok = [r for r in (r1, r2) if r.status_code == 200]
                assert ok, (r1.text, r2.text)
                assert len({r.json()["receipt"]["body"]["receipt_id"] for r in ok}) == 1
            else:  # the same coins for two quotes, at two processes: exactly one accepted
                other = get_quote(second.url, "harbour-bridge-reopens")
                seg = chain.segment(at, at + price)
                r1, r2 = together(
                    lambda w=payment_of(quote, seg): requests.post(f"{first.url}/v1/payments", json=w, timeout=60),
                    lambda w=payment_of(other, seg): requests.post(f"{second.url}/v1/payments", json=w, timeout=60),
                )
                assert sorted([r1.status_code, r2.status_code]) == [200, 409], (r1.text, r2.text)
            at += price
            with psycopg.connect(shop_url) as conn:
                spends = conn.execute("SELECT COUNT(*), MAX(to_index) FROM spends").fetchone()
                payments = conn.execute("SELECT COUNT(*) FROM payments").fetchone()
            assert spends is not None and payments is not None
            assert (spends[0], spends[1], payments[0]) == (round_ + 1, at, round_ + 1)
    finally:
        first.stop()
        second.stop()
        broker.stop()


def test_unique_name_of_the_cluster_schema_per_data_dir(tmp_path: Path) -> None:
    assert database_url_for(tmp_path / "a") != database_url_for(tmp_path / "b")
    assert database_url_for(tmp_path / "a") == database_url_for(tmp_path / "a")
    assert secrets.compare_digest(database_url_for(tmp_path / "a"), database_url_for(tmp_path / "a"))


def test_broker_workers_share_one_database(tmp_path: Path) -> None:
    """``netpay-broker serve --workers 2 --database URL``: two worker processes on one port, one broker."""
    import sys

    import psutil

    from broker_stub.cli import main

    data = tmp_path / "broker"
    url = database_url_for(data)
    assert main(["serve", "--data-dir", str(tmp_path / "lite"), "--workers", "2"]) == 2  # SQLite: one process
    own = start_broker(data, database_url=url)
    port = free_port()
    args = [sys.executable, "-m", "broker_stub.cli", "serve", "--data-dir", str(data), "--port", str(port),
            "--database", url, "--workers", "2"]  # fmt: skip
    served = ServerProcess(args, port, data / "workers.log", "/v1/info")
    try:
        workers = [p for p in psutil.Process(served.proc.pid).children(recursive=True) if "python" in p.name()]
        assert len(workers) >= 2
        shop = TestVendor("shop")
        own.register_vendor(shop.vendor_id, shop.key)
        token = own.new_customer(topup=1_000)
        chains = [own.buy_chain(token, length=10)[0].body.chain_id for _ in range(6)]
        answers = together(*(_claim(served.url, shop.claim(cid)) for cid in chains))
        assert [r.status_code for r in answers] == [200] * 6
        assert requests.get(f"{served.url}/v1/info", timeout=10).json()["broker_id"] == own.broker_id
    finally:
        served.stop()
        own.stop()


def test_shop_workers_share_one_database(tmp_path: Path) -> None:
    """``netpay-vendor serve --workers 2 --database URL``: one shop in two worker processes on one port."""
    import sys

    import psutil

    from vendor_stub.cli import main as vendor_main

    broker = start_broker(tmp_path / "broker", database_url=database_url_for(tmp_path / "broker"))
    shop_dir = tmp_path / "shop"
    shop_dir.mkdir()
    assert vendor_main(["serve", "--data-dir", str(tmp_path / "lite"), "--workers", "2"]) == 2  # SQLite: one process
    port = free_port()
    broker.register_vendor(
        "daily-planet", load_or_create_key(shop_dir / "vendor_key"), api_url=f"http://127.0.0.1:{port}"
    )
    args = [sys.executable, "-m", "vendor_stub.cli", "serve", "--data-dir", str(shop_dir), "--port", str(port),
            "--database", database_url_for(shop_dir), "--broker", broker.url, "--broker-key", broker.public_key.hex,
            "--workers", "2"]  # fmt: skip
    served = ServerProcess(args, port, shop_dir / "workers.log", "/healthz")
    try:
        workers = [p for p in psutil.Process(served.proc.pid).children(recursive=True) if "python" in p.name()]
        assert len(workers) >= 2
        chain = buy_known_chain(broker, n=100)
        at = 0
        for _ in range(4):
            quote = get_quote(served.url, "harbour-bridge-reopens")
            price = quote["body"]["price"]["amount"]
            r = requests.post(f"{served.url}/v1/payments", json=payment_of(quote, chain.segment(at, at + price)),
                              timeout=60)  # fmt: skip
            assert r.status_code == 200, r.text
            at += price
    finally:
        served.stop()
        broker.stop()


def test_every_serve_flag_reaches_the_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers N`` hands the settings to fresh worker interpreters: the fee, the peer-supply policy (once
    dropped there: workers ran with the defaults) and the shop's ``--no-settlement`` must arrive as given."""
    import uvicorn

    from broker_stub import cli as broker_cli
    from vendor_stub import cli as vendor_cli

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # the workers' app is built below, as uvicorn would
    for name in (broker_cli._SERVE_ENV, vendor_cli._SERVE_ENV):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "broker"
    args = ["serve", "--data-dir", str(data), "--port", str(free_port()), "--database", database_url_for(data),
            "--workers", "2", "--redemption-fee-bps", "125", "--peer-supply-ratio", "1.5", "--peer-supply-grace", "40",
            "--close-grace", "7"]  # fmt: skip
    assert broker_cli.main(args) == 0
    app = broker_cli.app_from_env()
    s = app.state.broker.core.settings
    assert (s.redemption_fee_bps, s.peer_supply_ratio, s.peer_supply_grace, s.close_grace_s) == (125, 1.5, 40, 7)
    app.state.broker.close()
    with pytest.raises(SystemExit) as refused:  # argparse: a clear message and exit status 2
        broker_cli.main(["serve", "--data-dir", str(tmp_path / "x"), "--redemption-fee-bps", "10001"])
    assert refused.value.code == 2

    shop = tmp_path / "shop"
    assert vendor_cli.main(["serve", "--data-dir", str(shop), "--database", database_url_for(shop), "--workers", "2",
                            "--no-settlement"]) == 0  # fmt: skip
    vendor_app = vendor_cli.app_from_env()
    assert vendor_app.state.vendor.settings.settlement is False
    vendor_app.state.vendor.close()

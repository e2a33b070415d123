"""Spend reports: payments on a held chain need no broker; reports wait while the broker is down and go out, in
the background, once it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.support.broker import RunningBroker, start_broker
from tests.support.vendor import buy_known_chain, payment_of, start_vendor


def _reported(broker: RunningBroker, chain_id: str) -> int:
    row = broker.broker.core.db.one("SELECT reported_index FROM chains WHERE chain_id = ?", (chain_id,))
    return int(row[0]) if row else -1


def test_reports_are_retried_until_the_broker_is_back(
    broker_factory: Callable[..., RunningBroker], tmp_path: Path
) -> None:
    broker = broker_factory(data_dir=tmp_path / "broker")
    port = broker.server.port
    vendor = start_vendor(broker, tmp_path / "vendor", report_delay_s=0.05)
    try:
        c = buy_known_chain(broker, n=100)
        cid = c.cert.body.chain_id.hex()
        assert vendor.pay(payment_of(vendor.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
        deadline = time.monotonic() + 10
        while _reported(broker, cid) != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _reported(broker, cid) == 3

        broker.stop()
        # The chain is held: paying needs no broker at all.
        for start in (3, 6):
            resp = vendor.pay(payment_of(vendor.quote("night-market-returns"), c.segment(start, start + 3)))
            assert resp.status_code == 200, resp.text
        time.sleep(0.5)
        unreported = vendor.vendor.store.one("SELECT COUNT(*) FROM spends WHERE reported_at IS NULL")
        assert unreported is not None and unreported[0] == 2

        back = start_broker(tmp_path / "broker", port=port)
        try:
            deadline = time.monotonic() + 15
            while _reported(back, cid) != 9 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _reported(back, cid) == 9

            def left() -> int:
                row = vendor.vendor.store.one("SELECT COUNT(*) FROM spends WHERE reported_at IS NULL")
                return int(row[0]) if row else -1

            while left() != 0 and time.monotonic() < deadline:  # the vendor marks them once the broker answered
                time.sleep(0.05)
            assert left() == 0
        finally:
            vendor.stop()
            back.stop()
    finally:
        vendor.stop()


def test_a_process_without_settlement_serves_and_leaves_reports_to_another(
    broker: RunningBroker, tmp_path: Path
) -> None:
    """``--no-settlement``: the process takes payments and keeps its revocation list fresh, but starts no reporter
    and no redeemer (another process of the shop settles; on SQLite, ``netpay-vendor redeem``)."""
    quiet = start_vendor(broker, tmp_path / "vendor", settlement=False, report_delay_s=0.01)
    try:
        c = buy_known_chain(broker, n=50)
        assert quiet.pay(payment_of(quiet.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
        assert quiet.vendor._revocations is not None  # revocation refresh runs in every process
        assert quiet.vendor.reporter._thread is None and quiet.vendor.redeemer._thread is None
        assert quiet.vendor.redeemer.redeem()["accepted"] == 1  # settling by hand still works
    finally:
        quiet.stop()

"""Paying from the hosted e-wallet: ``hosted_pay_ms``.

A real broker and vendor on loopback; a customer with a hosted chain grants the vendor a budget through the real
redirect (played by a requests session). Timed, per repetition: ``POST /hosted/buy/{item}`` with the grant cookie,
which makes a quote, computes W_{i+c} from the slice's top payword (at most the slice's length in hashes), pays it
through the vendor's ordinary payment desk (durable spend and receipt) and answers with the paid item's redirect.
``hosted_pay_ms`` = the median in milliseconds; compare ``handoff_ms`` (the desktop wallet through its callback).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from tests.support.broker import start_broker
from tests.support.hosted import authorize, hosted_customer
from tests.support.vendor import start_vendor

REPETITIONS = 100
WARMUP = 3
ITEM = "night-market-returns"  # 3 cents


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-hosted-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        vendor = start_vendor(broker, root / "vendor")
        try:
            coins = 3 * (REPETITIONS + WARMUP + 1)
            name, _ = hosted_customer(broker, hosted_cents=coins, topup=coins)
            browser = requests.Session()
            r = authorize(browser, vendor, name, f"{coins / 100:.2f}", item=ITEM)
            assert 'class="story paid"' in r.text, r.text
            url = f"{vendor.url}/hosted/buy/{ITEM}"
            times: list[float] = []
            for i in range(WARMUP + REPETITIONS):
                t0 = time.perf_counter()
                resp = browser.post(url, allow_redirects=False)
                elapsed = time.perf_counter() - t0
                assert resp.status_code == 303 and "?code=" in resp.headers["location"], resp.text
                if i >= WARMUP:
                    times.append(elapsed)
            return {"hosted_pay_ms": round(statistics.median(times) * 1000, 2)}
        finally:
            vendor.stop()
            broker.stop()


if __name__ == "__main__":
    print(run())

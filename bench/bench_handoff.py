"""Browser hand-off cost: ``handoff_ratio`` and ``handoff_ms``.

A real broker, vendor and wallet core run on loopback with the wallet's callback in front. The vendor is covered by
an allowance, so a purchase is paid without a prompt. Per repetition, interleaved:

- **purchase**: a client does what the page script does with a quote already in hand — ``POST /v1/purchase`` with
  its Origin — and waits for the paid answer (the wallet checks the quote, journals the spend, pays the vendor over
  HTTP, stores the receipt);
- after each purchase (untimed for the ratio) the wallet's deferred vault work — applying the spend's journal
  intent, the receipt write, the fsync of those writes and any due checkpoint, done on its vault worker after
  answering — is flushed, so it cannot slow the baseline down;
  ``handoff_with_background_ms`` is the purchase including that work;
- **baseline**: two plain JSON round trips over the same path with no payment work — client → callback
  ``GET /v1/hello``, and wallet → vendor ``POST /v1/echo`` (a payment-sized body, through the wallet's own vendor
  client).

``handoff_ratio`` = median(purchase) / median(baseline); ``handoff_ms`` = median(purchase) in milliseconds.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from netpay.money import Money
from tests.support.broker import start_broker
from tests.support.vendor import start_vendor
from tests.support.wallet import funded_wallet, new_wallet, quote_for
from wallet_app.callback.coordinator import PurchaseCoordinator
from wallet_app.callback.limits import Limits
from wallet_app.callback.server import CallbackServer
from wallet_app.callback.services_adapter import ServicesWalletPort
from wallet_app.clients.vendor import VendorClient

REPETITIONS = 40
WARMUP = 3


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        vendor = start_vendor(broker, root / "vendor")
        wallet = new_wallet(root / "wallet")
        server: CallbackServer | None = None
        try:
            funded_wallet(wallet, broker.url, chains=1, coins=2000, coin_value=1)
            wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(100, "EUR"), Money(100_000, "EUR"))
            # A generous rate limit: the benchmark buys far faster than a person clicks.
            limits = Limits(burst=1000, per_second=1000.0)
            server = CallbackServer(PurchaseCoordinator(ServicesWalletPort(wallet), limits=limits), port=0).start()
            return _measure(server, vendor.url, wallet.vault.flush)
        finally:
            if server is not None:
                server.stop()
                server.coordinator.shutdown()
            wallet.close()
            vendor.stop()
            broker.stop()


def _measure(server: CallbackServer, vendor_url: str, flush: Callable[[], None]) -> dict[str, float | int]:
    items = requests.get(f"{vendor_url}/v1/catalog", timeout=10).json()["items"]
    item = next(i["item_id"] for i in items if i["model"]["kind"] == "one_off" if isinstance(i.get("model"), dict))
    offers: list[dict[str, Any]] = []
    for _ in range(REPETITIONS + WARMUP):
        quote, cert = quote_for(vendor_url, item)
        offers.append({"quote": quote, "vendor_certificate": cert})
    client = requests.Session()  # the page's path to the callback (a browser keeps its connection open too)
    headers = {"Origin": vendor_url}
    echo_client = VendorClient(vendor_url)  # the wallet's path to the vendor
    echo_body = offers[0]
    purchase_s: list[float] = []
    baseline_s: list[float] = []
    background_s: list[float] = []
    for i, offer in enumerate(offers):
        t0 = time.perf_counter()
        resp = client.post(f"{server.url}/v1/purchase", json=offer, headers=headers, timeout=30)
        t1 = time.perf_counter()
        if resp.status_code != 200 or resp.json().get("status") != "paid":
            raise RuntimeError(f"purchase was not paid: {resp.status_code} {resp.text[:200]}")
        tf = time.perf_counter()
        flush()  # the wallet's deferred vault work (spend, receipt, fsync, checkpoint) must not run in the baseline
        t2 = time.perf_counter()
        hello = client.get(f"{server.url}/v1/hello", timeout=30)
        t3 = time.perf_counter()
        echo_client.echo(echo_body)
        t4 = time.perf_counter()
        if hello.status_code != 200:
            raise RuntimeError("hello failed")
        if i >= WARMUP:
            purchase_s.append(t1 - t0)
            background_s.append(t2 - tf)
            baseline_s.append((t3 - t2) + (t4 - t3))
    purchase = statistics.median(purchase_s)
    baseline = statistics.median(baseline_s)
    return {
        "handoff_ratio": round(purchase / baseline, 3),
        "handoff_ms": round(purchase * 1000, 2),
        "handoff_baseline_ms": round(baseline * 1000, 2),
        # the purchase plus the vault work the wallet does after answering (spend, receipt, fsync, checkpoint)
        "handoff_with_background_ms": round(
            statistics.median(p + b for p, b in zip(purchase_s, background_s, strict=True)) * 1000, 2
        ),
    }


if __name__ == "__main__":
    print(run())

"""Paid API calls through the client library: ``api_call_ratio`` and ``api_call_ms``.

A real broker, the Daily Planet and a wallet (its vault opened by the library, as a script without a running wallet
would) run on loopback. Per repetition, interleaved:

- **paid**: ``PayingSession.get(/api/search?q=<a new query>)``, with nothing in hand for that query: the library pays
  the quote the previous paid answer carried (``NetPay-Quote``; the very first call gets it from a 402 challenge),
  after the spending rules and every wallet check, journalled durably, inside the request (``NetPay-Payment``); the
  shop takes the payment (every check, its durable commit, the query's binding in the same transaction) and answers
  the search result with the receipt (``NetPay-Receipt``), which the wallet verifies and stores;
- **unpaid**: the same call with its token already in hand: one ``GET`` answered with the same search result (the
  shop's token check included), through the same pooled session.

The library journals the kept quote's payment ahead, on a helper thread, as soon as a paid answer is in
(``wallet_app.client.session``): a program that does anything with an answer before its next call finds its next
payment ready. Before the unpaid call the benchmark waits for that helper (``PayingSession.settle``), so its work
is in neither timing and slows neither call; the paid call then measures sending the payment, the shop taking it
and the receipt's check and storing.

``api_call_ratio`` = median(paid) / median(unpaid); ``api_call_ms`` = median(paid) in milliseconds.
``api_call_back_to_back_ms`` (reported): paid calls one right after another, with no pause for the helper, so
each waits for its own payment's journal as before; ``api_call_back_to_back_ratio`` the same ÷ median(unpaid).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.broker import start_broker
from tests.support.vendor import start_vendor
from tests.support.wallet import funded_wallet, new_wallet
from wallet_app.client import PayingSession, SpendingRules

REPETITIONS = 150
WARMUP = 10
BACK_TO_BACK = 60


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        vendor = start_vendor(broker, root / "vendor")
        wallet = new_wallet(root / "wallet")
        try:
            funded_wallet(wallet, broker.url, chains=1, coins=2000, coin_value=1)
            api = PayingSession(wallet, SpendingRules.parse("EUR", per_request=1, daily=1000))
            url = f"{vendor.url}/api/search"
            paid: list[float] = []
            unpaid: list[float] = []
            for i in range(REPETITIONS + WARMUP):
                params = {"q": f"the {i}"}
                t0 = time.perf_counter()
                resp = api.get(url, params=params, timeout=30)
                t1 = time.perf_counter()
                assert resp.status_code == 200 and len(api.payments) == i + 1, resp.text
                token = api.payments[-1].access_token
                assert api.settle(30)  # the next payment, journalled ahead: in neither timing
                t2 = time.perf_counter()
                again = api.get(url, params=params, headers={"Authorization": f"NetPay {token}"}, timeout=30)
                t3 = time.perf_counter()
                assert again.status_code == 200 and again.json() == resp.json()
                if i >= WARMUP:
                    paid.append(t1 - t0)
                    unpaid.append(t3 - t2)
            assert len(api.payments) == REPETITIONS + WARMUP
            back_to_back: list[float] = []
            for i in range(BACK_TO_BACK):
                t0 = time.perf_counter()
                resp = api.get(url, params={"q": f"again {i}"}, timeout=30)
                back_to_back.append(time.perf_counter() - t0)
                assert resp.status_code == 200, resp.text
            assert len(api.payments) == REPETITIONS + WARMUP + BACK_TO_BACK
            p, u, b = statistics.median(paid), statistics.median(unpaid), statistics.median(back_to_back[WARMUP:])
            return {"api_call_ratio": round(p / u, 3), "api_call_ms": round(p * 1000, 3),
                    "api_unpaid_ms": round(u * 1000, 3), "api_call_back_to_back_ms": round(b * 1000, 3),
                    "api_call_back_to_back_ratio": round(b / u, 3)}  # fmt: skip
        finally:
            wallet.close()
            vendor.stop()
            broker.stop()

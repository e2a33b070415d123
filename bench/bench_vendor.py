"""Vendor payment endpoint throughput: ``pay_endpoint_ratio`` (target >= 0.5).

A real broker and a real vendor run on loopback, each in its own process (uvicorn; the vendor with durable group
commit). Four client threads, each with its own requests.Session and its own chain already held by the vendor, send
10-coin payments (``POST /v1/payments``, every receipt durable on disk before it is sent) and, interleaved in the same
run, the same bodies to the plain JSON echo (``POST /v1/echo``). Payments and their quotes are prepared before
timing, so the clients only send bytes. The phases are short (``PER_CLIENT`` requests per client) and alternate
which goes first, so both see the same background load. ``pay_endpoint_ratio`` = the median over repetitions of
payments/s divided by echo/s of the same repetition; ``pay_endpoint_rps`` / ``echo_endpoint_rps`` are medians.
``BENCH_VERBOSE=1`` prints per-repetition rates and server CPU per request; ``BENCH_PROFILE=FILE`` profiles the
vendor's event loop.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import requests

from netpay.keys import load_or_create_key
from netpay_web.live import free_port
from tests.support.broker import start_broker
from tests.support.vendor import CARDS, buy_chain, make_payment
from vendor_stub.service import key_path

CLIENTS = 4
PER_CLIENT = 15
REPETITIONS = 21
ITEM = "thank-you-sunrise"  # 10 cents = 10 coins of 1 cent
HEADERS = {"Content-Type": "application/json"}


def _spawn(args: list[str], ready_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``python args...`` and wait until ``ready_url`` answers 200."""
    cmd = [sys.executable, *args]
    if os.environ.get("BENCH_PROFILE") and "vendor_stub.cli" in args:  # profile the vendor's event loop
        cmd = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(ready_url, timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{args} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # graceful: uvicorn shuts down (and a profile, if any, is written)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _start_vendor(broker_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        NETPAY_VENDOR_PORT=str(port),
        NETPAY_VENDOR_DATA_DIR=str(data_dir),
        NETPAY_VENDOR_BROKER=broker_url,
        NETPAY_VENDOR_CATALOG=str(CARDS),
        NETPAY_VENDOR_VENDOR_ID="bench-cards",
    )
    args = ["-m", "vendor_stub.cli", "serve", "--name", "Paper Lantern Cards"]
    return _spawn(args, f"http://127.0.0.1:{port}/v1/info", env)


def _phase(url: str, bodies: list[list[bytes]], sessions: list[requests.Session]) -> float:
    """Send each client's bodies from its own thread; return requests per second over the whole phase."""
    barrier = threading.Barrier(len(bodies) + 1)
    errors: list[str] = []

    def client(i: int) -> None:
        s = sessions[i]
        barrier.wait()
        for body in bodies[i]:
            r = s.post(url, data=body, headers=HEADERS, timeout=30)
            if r.status_code != 200:
                errors.append(r.text[:200])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return sum(len(b) for b in bodies) / elapsed


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-vendor-") as tmp:
        root = Path(tmp)
        # Set up with an in-process broker (register the vendor, buy one chain per client), then run the broker
        # as its own process on the same port and data: during the measurement it takes the vendor's spend
        # reports without sharing the clients' interpreter.
        broker = start_broker(root / "broker")
        broker_port = broker.server.port
        port = free_port()
        key = load_or_create_key(key_path(root / "vendor"))
        broker.register_vendor("bench-cards", key, api_url=f"http://127.0.0.1:{port}")
        need = PER_CLIENT * REPETITIONS + 1
        chains = [buy_chain(broker, n=10 * need + 10, coin_value=1) for _ in range(CLIENTS)]
        broker.stop()
        broker_cmd = ["-m", "broker_stub.cli", "serve", "--port", str(broker_port), "--data-dir", str(root / "broker")]
        broker_proc = _spawn(broker_cmd, f"http://127.0.0.1:{broker_port}/v1/info", os.environ.copy())
        try:
            proc = _start_vendor(f"http://127.0.0.1:{broker_port}", root / "vendor", port)
        except BaseException:
            _stop(broker_proc)
            raise
        url = f"http://127.0.0.1:{port}"
        sessions = [requests.Session() for _ in range(CLIENTS)]
        try:

            def quote(s: requests.Session) -> dict[str, Any]:
                r = s.post(f"{url}/v1/quotes", json={"item_id": ITEM}, timeout=30)
                r.raise_for_status()
                q: dict[str, Any] = r.json()["quote"]
                return q

            # first payment on each chain: the vendor claims custody at the broker (not timed)
            for i, (cert, trav) in enumerate(chains):
                r = sessions[i].post(f"{url}/v1/payments", json=make_payment(quote(sessions[i]), [(cert, trav, 10)]))
                r.raise_for_status()
            pay_bodies = [
                [
                    json.dumps(make_payment(quote(sessions[i]), [(cert, trav, 10)])).encode()
                    for _ in range(PER_CLIENT * REPETITIONS)
                ]
                for i, (cert, trav) in enumerate(chains)
            ]
            pay_rates: list[float] = []
            echo_rates: list[float] = []
            _phase(f"{url}/v1/echo", [b[:10] for b in pay_bodies], sessions)  # warm-up
            server = psutil.Process(proc.pid)
            cpu = {"echo": 0.0, "pay": 0.0}
            for rep in range(REPETITIONS):
                chunk = [b[rep * PER_CLIENT : (rep + 1) * PER_CLIENT] for b in pay_bodies]
                # short phases, alternating which goes first, so both see the same background load
                for kind in ("echo", "pay") if rep % 2 == 0 else ("pay", "echo"):
                    before = sum(server.cpu_times()[:2])
                    path = "/v1/echo" if kind == "echo" else "/v1/payments"
                    (echo_rates if kind == "echo" else pay_rates).append(_phase(url + path, chunk, sessions))
                    cpu[kind] += sum(server.cpu_times()[:2]) - before
            pay = statistics.median(pay_rates)
            echo = statistics.median(echo_rates)
            ratios = [p / e for p, e in zip(pay_rates, echo_rates, strict=True)]
            if os.environ.get("BENCH_VERBOSE"):
                print("per repetition: pay", [round(p) for p in pay_rates], "echo", [round(e) for e in echo_rates])
                n = CLIENTS * PER_CLIENT * REPETITIONS
                print(
                    "server cpu per request (us): pay",
                    round(cpu["pay"] / n * 1e6),
                    "echo",
                    round(cpu["echo"] / n * 1e6),
                )
                print("writer:", requests.get(f"{url}/healthz", timeout=5).json())
                print("threads:", [(t.id, round(t.user_time, 2), round(t.system_time, 2)) for t in server.threads()])
            ratio = statistics.median(ratios)
            return {
                "pay_endpoint_ratio": round(ratio, 3),
                "pay_endpoint_rps": round(pay, 1),
                "echo_endpoint_rps": round(echo, 1),
            }
        finally:
            for s in sessions:
                s.close()
            _stop(proc)
            _stop(broker_proc)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

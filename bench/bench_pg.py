"""The broker and a shop on PostgreSQL, in several processes (issue 18's figures; none has a target, all reported).

Broker, with 1 and then 2 ``netpay-broker`` processes on one PostgreSQL database (a durable cluster of the
benchmark's own: fsync on, synchronous_commit on), driven over HTTP by ``CLIENTS`` threads that spread their
requests over the processes:

- ``pg_broker{N}_claims_per_s``: custody claims (one chain each) per second;
- ``pg_broker{N}_report_rows_per_s``: spend-report entries per second (reports of ``REPORT_ROWS`` entries, each
  entry's payword verified against the chain);
- ``pg_broker{N}_redeemed_coins_per_s``: coins redeemed per second (batches of ``BATCH_CLAIMS`` claims).

Shop: the Paper Lantern Cards shop with its state in PostgreSQL served by 2 ``netpay-vendor`` processes, against
the same shop on SQLite in 1 process (its default), 4 clients each paying 10-coin payments from a chain of its own;
short phases alternate between the two and the median of the per-phase ratios is ``pg_pay_ratio``.

The machine is a shared 2-core VM: the client threads, the servers and PostgreSQL all share those two cores, so
two processes cannot show what they would on a machine with a core each; read the 1 → 2 figures with that caveat.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from broker_stub.services import Broker
from broker_stub.settings import BrokerSettings
from netpay.keys import SigningKey, load_or_create_key
from netpay.messages import CustodyClaim, RedemptionBatch, RedemptionClaim, SpendEntry, SpendReport
from netpay.signed import Signed
from netpay.traversal import PaywordTraversal, create_chain
from netpay_web.live import free_port
from netpay_web.pgcluster import PgCluster
from tests.support.broker import start_broker
from tests.support.processes import ServerProcess, spawn_broker
from tests.support.vendor import CARDS, buy_chain, make_payment

CLIENTS = 4
CHAINS = 480
REPORT_ROWS = 20
REPORT_ROUNDS = 2
BATCH_CLAIMS = 20
SHOP_PER_CLIENT = 30
SHOP_REPETITIONS = 4
ITEM = "thank-you-sunrise"  # 10 coins of 1 cent


def _spread(bodies: list[tuple[str, bytes]], check: Callable[[requests.Response], bool]) -> float:
    """POST every (url, body) from CLIENTS threads (client i takes every CLIENTS-th body); seconds elapsed."""
    barrier = threading.Barrier(CLIENTS + 1)
    errors: list[str] = []

    def client(i: int) -> None:
        with requests.Session() as s:
            barrier.wait()
            for url, body in bodies[i::CLIENTS]:
                r = s.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=120)
                if not check(r):
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed


def _wal(cluster: PgCluster) -> int:
    """The cluster's write-ahead log position in bytes (what every commit since costs the primary to log)."""
    import psycopg

    with psycopg.connect(cluster.url("postgres")) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def _table_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname = 'public'"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _broker_figures(cluster: PgCluster, procs: int, root: Path) -> dict[str, float]:
    url = cluster.create_database(f"bench_broker{procs}")
    data = root / f"broker{procs}"
    settings = BrokerSettings(data_dir=data, database_url=url, argon2_time_cost=1, argon2_memory_kib=8,
                              argon2_parallelism=1, max_charge=10**9)  # fmt: skip
    broker = Broker(settings)
    vendor = SigningKey.generate()
    broker.vendors.register({"vendor_id": "bench-shop", "display_name": "Bench", "public_key": vendor.public.hex,
                             "origins": ["http://127.0.0.1:9"], "api_url": "http://127.0.0.1:9",
                             "payment_url": "http://127.0.0.1:9/v1/payments"})  # fmt: skip
    broker.accounts.register({"username": "bench", "password": "bench password"})
    account = broker.accounts.login({"username": "bench", "password": "bench password"})["account_id"]
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    broker.accounts.topup(account, {"amount": {"amount": CHAINS * 100, "currency": "EUR"}, "card": card}, "t")
    chains: list[tuple[bytes, PaywordTraversal]] = []
    for i in range(CHAINS):
        chain_id = secrets.token_bytes(16)
        touchstone, traversal = create_chain(chain_id, 100)
        broker.issuing.purchase(account, {"chain_id": chain_id.hex(), "touchstone": touchstone.hex(), "length": 100,
                                          "coin_value": {"amount": 1, "currency": "EUR"}}, f"buy{i}")  # fmt: skip
        chains.append((chain_id, traversal))
    servers = [spawn_broker(data, url) for _ in range(procs)]
    broker.close()
    try:
        now = int(time.time())
        claims = [
            (servers[i % procs].url + "/v1/custody/claims",
             json.dumps(Signed.sign(CustodyClaim("bench-shop", cid, secrets.token_hex(8), now), vendor).to_wire())
             .encode())
            for i, (cid, _) in enumerate(chains)
        ]  # fmt: skip
        wal0 = _wal(cluster)
        claim_s = _spread(claims, lambda r: r.status_code == 200)
        wal_claims = _wal(cluster) - wal0
        reports: list[tuple[str, bytes]] = []
        for _ in range(REPORT_ROUNDS):
            entries = []
            for cid, trav in chains:
                start = trav.position
                index, word = trav.advance(10)
                entries.append(SpendEntry(cid, start, index, word))
            for j in range(0, len(entries), REPORT_ROWS):
                body = SpendReport(secrets.token_hex(8), "bench-shop", tuple(entries[j : j + REPORT_ROWS]), now)
                reports.append((servers[len(reports) % procs].url + "/v1/spend-reports",
                                json.dumps(Signed.sign(body, vendor).to_wire()).encode()))  # fmt: skip
        # the rounds in order (round 2 builds on round 1's points): one phase per round
        per_round = len(reports) // REPORT_ROUNDS
        wal0 = _wal(cluster)
        report_s = sum(
            _spread(reports[k * per_round : (k + 1) * per_round], lambda r: r.status_code == 200)
            for k in range(REPORT_ROUNDS)
        )
        wal_reports = _wal(cluster) - wal0
        batches: list[tuple[str, bytes]] = []
        coins = 0
        redeem_claims = []
        for cid, trav in chains:
            index, word = trav.advance(30)
            redeem_claims.append(RedemptionClaim(cid, 0, index, word))
            coins += index
        for j in range(0, len(redeem_claims), BATCH_CLAIMS):
            body = RedemptionBatch(secrets.token_hex(8), "bench-shop", tuple(redeem_claims[j : j + BATCH_CLAIMS]), now)
            batches.append((servers[len(batches) % procs].url + "/v1/redemptions",
                            json.dumps(Signed.sign(body, vendor).to_wire()).encode()))  # fmt: skip
        wal0 = _wal(cluster)
        redeem_s = _spread(batches, lambda r: r.status_code == 200)
        wal_redeem = _wal(cluster) - wal0
        table_bytes = _table_bytes(url)
    finally:
        for s in servers:
            s.stop()
    extra = {}
    if procs == 1:  # the costs do not depend on the number of processes: reported once
        extra = {
            "pg_broker_wal_bytes_per_claim": round(wal_claims / CHAINS),
            "pg_broker_wal_bytes_per_report_row": round(wal_reports / (CHAINS * REPORT_ROUNDS)),
            "pg_broker_wal_bytes_per_redeemed_claim": round(wal_redeem / CHAINS),
            "pg_broker_table_bytes_per_chain": round(table_bytes / CHAINS),
        }
    return {
        **extra,
        f"pg_broker{procs}_claims_per_s": round(CHAINS / claim_s, 1),
        f"pg_broker{procs}_report_rows_per_s": round(CHAINS * REPORT_ROUNDS / report_s, 1),
        f"pg_broker{procs}_redeemed_coins_per_s": round(coins / redeem_s, 1),
    }


def _shop(root: Path, broker: Any, name: str, database: str, procs: int) -> list[ServerProcess]:
    """Register shop ``name`` at ``broker`` and start it in ``procs`` processes (``database`` "" = SQLite)."""
    data = root / name
    data.mkdir()
    port = free_port()
    broker.register_vendor(name, load_or_create_key(data / "vendor_key"), api_url=f"http://127.0.0.1:{port}")
    key = broker.public_key.hex
    return [_spawn_shop(data, database, broker.url, key, port if i == 0 else None, name) for i in range(procs)]


def _spawn_shop(data: Path, database: str, broker_url: str, broker_key: str, port: int | None, name: str
                ) -> ServerProcess:  # fmt: skip
    port = port or free_port()
    args = [sys.executable, "-m", "vendor_stub.cli", "serve", "--data-dir", str(data), "--port", str(port),
            "--broker", broker_url, "--broker-key", broker_key, "--name", "Paper Lantern Cards",
            "--vendor-id", name, "--catalog", str(CARDS)]  # fmt: skip
    if database:
        args += ["--database", database]
    return ServerProcess(args, port, data / f"vendor-{port}.log", "/healthz")


def _shop_figures(cluster: PgCluster, root: Path) -> dict[str, float]:
    broker = start_broker(root / "shop-broker")
    try:
        need = SHOP_PER_CLIENT * SHOP_REPETITIONS + 1
        shop_url = cluster.create_database("bench_shop")
        shops = {
            "sqlite": _shop(root, broker, "bench-sqlite", "", 1),
            "pg": _shop(root, broker, "bench-pg", shop_url, 2),
        }
        bodies: dict[str, list[list[tuple[str, bytes]]]] = {}
        for kind, servers in shops.items():
            per_client = []
            for i in range(CLIENTS):
                url = servers[i % len(servers)].url
                cert, trav = buy_chain(broker, n=10 * need + 10, coin_value=1)

                def quote(u: str = url) -> dict[str, Any]:
                    r = requests.post(f"{u}/v1/quotes", json={"item_id": ITEM}, timeout=30)
                    r.raise_for_status()
                    q: dict[str, Any] = r.json()["quote"]
                    return q

                first = requests.post(f"{url}/v1/payments", json=make_payment(quote(), [(cert, trav, 10)]), timeout=60)
                first.raise_for_status()  # the custody claim at the broker: not timed
                per_client.append(
                    [(url + "/v1/payments", json.dumps(make_payment(quote(), [(cert, trav, 10)])).encode())
                     for _ in range(SHOP_PER_CLIENT * SHOP_REPETITIONS)]
                )  # fmt: skip
            bodies[kind] = per_client
        rates: dict[str, list[float]] = {"sqlite": [], "pg": []}
        wal_pg = 0
        for rep in range(SHOP_REPETITIONS):
            for kind in ("sqlite", "pg") if rep % 2 == 0 else ("pg", "sqlite"):
                chunk = [b[rep * SHOP_PER_CLIENT : (rep + 1) * SHOP_PER_CLIENT] for b in bodies[kind]]
                flat = [chunk[c][k] for k in range(SHOP_PER_CLIENT) for c in range(CLIENTS)]  # client c: every 4th
                wal0 = _wal(cluster) if kind == "pg" else 0
                rates[kind].append(len(flat) / _spread(flat, lambda r: r.status_code == 200))
                if kind == "pg":
                    wal_pg += _wal(cluster) - wal0
        pg_payments = SHOP_REPETITIONS * SHOP_PER_CLIENT * CLIENTS
        shop_bytes = _table_bytes(shop_url) / (pg_payments + CLIENTS)
        for servers in shops.values():
            for s in servers:
                s.stop()
    finally:
        broker.stop()
    ratios = [p / s for p, s in zip(rates["pg"], rates["sqlite"], strict=True)]
    return {
        "pg_pay_ratio": round(statistics.median(ratios), 3),
        "pg_shop2_pay_per_s": round(statistics.median(rates["pg"]), 1),
        "pg_shop_wal_bytes_per_payment": round(wal_pg / pg_payments),
        "pg_shop_table_bytes_per_payment": round(shop_bytes),
        "sqlite_shop1_pay_per_s": round(statistics.median(rates["sqlite"]), 1),
    }


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        root = Path(tmp)
        cluster = PgCluster(durable=True).start()
        try:
            figures: dict[str, float | int] = {}
            for procs in (1, 2):
                figures.update(_broker_figures(cluster, procs, root))
            figures.update(_shop_figures(cluster, root))
            return figures
        finally:
            cluster.stop()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

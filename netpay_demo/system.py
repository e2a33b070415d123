"""Bring up the demo system: a broker, the two demo shops, a funded demo customer, and (for the demo) the wallet.

Every part runs as its own process on loopback, exactly as a user would run it; the data lives in one demo
directory, fresh each time unless ``keep`` is set. A lock file in that directory stops a second demo from starting.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests

from netpay.money import Money
from netpay_demo.processes import DemoError, ManagedProcess, port_is_free

__all__ = ["DEMO_CUSTOMER", "DemoConfig", "DemoSystem", "ShopSpec"]

CATALOGS = Path(__file__).resolve().parent.parent / "vendor_stub" / "catalogs"

#: The demo customer's broker login and the money put on the account with the test card.
DEMO_CUSTOMER = {"username": "demo", "password": "demo-password-2026", "funds": Money(2000, "EUR")}
TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@dataclass(frozen=True)
class ShopSpec:
    """One demo vendor."""

    key: str
    name: str
    catalog: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class DemoConfig:
    data_dir: Path
    broker_port: int = 8100
    news_port: int = 8201
    cards_port: int = 8202
    callback_port: int = 8765
    keep: bool = False
    #: Keep the broker's and the shops' state in PostgreSQL (a cluster of the demo's own under data_dir/postgres).
    postgres: bool = False

    @property
    def broker_url(self) -> str:
        return f"http://127.0.0.1:{self.broker_port}"

    def shops(self) -> list[ShopSpec]:
        return [
            ShopSpec("news", "Daily Planet", "daily_planet.json", self.news_port),
            ShopSpec("cards", "Paper Lantern Cards", "greeting_cards.json", self.cards_port),
        ]


class DemoSystem:
    """The running demo processes; use as a context manager so everything stops on the way out."""

    def __init__(self, config: DemoConfig, say: Any = print) -> None:
        self.config = config
        self.say = say
        self.processes: dict[str, ManagedProcess] = {}
        self.vendor_ids: dict[str, str] = {}
        self._lock_file: IO[str] | None = None
        self.operator_token = ""
        self.pg: Any = None
        self.databases: dict[str, str] = {}  # part → postgresql:// URL (with --postgres)

    # -- set-up -------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Take the demo lock, check the ports, and create (or keep) the data directory."""
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = cfg.data_dir / "demo.lock"
        self._lock_file = lock_path.open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.seek(0)
            pid = self._lock_file.read().strip() or "?"
            raise DemoError(
                f"a demo is already running (pid {pid}) with data in {cfg.data_dir}; stop it with Ctrl+C first"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        ports = {"broker": cfg.broker_port, "wallet callback": cfg.callback_port}
        ports.update({shop.name: shop.port for shop in cfg.shops()})
        for what, port in ports.items():
            if not port_is_free(port):
                raise DemoError(
                    f"port {port} ({what}) is taken by another program; free it or pick another port "
                    f"(netpay-demo --help lists the port options)"
                )
        if not cfg.keep:
            for child in cfg.data_dir.iterdir():
                if child.name != "demo.lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        if cfg.postgres:
            self._start_postgres()

    def _start_postgres(self) -> None:
        from netpay_web.pgcluster import PgCluster

        port = 54320 + os.getpid() % 1000  # the socket lives in the cluster's directory; the number only names it
        self.pg = PgCluster(self.config.data_dir / "postgres", durable=True, port=port).start()
        for part in ("broker", *(f"vendor-{shop.key}" for shop in self.config.shops())):
            name = part.replace("-", "_")
            self.databases[part] = (
                self.pg.url(name) if self.config.keep and self._has_database(name) else self.pg.create_database(name)
            )
        self.say(f"postgres   {self.pg.socket_dir} (PostgreSQL, databases {', '.join(sorted(self.databases))})")

    def _has_database(self, name: str) -> bool:
        import psycopg

        with psycopg.connect(self.pg.url("postgres")) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def database_args(self, part: str) -> list[str]:
        """``--database URL`` for a part when the demo runs on PostgreSQL, else nothing (SQLite in its data dir)."""
        return ["--database", self.databases[part]] if part in self.databases else []

    def _proc(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        proc = ManagedProcess(name, args, self.config.data_dir / "logs" / f"{name}.log", env or {})
        self.processes[name] = proc
        return proc.start()

    def start_broker(self) -> None:
        cfg = self.config
        proc = self._proc(
            "broker",
            [
                "-m",
                "broker_stub.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(cfg.broker_port),
                "--data-dir",
                str(cfg.data_dir / "broker"),
                "--broker-id",
                "demo-broker",
                "--close-grace",
                "5",
                *self.database_args("broker"),
            ],
        )
        proc.wait_http(f"{cfg.broker_url}/v1/info")
        self.operator_token = (cfg.data_dir / "broker" / "operator_token").read_text().strip()
        info = requests.get(f"{cfg.broker_url}/v1/info", timeout=5).json()
        self.say(f"broker     {cfg.broker_url}  id {info['broker_id']}  key {info.get('fingerprint', '')}")

    def _vendor_data(self, shop: ShopSpec) -> Path:
        return self.config.data_dir / f"vendor-{shop.key}"

    def register_and_start_vendors(self) -> None:
        cfg = self.config
        for shop in cfg.shops():
            data = self._vendor_data(shop)
            key = (
                subprocess.run(
                    [sys.executable, "-m", "vendor_stub.cli", "public-key", "--data-dir", str(data)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            vendor_id = shop.name.lower().replace(" ", "-")
            if not self._vendor_registered(vendor_id):
                body = {
                    "vendor_id": vendor_id,
                    "display_name": shop.name,
                    "public_key": key,
                    "origins": [shop.url, f"http://localhost:{shop.port}"],
                    "api_url": shop.url,
                    "payment_url": f"{shop.url}/v1/payments",
                }
                r = requests.post(
                    f"{cfg.broker_url}/v1/vendors",
                    json=body,
                    timeout=10,
                    headers={"X-Operator-Token": self.operator_token},
                )
                if r.status_code >= 300:
                    raise DemoError(f"registering {shop.name} at the broker failed: {r.status_code} {r.text[:300]}")
            self.vendor_ids[shop.key] = vendor_id
            proc = self._proc(
                f"vendor-{shop.key}",
                [
                    "-m",
                    "vendor_stub.cli",
                    "serve",
                    "--name",
                    shop.name,
                    "--vendor-id",
                    vendor_id,
                    "--catalog",
                    str(CATALOGS / shop.catalog),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(shop.port),
                    "--broker",
                    cfg.broker_url,
                    "--data-dir",
                    str(data),
                    *self.database_args(f"vendor-{shop.key}"),
                ],
            )
            proc.wait_http(f"{shop.url}/v1/info")
            self.say(f"vendor     {shop.url}/  {shop.name} ({vendor_id})")
            token = (data / "publisher_token").read_text().strip()  # made by the shop on its first start
            self.say(f"           earnings at {shop.url}/earnings, publisher token {token}")

    def _vendor_registered(self, vendor_id: str) -> bool:
        r = requests.get(f"{self.config.broker_url}/v1/vendors/{vendor_id}/certificate", timeout=5)
        return r.status_code == 200

    def create_customer(self) -> None:
        """Open the demo customer's broker account and put money on it with the test card (idempotent)."""
        base = self.config.broker_url
        c = DEMO_CUSTOMER
        r = requests.post(
            f"{base}/v1/accounts", json={"username": c["username"], "password": c["password"]}, timeout=15
        )
        if r.status_code not in (200, 201, 409):
            raise DemoError(f"creating the demo customer failed: {r.status_code} {r.text[:300]}")
        if r.status_code == 409:
            return  # kept from an earlier run, already funded
        token = requests.post(
            f"{base}/v1/sessions", json={"username": c["username"], "password": c["password"]}, timeout=15
        ).json()["token"]
        funds: Money = c["funds"]
        r = requests.post(
            f"{base}/v1/account/topups",
            json={"amount": funds.to_json(), "card": TEST_CARD},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "demo-initial-funds"},
            timeout=15,
        )
        if r.status_code >= 300:
            raise DemoError(f"funding the demo customer failed: {r.status_code} {r.text[:300]}")
        self.say(f"customer   '{c['username']}' with {funds.format()} on the broker account (test card)")

    # -- tear-down ----------------------------------------------------------------------------------------------
    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> DemoSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

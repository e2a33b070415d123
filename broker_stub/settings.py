"""Broker settings: one frozen dataclass, filled from CLI flags / environment variables or by tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netpay.chain import DEFAULT_CHAIN_LENGTH, MAX_CHAIN_LENGTH

__all__ = ["BrokerSettings"]


def _wall_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class BrokerSettings:
    """Everything a broker instance can be configured with. Defaults are production-strength."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8100
    #: Short stable id; default derived from the key fingerprint and stored in the data dir on first start.
    broker_id: str | None = None
    name: str = "NetPay Demo Broker"
    #: The one currency this broker keeps accounts and issues coins in.
    currency: str = "EUR"
    #: Coin values offered, in minor units of ``currency``.
    coin_values: tuple[int, ...] = (1, 2, 5, 10)
    chain_length_min: int = 1
    chain_length_max: int = MAX_CHAIN_LENGTH
    chain_length_default: int = DEFAULT_CHAIN_LENGTH
    #: Fee kept from each redemption, in basis points of the redeemed amount (rounded down).
    redemption_fee_bps: int = 0
    #: Largest single top-up / card charge, minor units.
    max_charge: int = 1_000_000
    session_ttl_s: int = 12 * 3600
    #: argon2id cost (argon2.PasswordHasher); tests lower these to stay fast.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    #: How long a closing chain waits for its custodian before closing at the last spend report.
    close_grace_s: int = 300
    custodian_timeout_s: float = 3.0
    #: How far a vendor-signed timestamp may be from the broker's clock.
    max_clock_skew_s: int = 600
    chain_validity_s: int = 365 * 86400
    vendor_cert_validity_s: int = 365 * 86400
    max_body: int = 256 * 1024
    #: P2P index (CIS): a peer's listings are shown only while it sent a heartbeat within this many seconds.
    peer_ttl_s: int = 300
    #: Supply policy (seed 002 §4.1), off at 0: refuse coin purchases of an account whose peer-to-peer requests
    #: exceed ``peer_supply_ratio`` times what its own peer supplied, once requests pass ``peer_supply_grace``.
    peer_supply_ratio: float = 0.0
    peer_supply_grace: int = 1000
    #: Base URL others use to reach this broker (for ``revocation_url``); default http://host:port.
    public_url: str | None = None
    #: ``postgresql://...`` to keep the state in PostgreSQL (several processes may share it); None: SQLite file.
    database_url: str | None = None
    #: Served over HTTPS (``--tls-cert``/``--tls-key``): the default base URL is https://host:port.
    tls: bool = False
    clock: Callable[[], int] = field(default=_wall_clock, compare=False)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "broker.sqlite3"

    @property
    def database(self) -> str | Path:
        """Where the state lives: the PostgreSQL URL, or the SQLite file in the data dir."""
        return self.database_url or self.db_path

    @property
    def key_path(self) -> Path:
        return Path(self.data_dir) / "broker.key"

    @property
    def operator_token_path(self) -> Path:
        return Path(self.data_dir) / "operator_token"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"

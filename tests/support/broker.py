"""Start a real broker (uvicorn on loopback) for tests and benchmarks, plus small client helpers.

``start_broker(data_dir, **overrides)`` returns a :class:`RunningBroker` whose ``url``, ``broker_id``,
``public_key`` and ``operator_token`` other parts use; ``overrides`` are :class:`BrokerSettings` fields (defaults
here: cheap argon2 and a close grace period of 0 so tests stay fast).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from broker_stub.app import create_app
from broker_stub.services import Broker
from broker_stub.settings import BrokerSettings
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import CoinCertificate, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import PaywordTraversal, create_chain
from netpay_web.live import LiveServer, free_port
from tests.support.postgres import database_url_for, postgres_enabled

__all__ = ["FAST_SETTINGS", "TEST_CARD", "RunningBroker", "broker_settings", "start_broker"]

#: Cheap password hashing for tests (production defaults stay strong).
FAST_SETTINGS: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
    "close_grace_s": 0,
    "custodian_timeout_s": 2.0,
}
TEST_CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def broker_settings(data_dir: Path, **overrides: Any) -> BrokerSettings:
    """Test settings; with ``NETPAY_TEST_DB=postgresql`` the state is in the test cluster (a schema per data dir)."""
    if postgres_enabled() and "database_url" not in overrides:
        overrides["database_url"] = database_url_for(data_dir)
    return BrokerSettings(data_dir=Path(data_dir), **{**FAST_SETTINGS, **overrides})


@dataclass
class RunningBroker:
    """A broker served on loopback, with what clients need to trust and call it."""

    server: LiveServer
    broker: Broker
    data_dir: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def broker_id(self) -> str:
        return self.broker.core.broker_id

    @property
    def public_key(self) -> VerifyKey:
        return self.broker.core.key.public

    @property
    def operator_token(self) -> str:
        return self.broker.core.operator_token

    def stop(self) -> None:
        self.server.stop()
        self.session.close()
        self.broker.close()

    # -- client helpers -------------------------------------------------------------------------------------------
    def register_vendor(
        self,
        vendor_id: str,
        key: SigningKey,
        api_url: str = "http://127.0.0.1:9",
        origins: list[str] | None = None,
        display_name: str | None = None,
    ) -> Signed[VendorCertificate]:
        resp = self.session.post(
            f"{self.url}/v1/vendors",
            json={
                "vendor_id": vendor_id,
                "display_name": display_name or vendor_id.title(),
                "public_key": key.public.hex,
                "origins": origins or [api_url.rstrip("/")],
                "api_url": api_url,
                "payment_url": api_url.rstrip("/") + "/v1/payments",
            },
            headers={"X-Operator-Token": self.operator_token},
        )
        resp.raise_for_status()
        return Signed.from_wire(resp.json()["certificate"], VendorCertificate)

    def new_customer(
        self, username: str | None = None, password: str = "correct horse battery", topup: int = 0, url: str = ""
    ) -> str:
        """Register, log in and optionally top up; returns the session token. ``url``: another process of this
        broker to send the requests to."""
        url = url or self.url
        username = username or "user_" + secrets.token_hex(4)
        self.session.post(f"{url}/v1/accounts", json={"username": username, "password": password})
        resp = self.session.post(f"{url}/v1/sessions", json={"username": username, "password": password})
        resp.raise_for_status()
        token: str = resp.json()["token"]
        if topup:
            r = self.session.post(
                f"{url}/v1/account/topups",
                json={"amount": {"amount": topup, "currency": "EUR"}, "card": TEST_CARD},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
            )
            r.raise_for_status()
        return token

    def buy_chain(
        self, token: str, length: int = 100, coin_value: int = 1, card: bool = False, url: str = ""
    ) -> tuple[Signed[CoinCertificate], PaywordTraversal]:
        chain_id = secrets.token_bytes(16)
        touchstone, traversal = create_chain(chain_id, length)
        body: dict[str, Any] = {
            "chain_id": chain_id.hex(),
            "touchstone": touchstone.hex(),
            "length": length,
            "coin_value": Money(coin_value, "EUR").to_json(),
        }
        if card:
            body["card"] = TEST_CARD
        resp = self.session.post(
            f"{url or self.url}/v1/chains",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
        )
        resp.raise_for_status()
        return Signed.from_wire(resp.json()["certificate"], CoinCertificate), traversal

    # -- the vendor-side calls the custody and redemption tests make, answered as the wire answers them ---------------
    def redeem(self, wire: dict[str, Any]) -> requests.Response:
        """POST a signed redemption batch."""
        return self.session.post(f"{self.url}/v1/redemptions", json=wire)

    def claim_custody(self, v: TestVendor, chain_id: bytes) -> dict[str, Any]:
        """``v`` claims custody of a chain (asserted accepted); the broker's answer."""
        resp = self.session.post(f"{self.url}/v1/custody/claims", json=v.claim(chain_id))
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    def report_spends(self, v: TestVendor, entries: list[tuple[bytes, int, int, bytes]]) -> None:
        """``v`` reports spends (asserted accepted)."""
        assert self.session.post(f"{self.url}/v1/spend-reports", json=v.report(entries)).status_code == 200

    def vendors(self, *names: str) -> list[TestVendor]:
        """New vendor identities, each registered under its name."""
        out = []
        for name in names:
            v = TestVendor(name)
            self.register_vendor(name, v.key)
            out.append(v)
        return out

    def payable(self, vendor_id: str) -> int:
        """What the broker owes a vendor, in minor units."""
        acc = self.session.get(f"{self.url}/v1/vendors/{vendor_id}/account",
                               headers={"X-Operator-Token": self.operator_token})  # fmt: skip
        return int(acc.json()["payable"]["amount"])

    def audit(self) -> dict[str, Any]:
        """The trial balance (asserted balanced)."""
        resp = self.session.get(
            f"{self.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": self.operator_token}
        )
        data: dict[str, Any] = resp.json()
        assert data["balanced"] is True, data
        return data


def start_broker(data_dir: Path, **overrides: Any) -> RunningBroker:
    """Start a broker on a free loopback port with its data in ``data_dir``; call ``stop()`` when done."""
    server_port = int(overrides.pop("port", 0)) or free_port()
    settings = broker_settings(data_dir, **{**overrides, "port": server_port})
    broker = Broker(settings)
    server = LiveServer(create_app(settings, broker), port=server_port)
    server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{server.url}/v1/info", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.05)
    return RunningBroker(server=server, broker=broker, data_dir=Path(data_dir))


@dataclass
class TestVendor:
    """A vendor identity for tests: signs custody claims, spend reports, redemption batches and vendor requests."""

    __test__ = False
    vendor_id: str
    key: SigningKey = field(default_factory=SigningKey.generate)

    def now(self) -> int:
        return int(time.time())

    def claim(self, chain_id: bytes, nonce: str | None = None, at: int | None = None) -> dict[str, Any]:
        from netpay.messages import CustodyClaim

        body = CustodyClaim(self.vendor_id, chain_id, nonce or secrets.token_hex(8), self.now() if at is None else at)
        return Signed.sign(body, self.key).to_wire()

    def report(self, entries: list[tuple[bytes, int, int, bytes]], report_id: str | None = None) -> dict[str, Any]:
        from netpay.messages import SpendEntry, SpendReport

        body = SpendReport(
            report_id or secrets.token_hex(8), self.vendor_id, tuple(SpendEntry(*e) for e in entries), self.now()
        )
        return Signed.sign(body, self.key).to_wire()

    def batch(
        self, claims: list[tuple[bytes, int, int, bytes]], batch_id: str | None = None, release: Any = None
    ) -> dict[str, Any]:
        from netpay.messages import RedemptionBatch, RedemptionClaim

        body = RedemptionBatch(
            batch_id or secrets.token_hex(8),
            self.vendor_id,
            tuple(RedemptionClaim(*c, release=release) for c in claims),
            self.now(),
        )
        return Signed.sign(body, self.key).to_wire()

    def request(self, action: str, amount: int | None = None, nonce: str | None = None) -> dict[str, Any]:
        from netpay.messages import VendorRequest

        money = Money(amount, "EUR") if amount is not None else None
        body = VendorRequest(self.vendor_id, action, nonce or secrets.token_hex(8), self.now(), money)
        return Signed.sign(body, self.key).to_wire()


__all__ += ["TestVendor"]

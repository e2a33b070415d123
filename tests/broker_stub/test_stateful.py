"""Hypothesis stateful test: random sequences of register, buy, custody claim, pay, spend report, redeem (including
double spends to two vendors), close and payout, run against the real services. After every step: the ledger
balances, no coin is paid twice out of the chain (a second payment of coins spent twice is charged to the buyer), and
coins issued = redeemed + refunded + outstanding.

Two forms: ``TestBrokerStateful`` calls the broker's services in this process, on the engine ``NETPAY_TEST_DB``
names (a fresh broker per example); ``test_ledger_on_two_broker_processes`` sends every move over HTTP to two
``netpay-broker`` processes on one PostgreSQL database, in turn, and audits that database from this process. Its
default run is short; ``NETPAY_LEDGER_EXAMPLES=200`` runs more examples.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from broker_stub.audit import audit_report
from broker_stub.services import Broker
from netpay.errors import NetPayError, Revoked, error_from_body
from netpay.traversal import PaywordTraversal, create_chain
from tests.support.broker import TEST_CARD, TestVendor, broker_settings
from tests.support.postgres import database_url_for, postgres_available
from tests.support.processes import ServerProcess, spawn_broker

#: Examples of the run on two broker processes (each up to 40 steps); the default keeps ``make test`` short.
PROCESS_EXAMPLES = int(os.environ.get("NETPAY_LEDGER_EXAMPLES", "0") or 0) or 6
FEE_BPS = 250


@dataclass
class _Account:
    account_id: str
    token: str = ""  # a session token, when the moves go over HTTP


class InProcess:
    """The moves as calls of the broker's services in this process."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def register_vendor(self, data: dict[str, Any]) -> None:
        self.broker.vendors.register(data)

    def register(self, username: str, password: str) -> _Account:
        return _Account(self.broker.accounts.register({"username": username, "password": password})["account_id"])

    def topup(self, account: _Account, body: dict[str, Any]) -> None:
        self.broker.accounts.topup(account.account_id, body, secrets.token_hex(4))

    def purchase(self, account: _Account, body: dict[str, Any]) -> None:
        self.broker.issuing.purchase(account.account_id, body, secrets.token_hex(4))

    def claim(self, wire: dict[str, Any]) -> dict[str, Any]:
        return self.broker.custody.claim(wire)

    def spend_report(self, wire: dict[str, Any]) -> dict[str, Any]:
        return self.broker.custody.spend_report(wire)

    def redeem(self, wire: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self.broker.redemption.redeem(wire)

    def close(self, account: _Account, chain_id: str) -> dict[str, Any]:
        return self.broker.closing.close(account.account_id, chain_id)

    def payable(self, vendor_id: str) -> int:
        return int(self.broker.payouts.account(vendor_id)["payable"]["amount"])

    def payout(self, vendor_id: str, wire: dict[str, Any]) -> None:
        self.broker.payouts.payout(vendor_id, wire)


class OverHttp:
    """The same moves as requests to several processes of one broker, each request to the next process in turn. A
    refusal is raised as the :class:`NetPayError` its body names (so the machine's checks are the same)."""

    def __init__(self, urls: list[str], operator_token: str) -> None:
        self.urls = urls
        self.operator = {"X-Operator-Token": operator_token}
        self.session = requests.Session()
        self.turn = 0

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        self.turn += 1
        url = self.urls[self.turn % len(self.urls)]
        resp = self.session.request(method, url + path, json=body, headers=headers, timeout=60)
        if resp.status_code >= 400:
            raise error_from_body(resp.json(), resp.status_code)
        return resp.json()

    def _auth(self, account: _Account, idem: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {account.token}"}
        return {**headers, "Idempotency-Key": secrets.token_hex(8)} if idem else headers

    def register_vendor(self, data: dict[str, Any]) -> None:
        self.call("POST", "/v1/vendors", data, self.operator)

    def register(self, username: str, password: str) -> _Account:
        creds = {"username": username, "password": password}
        account_id = self.call("POST", "/v1/accounts", creds)["account_id"]
        return _Account(account_id, self.call("POST", "/v1/sessions", creds)["token"])

    def topup(self, account: _Account, body: dict[str, Any]) -> None:
        self.call("POST", "/v1/account/topups", body, self._auth(account, idem=True))

    def purchase(self, account: _Account, body: dict[str, Any]) -> None:
        self.call("POST", "/v1/chains", body, self._auth(account, idem=True))

    def claim(self, wire: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.call("POST", "/v1/custody/claims", wire)
        return out

    def spend_report(self, wire: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.call("POST", "/v1/spend-reports", wire)
        return out

    def redeem(self, wire: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, self.call("POST", "/v1/redemptions", wire)

    def close(self, account: _Account, chain_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.call("POST", f"/v1/chains/{chain_id}/close", {}, self._auth(account))
        return out

    def payable(self, vendor_id: str) -> int:
        return int(self.call("GET", f"/v1/vendors/{vendor_id}/account", None, self.operator)["payable"]["amount"])

    def payout(self, vendor_id: str, wire: dict[str, Any]) -> None:
        self.call("POST", f"/v1/vendors/{vendor_id}/payouts", wire)


@dataclass
class _Chain:
    chain_id: bytes
    account: _Account
    length: int
    traversal: PaywordTraversal
    index: int = 0
    custodian: int | None = None
    closed: bool = False
    revoked: bool = False


@dataclass
class _Vendor:
    signer: TestVendor
    earned: list[tuple[bytes, int, int, bytes]] = field(default_factory=list)
    reported: int = 0
    redeemed: int = 0


class BrokerMachine(RuleBasedStateMachine):
    """A fresh broker per example, its services called in this process."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="broker-stateful-"))
        self.broker = Broker(broker_settings(self.tmp, redemption_fee_bps=FEE_BPS, custodian_timeout_s=0.2))
        self.api: InProcess | OverHttp = InProcess(self.broker)
        self.accounts: list[_Account] = []
        self.chains: list[_Chain] = []
        self.vendors: list[_Vendor] = []

    def teardown(self) -> None:
        self.broker.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def vendors_exist(self) -> None:
        suffix = "" if isinstance(self.api, InProcess) else "-" + secrets.token_hex(4)  # one broker for all examples
        for name in ("alpha" + suffix, "beta" + suffix):
            signer = TestVendor(name)
            self.api.register_vendor(
                {
                    "vendor_id": name,
                    "display_name": name,
                    "public_key": signer.key.public.hex,
                    "origins": ["http://127.0.0.1:9"],
                    "api_url": "http://127.0.0.1:9",
                    "payment_url": "http://127.0.0.1:9/v1/payments",
                }
            )
            self.vendors.append(_Vendor(signer))
        for topup in (2000, 0):
            self.register(topup)
        # Every example starts with coins issued: Hypothesis also tries short examples, and six of them once made no
        # purchase at all (the audit then checked a ledger with no coins in it, and the test said so).
        self.buy(0, 20, 1, True, 0)

    @rule(topup=st.integers(0, 3000))
    def register(self, topup: int) -> None:
        account = self.api.register("u" + secrets.token_hex(5), "long password")
        if topup:
            self.api.topup(account, {"amount": {"amount": topup, "currency": "EUR"}, "card": TEST_CARD})
        self.accounts.append(account)

    @rule(
        who=st.integers(0, 50),
        length=st.integers(1, 40),
        value=st.sampled_from([1, 2, 5]),
        card=st.booleans(),
        vendor=st.one_of(st.none(), st.integers(0, 1)),
    )
    def buy(self, who: int, length: int, value: int, card: bool, vendor: int | None) -> None:
        account = self.accounts[who % len(self.accounts)]  # initialize() registers two accounts
        chain_id = secrets.token_bytes(16)
        touchstone, traversal = create_chain(chain_id, length)
        body: dict[str, Any] = {
            "chain_id": chain_id.hex(),
            "touchstone": touchstone.hex(),
            "length": length,
            "coin_value": {"amount": value, "currency": "EUR"},
        }
        if card:
            body["card"] = TEST_CARD
        try:
            self.api.purchase(account, body)
        except NetPayError as exc:
            assert exc.code == "insufficient_funds" and not card
            return
        chain = _Chain(chain_id, account, length, traversal)
        self.chains.append(chain)
        if vendor is not None:  # usually the wallet spends the new chain at once
            self._take_custody(chain, vendor)

    def _open_chains(self) -> list[_Chain]:
        return [c for c in self.chains if not c.closed and not c.revoked]

    def _take_custody(self, chain: _Chain, vendor: int) -> None:
        try:
            out = self.api.claim(self.vendors[vendor].signer.claim(chain.chain_id))
        except Revoked:  # a double spend was caught on this chain: nobody may take it any more
            chain.revoked = True
            return
        assert out["custodian"] == self.vendors[vendor].signer.vendor_id
        chain.custodian = vendor

    @rule(which=st.integers(0, 50), vendor=st.integers(0, 1))
    def claim(self, which: int, vendor: int) -> None:
        chains = self._open_chains()
        if not chains:
            return
        self._take_custody(chains[which % len(chains)], vendor)

    @rule(which=st.integers(0, 50), coins=st.integers(1, 10), double=st.booleans())
    def pay(self, which: int, coins: int, double: bool) -> None:
        """The wallet pays the custodian; with ``double`` it also pays the same coins to the other vendor."""
        chains = [c for c in self._open_chains() if c.custodian is not None]
        if not chains:
            return
        chain = chains[which % len(chains)]
        coins = min(coins, chain.length - chain.index)
        if coins == 0:
            return
        index, payword = chain.traversal.advance(coins)
        segment = (chain.chain_id, chain.index, index, payword)
        chain.index = index
        assert chain.custodian is not None
        self.vendors[chain.custodian].earned.append(segment)
        if double:
            other = 1 - chain.custodian
            self._take_custody(chain, other)
            if chain.custodian == other:
                self.vendors[other].earned.append(segment)

    @rule(vendor=st.integers(0, 1))
    def spend_report(self, vendor: int) -> None:
        v = self.vendors[vendor]
        if v.reported == len(v.earned):
            return
        try:
            out = self.api.spend_report(v.signer.report(v.earned[v.reported :]))
            assert out["accepted"]
        except NetPayError as exc:
            assert exc.http_status < 500
        v.reported = len(v.earned)

    @rule(vendor=st.integers(0, 1))
    def redeem(self, vendor: int) -> None:
        v = self.vendors[vendor]
        if v.redeemed == len(v.earned):
            return
        try:
            status, result = self.api.redeem(v.signer.batch(v.earned[v.redeemed :]))
            assert status == 200 and len(result["body"]["results"]) == len(v.earned) - v.redeemed
            for claim in result["body"]["results"]:
                event(f"claim {claim['status']} {claim['reason']}")
        except NetPayError as exc:
            assert exc.http_status < 500 and "result" in exc.details
            event(f"batch refused {exc.details['reason']}")
        v.redeemed = len(v.earned)

    @rule(which=st.integers(0, 50))
    def close(self, which: int) -> None:
        chains = [c for c in self.chains if not c.closed]
        if not chains:
            return
        chain = chains[which % len(chains)]
        out = self.api.close(chain.account, chain.chain_id.hex())
        assert out["status"] == "closed"  # grace period 0 in tests
        assert out["final_index"] <= chain.index
        chain.closed = True

    @rule(vendor=st.integers(0, 1), part=st.booleans())
    def payout(self, vendor: int, part: bool) -> None:
        signer = self.vendors[vendor].signer
        payable = self.api.payable(signer.vendor_id)
        amount = max(1, payable // 2) if part else None
        try:
            self.api.payout(signer.vendor_id, signer.request("payout", amount))
        except NetPayError as exc:
            assert payable == 0 and exc.code == "conflict"

    @invariant()
    def books_balance(self) -> None:
        report = audit_report(self.broker.core)
        assert report["balanced"], report
        coins = report["coins"]
        # a custody overlap (the same coins paid to two vendors, each inside its window) is charged to the buyer
        assert coins["overlaps_paid"] == coins["overlaps_charged"]
        assert coins["issued"] == coins["redeemed"] + coins["refunded"] + coins["outstanding"]
        acc = report["accounts"]
        assert -acc["vendor_payables"] - acc["payouts"] - acc["fees"] >= 0
        paid = coins["redeemed"] + coins["overlaps_paid"]
        assert paid == -acc["vendor_payables"] - acc["payouts"] - acc["fees"]


BrokerMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
)
TestBrokerStateful = BrokerMachine.TestCase


class BrokerProcessesMachine(BrokerMachine):
    """The same moves sent over HTTP to the broker's processes (``deployment``), shared by every example."""

    deployment: tuple[Broker, list[ServerProcess]]

    def __init__(self) -> None:
        RuleBasedStateMachine.__init__(self)
        self.broker, processes = self.deployment
        self.api = OverHttp([p.url for p in processes], self.broker.core.operator_token)
        self.accounts = []
        self.chains = []
        self.vendors = []

    def teardown(self) -> None:
        assert isinstance(self.api, OverHttp)
        self.api.session.close()


@pytest.fixture(scope="module")
def broker_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Broker, list[ServerProcess]]]:
    """Two ``netpay-broker`` processes on one PostgreSQL database, and this process's broker on it (for audits)."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    data = tmp_path_factory.mktemp("ledger") / "broker"
    url = database_url_for(data)
    own = Broker(broker_settings(data, database_url=url, redemption_fee_bps=FEE_BPS))
    processes = [spawn_broker(data, url, None, "--redemption-fee-bps", str(FEE_BPS), "--log-level", "warning")
                 for _ in range(2)]  # fmt: skip
    try:
        yield own, processes
    finally:
        for p in processes:
            p.stop()
        own.close()


@pytest.mark.timeout(0 if os.environ.get("NETPAY_LEDGER_EXAMPLES") else 600)
def test_ledger_on_two_broker_processes(broker_processes: tuple[Broker, list[ServerProcess]]) -> None:
    """The stateful ledger test on PostgreSQL, every move sent to one of two broker processes in turn."""
    own, processes = broker_processes
    for p in processes:  # both apply the fee this test's broker audits with
        assert requests.get(f"{p.url}/v1/info", timeout=10).json()["fees"]["redemption_bps"] == FEE_BPS
    BrokerProcessesMachine.deployment = broker_processes
    run_state_machine_as_test(
        BrokerProcessesMachine,
        settings=settings(
            max_examples=PROCESS_EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
    report = audit_report(own.core)
    assert report["balanced"] and report["coins"]["issued"] > 0, report

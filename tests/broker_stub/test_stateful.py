"""Hypothesis stateful test: random sequences of register, buy, custody claim, pay, spend report, redeem (including
double spends to two vendors), close and payout, run against the real services and SQLite storage. After every step:
the ledger balances, no coin is paid twice out of the chain (a second payment of coins spent twice is charged to the
buyer), and coins issued = redeemed + refunded + outstanding."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from broker_stub.audit import audit_report
from broker_stub.services import Broker
from netpay.errors import NetPayError, Revoked
from netpay.traversal import PaywordTraversal, create_chain
from tests.support.broker import TEST_CARD, TestVendor, broker_settings


@dataclass
class _Chain:
    chain_id: bytes
    account_id: str
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
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="broker-stateful-"))
        self.broker = Broker(broker_settings(self.tmp, redemption_fee_bps=250, custodian_timeout_s=0.2))
        self.accounts: list[str] = []
        self.chains: list[_Chain] = []
        self.vendors: list[_Vendor] = []

    def teardown(self) -> None:
        self.broker.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize()
    def vendors_exist(self) -> None:
        for name in ("alpha", "beta"):
            signer = TestVendor(name)
            self.broker.vendors.register(
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

    @rule(topup=st.integers(0, 3000))
    def register(self, topup: int) -> None:
        out = self.broker.accounts.register({"username": "u" + secrets.token_hex(5), "password": "long password"})
        if topup:
            self.broker.accounts.topup(
                out["account_id"],
                {"amount": {"amount": topup, "currency": "EUR"}, "card": TEST_CARD},
                secrets.token_hex(4),
            )
        self.accounts.append(out["account_id"])

    @rule(
        who=st.integers(0, 50),
        length=st.integers(1, 40),
        value=st.sampled_from([1, 2, 5]),
        card=st.booleans(),
        vendor=st.one_of(st.none(), st.integers(0, 1)),
    )
    def buy(self, who: int, length: int, value: int, card: bool, vendor: int | None) -> None:
        account_id = self.accounts[who % len(self.accounts)]  # initialize() registers two accounts
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
            self.broker.issuing.purchase(account_id, body, secrets.token_hex(4))
        except NetPayError as exc:
            assert exc.code == "insufficient_funds" and not card
            return
        chain = _Chain(chain_id, account_id, length, traversal)
        self.chains.append(chain)
        if vendor is not None:  # usually the wallet spends the new chain at once
            self._take_custody(chain, vendor)

    def _open_chains(self) -> list[_Chain]:
        return [c for c in self.chains if not c.closed and not c.revoked]

    def _take_custody(self, chain: _Chain, vendor: int) -> None:
        try:
            out = self.broker.custody.claim(self.vendors[vendor].signer.claim(chain.chain_id))
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
            out = self.broker.custody.spend_report(v.signer.report(v.earned[v.reported :]))
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
            status, result = self.broker.redemption.redeem(v.signer.batch(v.earned[v.redeemed :]))
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
        out = self.broker.closing.close(chain.account_id, chain.chain_id.hex())
        assert out["status"] == "closed"  # grace period 0 in tests
        assert out["final_index"] <= chain.index
        chain.closed = True

    @rule(vendor=st.integers(0, 1), part=st.booleans())
    def payout(self, vendor: int, part: bool) -> None:
        signer = self.vendors[vendor].signer
        payable = self.broker.payouts.account(signer.vendor_id)["payable"]["amount"]
        amount = max(1, payable // 2) if part else None
        try:
            self.broker.payouts.payout(signer.vendor_id, signer.request("payout", amount))
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

"""The broker's model test (tests/broker_stub/test_stateful.py) with hosted e-wallets and grants added: random
sequences also buy hosted chains, grant slices to the two vendors through real codes (PKCE, signed grant requests),
spend and double-spend inside the slices, and return hosted chains. After every step the same invariants hold (the
ledger balances, coins issued = redeemed + refunded + outstanding, no coin paid twice), and a hosted return never
refunds a coin that was handed to a vendor."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from broker_stub.hosted import pkce_challenge
from netpay.chain import ChainHasher
from netpay.errors import NetPayError
from netpay.messages import GrantRequest, HostedGrant
from netpay.signed import Signed
from tests.broker_stub.test_stateful import BrokerMachine


@dataclass
class _Slice:
    vendor: int
    grant: HostedGrant
    index: int
    account_id: str
    returned: bool = False


class HostedMachine(BrokerMachine):
    def __init__(self) -> None:
        super().__init__()
        self.slices: list[_Slice] = []
        self.hosted: list[tuple[str, str]] = []  # (account, chain id)

    @rule(who=st.integers(0, 50), coins=st.integers(1, 60))
    def buy_hosted(self, who: int, coins: int) -> None:
        account_id = self.accounts[who % len(self.accounts)].account_id
        body = {"length": coins, "coin_value": {"amount": 1, "currency": "EUR"}}
        try:
            _, out = self.broker.hosted.buy(account_id, body, secrets.token_hex(4))
        except NetPayError as exc:
            assert exc.code == "insufficient_funds"
            return
        self.hosted.append((account_id, out["chain_id"]))

    @rule(which=st.integers(0, 50), vendor=st.integers(0, 1), budget=st.integers(1, 30))
    def grant(self, which: int, vendor: int, budget: int) -> None:
        if not self.hosted:
            return
        account_id, _ = self.hosted[which % len(self.hosted)]
        signer = self.vendors[vendor].signer
        verifier = secrets.token_urlsafe(48)
        redirect = "http://127.0.0.1:9/hosted/callback"
        hosted = self.broker.hosted
        code = hosted.issue_code(account_id, signer.vendor_id, redirect, pkce_challenge(verifier),
                                 self.broker.core.money(budget), 3600)  # fmt: skip
        req = GrantRequest(signer.vendor_id, code, verifier, redirect, secrets.token_hex(8), signer.now())
        try:
            out = hosted.redeem_code(Signed.sign(req, signer.key).to_wire())
        except NetPayError as exc:  # no coins left, or the chain's holder (unreachable here) keeps it
            assert exc.code == "insufficient_coins", exc
            return
        grant = Signed.from_wire(out["grant"], HostedGrant).require_signer(self.broker.core.key.public)
        assert grant.vendor_id == signer.vendor_id and grant.to_index - grant.from_index <= budget
        self.slices.append(_Slice(vendor, grant, grant.from_index, account_id))
        event("hosted: grant")

    @rule(which=st.integers(0, 50), coins=st.integers(1, 8), double=st.booleans())
    def spend_slice(self, which: int, coins: int, double: bool) -> None:
        """The vendor takes coins from its slice (W from the top payword); with ``double`` the other vendor is also
        handed the same paywords (it never held the chain: its redemption must not be paid)."""
        live = [s for s in self.slices if not s.returned and s.index < s.grant.to_index]
        if not live:
            return
        s = live[which % len(live)]
        g = s.grant
        to = min(g.to_index, s.index + coins)
        payword = ChainHasher(g.chain_id).walk(g.top_payword, g.to_index, to)
        segment = (g.chain_id, s.index, to, payword)
        s.index = to
        event("hosted: spend in a slice" + (" (and handed to the other vendor)" if double else ""))
        self.vendors[s.vendor].earned.append(segment)
        if double:
            self.vendors[1 - s.vendor].earned.append(segment)

    @rule(which=st.integers(0, 50))
    def return_hosted(self, which: int) -> None:
        if not self.hosted:
            return
        account_id, chain_id = self.hosted[which % len(self.hosted)]
        free = self.broker.core.db.one("SELECT free_index FROM hosted_chains WHERE chain_id = ?", (chain_id,))
        out = self.broker.hosted.return_chain(account_id, chain_id)
        assert out["status"] == "closed"
        assert free is not None and out["final_index"] >= free[0]  # never refunds a coin handed to a vendor
        event("hosted: return")
        for s in self.slices:
            if s.grant.chain_id.hex() == chain_id:
                s.returned = True

    @invariant()
    def one_active_grant_per_chain(self) -> None:
        rows = self.broker.core.db.query(
            "SELECT chain_id, COUNT(*) FROM hosted_grants WHERE status = 'active' GROUP BY chain_id HAVING COUNT(*) > 1"
        )
        assert rows == []


HostedMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
)
TestHostedModel = HostedMachine.TestCase

"""An adversarial model of the whole protocol: a real broker and three real vendors on loopback, two customers, and
hypothesis choosing what happens next (``RuleBasedStateMachine``).

Honest moves: buy a chain, pay at any vendor (a hand-off when another vendor holds the chain, a return when the vendor
held it before), a vendor going down (its server stops) and coming back (restarted on its data dir), spend reports,
redemption batches (any vendor, any order, repeated), closing a chain (refund), revocations (a rogue vendor revoked by
the operator; vendors refreshing the list).

Dishonest moves: a vendor claiming coins another vendor accepted (outside its windows; an exact copy of the other
vendor's claim; coins above a release it signed), a vendor re-sending another's stored batch, a customer spending the
same coins at a second vendor while the custodian is down, releases forged or replayed at the broker, release
requests to a custodian from a vendor the broker never named (no grant, a stolen grant, an old grant).

Hosted e-wallet customers (the broker keeps their chain; shops get grants, slices of it, through the real
authorization-code redirect played by a requests session): honest moves are paying at a shop (a new grant when the
e-wallet is elsewhere or the budget is spent: the holder releases, the slice starts there), and paying at A, then B,
then A. Dishonest ones: a grant handed to its shop again (replayed) or to another shop, a shop redeeming or reporting
coins beyond its grant (a guessed payword above the slice's top) or the part of an old slice it released (paywords it
really knows). Their invariants are the same: no shop paid for a coin it did not take, nobody charged an overlap, and
at the end each shop is paid exactly for what it took.

After every step: the broker's books balance (``netpay-broker audit`` checks); no vendor was ever paid for a coin it
did not accept, so no coin is paid to two vendors out of its chain (an overlap the customer caused is paid once more
and charged to its account, and only a cheating customer is charged); refunds are exactly the coins not spent; every
refusal carries a code documented in docs/protocol.md; a dishonest move changes no money and no custody. At the end
of each run every vendor is back up and redeems: each is paid for every coin it accepted.

It runs twice: on the default engine with each party in one process (the test's), and on PostgreSQL with the broker
and every shop in several processes (``[postgresql-processes]``): two ``netpay-broker`` processes next to the test's
own broker on one database, and each shop served by the test's process and a ``netpay-vendor`` process on one
database. Customers' and vendors' requests alternate between the broker's processes, a quote from one process of a
shop is paid at either, other vendors ask the shop's second process for releases, and the shop's second process
talks to another broker process than its first. Each shop's process in the test settles (reports, redemption)
when the model says so; its ``netpay-vendor`` process only serves requests (``--no-settlement``). Every invariant is
checked on both.

Default: a short run of each inside ``make test``. Long run: ``NETPAY_MODEL_STEPS=20000 .venv/bin/python -m pytest
tests/model -s`` (add ``-k postgresql`` or ``-k default`` for one of the two). It prints steps, dishonest moves,
invariant checks and wall time.

What the adversary does not do, and why: it never claims coins no customer has spent (a vendor cannot know those
paywords), and it claims another vendor's coins only on chains whose every hand-off had a release. Where a custodian
did not answer, its window reaches over its successor's (it may honestly have accepted those coins), so a vendor that
obtained the successor's paywords could be paid for them as an overlap charged to the customer; that needs the other
vendor's paywords (collusion) and is written down in docs/protocol.md as a limit of the overlap rule.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from broker_stub.audit import audit_report
from netpay.chain import ChainHasher
from netpay.errors import NetPayError
from netpay.keys import SigningKey, load_or_create_key
from netpay.messages import (
    CustodyGrant,
    CustodyRelease,
    GrantRequest,
    HostedGrant,
    RedemptionBatch,
    RedemptionClaim,
    ReleaseRequest,
    Segment,
    SpendEntry,
    SpendReport,
    VendorCertificate,
)
from netpay.signed import Signed
from netpay_web.live import free_port
from tests.support.broker import RunningBroker, TestVendor, start_broker
from tests.support.hosted import PASSWORD, hidden_fields, hosted_customer
from tests.support.postgres import database_url_for, postgres_available
from tests.support.processes import ServerProcess, spawn_broker, spawn_vendor
from tests.support.vendor import CARDS, NEWSPAPER, KnownChain, RunningVendor, get_quote, payment_of, start_vendor
from vendor_stub.hosted import GrantBook
from vendor_stub.service import key_path

#: The long run's number of steps (moves actually made; rules that find nothing to do are not counted).
STEPS = int(os.environ.get("NETPAY_MODEL_STEPS", "0") or 0)
#: Most steps in one run: short runs by default, long ones in the long run (fewer set-ups for the same steps).
STEPS_PER_RUN = 200 if STEPS else 50
LENGTH = 120

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
#: Every code in a table of docs/protocol.md (error codes, redemption reasons, release refusals).
DOCUMENTED = set(re.findall(r"^\| `([a-z_]+)` \|", DOC, re.M))

STATS: Counter[str] = Counter()
STARTED = [0.0]


@dataclass
class Slot:
    """One of the three vendors: its place on disk and port; ``running`` is None while it is down."""

    name: str
    vendor_id: str
    catalog: Path
    item: str
    price: int
    data_dir: Path
    port: int
    running: RunningVendor | None = None
    #: Several processes: the shop's database, its second process (a ``netpay-vendor``, on ``other_port``, which
    #: other vendors are told to ask for releases), and the broker processes the first and second talk to.
    database_url: str | None = None
    other: ServerProcess | None = None
    other_port: int = 0
    broker_urls: tuple[str, str] = ("", "")
    turn: int = 0

    @property
    def key(self) -> SigningKey:
        return load_or_create_key(key_path(self.data_dir))

    def up(self, broker: RunningBroker, register: bool = False) -> None:
        if self.database_url is None:
            self.running = start_vendor(broker, self.data_dir, catalog=self.catalog, name=self.name,
                                        vendor_id=self.vendor_id, port=self.port or None, register=register,
                                        background=False, release_timeout_s=0.5)  # fmt: skip
            self.port = self.running.server.port
            return
        self.other_port = self.other_port or free_port()
        if register:
            broker.register_vendor(self.vendor_id, self.key, api_url=f"http://127.0.0.1:{self.other_port}",
                                   display_name=self.name)  # fmt: skip
        self.running = start_vendor(broker, self.data_dir, catalog=self.catalog, name=self.name,
                                    vendor_id=self.vendor_id, port=self.port or None, register=False,
                                    background=False, release_timeout_s=0.5, database_url=self.database_url,
                                    broker_url=self.broker_urls[0])  # fmt: skip
        self.port = self.running.server.port
        self.other = spawn_vendor(self.data_dir, self.database_url, self.broker_urls[1], broker.public_key.hex,
                                  self.other_port, self.name, "--vendor-id", self.vendor_id, "--catalog",
                                  str(self.catalog), "--no-settlement", "--log-level", "warning")  # fmt: skip
        self.broker_urls = (self.broker_urls[1], self.broker_urls[0])  # back up, each talks to the other process

    def down(self) -> None:
        assert self.running is not None
        self.running.stop()
        self.running = None
        if self.other is not None:
            self.other.stop()
            self.other = None

    def urls(self) -> list[str]:
        """The shop's processes, the one that will answer next first (requests take turns)."""
        assert self.running is not None
        urls = [self.running.url] + ([self.other.url] if self.other is not None else [])
        self.turn += 1
        return urls[self.turn % len(urls) :] + urls[: self.turn % len(urls)]

    def pay(self, *segments: Segment) -> requests.Response:
        """Quote the slot's item at one process and pay it at one (each pairing of processes in turn)."""
        assert self.running is not None
        urls = self.urls()
        quote = get_quote(urls[0], self.item, self.running.session)
        paid_at = urls[(self.turn // len(urls)) % len(urls)]
        return self.running.session.post(f"{paid_at}/v1/payments", json=payment_of(quote, *segments), timeout=30)


@dataclass
class World:
    broker: RunningBroker
    slots: list[Slot]
    #: The broker's processes customers and vendors send requests to, in turn (the test's own when it is alone).
    broker_urls: list[str]
    engine: str
    runs: int = 0


@dataclass
class Chain:
    known: KnownChain
    owner: int
    index: int = 0
    custodian: int | None = None
    holders: list[int] = field(default_factory=list)
    accepted: list[tuple[int, int, int]] = field(default_factory=list)  # (vendor, from, to)
    tainted: bool = False  # its customer spent coins twice on it
    closing: bool = False
    closed: bool = False

    @property
    def cid(self) -> str:
        return self.known.cert.body.chain_id.hex()


@dataclass
class Customer:
    token: str
    account_id: str
    cheated: bool = False
    chains: list[Chain] = field(default_factory=list)


@dataclass
class HostedCustomer:
    """A customer paying from a hosted e-wallet (a phone's browser): one hosted chain of LENGTH coins."""

    name: str
    token: str
    account_id: str
    cid: str
    browser: requests.Session = field(default_factory=requests.Session)
    index: int = 0  # coins spent
    holder: int | None = None  # the shop holding the current grant
    top: int = 0  # the current grant's to_index
    accepted: list[tuple[int, int, int]] = field(default_factory=list)  # (vendor, from, to)


@pytest.fixture(scope="module", params=["default", "postgresql-processes"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The broker and three shops: in one process each on the default engine (``NETPAY_TEST_DB``), or on PostgreSQL
    with the broker in three processes (the test's and two ``netpay-broker``) and each shop in two."""
    processes = request.param == "postgresql-processes"
    if processes and not postgres_available():
        pytest.skip("PostgreSQL is not installed")
    root = tmp_path_factory.mktemp("model")
    grace = 10**9
    spawned: list[ServerProcess] = []
    if processes:
        url = database_url_for(root / "broker")
        broker = start_broker(root / "broker", close_grace_s=grace, database_url=url)
        spawned = [spawn_broker(root / "broker", url, None, "--close-grace", str(grace), "--log-level", "warning")
                   for _ in range(2)]  # fmt: skip
    else:
        broker = start_broker(root / "broker", close_grace_s=grace)
    broker_urls = [p.url for p in spawned] or [broker.url]
    slots = [
        Slot("Daily Planet", "daily-planet", NEWSPAPER, "night-market-returns", 3, root / "v0", 0),
        Slot("Paper Lantern Cards", "paper-lantern", CARDS, "thank-you-sunrise", 10, root / "v1", 0),
        Slot("Evening Star", "evening-star", NEWSPAPER, "harbour-bridge-reopens", 5, root / "v2", 0),
    ]
    for i, s in enumerate(slots):
        if processes:
            s.database_url = database_url_for(s.data_dir)
            s.broker_urls = (broker_urls[i % 2], broker_urls[(i + 1) % 2])
        s.up(broker, register=True)
    try:
        yield World(broker, slots, broker_urls, cast(str, request.param))
    finally:
        for s in slots:
            if s.running is not None:
                s.down()
        for p in spawned:
            p.stop()
        broker.stop()


class ProtocolModel(RuleBasedStateMachine):
    """One run: fresh customers and chains on the shared broker and vendors."""

    world: World

    def __init__(self) -> None:
        super().__init__()
        self.broker = self.world.broker
        self.slots = self.world.slots
        self.db = self.broker.broker.core.db
        self.customers: list[Customer] = []
        self.mallory = TestVendor(f"mallory-{secrets.token_hex(4)}")
        self.mallory_cert: Signed[VendorCertificate] = self.broker.register_vendor(self.mallory.vendor_id,
                                                                                   self.mallory.key)  # fmt: skip
        self.mallory_revoked = False
        self.turn = 0
        self.hosted: list[HostedCustomer] = []

    def url(self) -> str:
        """The broker process the next request goes to (they take turns)."""
        self.turn += 1
        return self.world.broker_urls[self.turn % len(self.world.broker_urls)]

    # -- helpers ------------------------------------------------------------------------------------------------
    def step(self, name: str) -> None:
        STATS["steps"] += 1
        STATS[f"move {name}"] += 1
        if STEPS and STATS["steps"] % 500 == 0:  # the long run shows how far it got
            print(f"protocol model progress: {STATS['steps']} steps, {STATS['dishonest moves']} dishonest moves, "
                  f"{STATS['checks']} invariant checks, {time.monotonic() - STARTED[0]:.0f} s", flush=True)  # fmt: skip

    def dishonest(self, name: str) -> None:
        STATS["dishonest moves"] += 1
        self.step(f"dishonest {name}")

    def documented(self, code: str) -> None:
        STATS["checks"] += 1
        assert code in DOCUMENTED, f"refusal code {code!r} is not documented in docs/protocol.md"

    def money(self) -> Any:
        """Everything money and custody rest on at the broker (refusals must leave it as it was)."""
        with self.db.lock:
            return (
                self.db.query(
                    "SELECT account, sub, SUM(amount) FROM ledger_entries GROUP BY account, sub ORDER BY 1, 2"
                ),
                self.db.query("SELECT * FROM redeemed ORDER BY chain_id, from_index"),
                self.db.query(
                    "SELECT chain_id, vendor_id, from_index, to_index FROM custody_overlaps ORDER BY 1, 2, 3"
                ),
                self.db.query("SELECT chain_id, seq, vendor_id, lower_index, upper_index FROM custody ORDER BY 1, 2"),
                self.db.query("SELECT kind, ident FROM revocations ORDER BY 1, 2"),
            )

    def unchanged(self, before: Any) -> None:
        STATS["checks"] += 1
        assert [list(map(tuple, t)) for t in self.money()] == [list(map(tuple, t)) for t in before]

    def chains(self) -> list[Chain]:
        return [c for cu in self.customers for c in cu.chains]

    def pick(self, items: list[Any], n: int) -> Any:
        return items[n % len(items)] if items else None

    def up(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s.running is not None]

    def hard(self, chain: Chain) -> bool:
        """Every hand-off of the chain had a release the broker knows (no window reaches over another)."""
        row = self.db.one("SELECT COUNT(*) FROM custody WHERE chain_id = ? AND upper_source = 'handed'", (chain.cid,))
        return row is not None and int(row[0]) == 0

    def paid(self, vendor_id: str, cid: str) -> list[tuple[int, int]]:
        rows = self.db.query(
            "SELECT from_index, to_index FROM redeemed WHERE vendor_id = ? AND chain_id = ? UNION ALL "
            "SELECT from_index, to_index FROM custody_overlaps WHERE vendor_id = ? AND chain_id = ?",
            (vendor_id, cid, vendor_id, cid),
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    def redeem_claims(self, slot: Slot, claims: list[tuple[bytes, int, int, bytes]]) -> requests.Response:
        batch = Signed.sign(
            RedemptionBatch(secrets.token_hex(8), slot.vendor_id,
                            tuple(RedemptionClaim(*c) for c in claims), int(time.time())),
            slot.key,
        )  # fmt: skip
        return self.broker.session.post(f"{self.url()}/v1/redemptions", json=batch.to_wire(), timeout=60)

    # -- honest moves ---------------------------------------------------------------------------------------------
    @initialize()
    def customers_arrive(self) -> None:
        for _ in range(2):
            token = self.broker.new_customer(topup=2000, url=self.url())
            acc = self.broker.session.get(f"{self.url()}/v1/account", headers={"Authorization": f"Bearer {token}"})
            self.customers.append(Customer(token, acc.json()["account_id"]))
        for who in range(2):
            self.buy(who)

    @rule(who=st.integers(0, 1))
    def buy(self, who: int) -> None:
        cu = self.customers[who]
        if len(cu.chains) >= 3:
            return
        self.step("buy")
        cert, trav = self.broker.buy_chain(cu.token, length=LENGTH, url=self.url())
        cu.chains.append(Chain(KnownChain(cert, trav, cu.token, trav.to_bytes()), who))

    @rule(who=st.integers(0, 1), which=st.integers(0, 5), v=st.integers(0, 2), times=st.integers(1, 3))
    def pay(self, who: int, which: int, v: int, times: int) -> None:
        """The customer pays at vendor v, a few times in a row."""
        for _ in range(times):
            self.pay_once(who, which, v)

    @rule(who=st.integers(0, 1), which=st.integers(0, 5), shift=st.integers(1, 2), times=st.integers(1, 3))
    def pay_elsewhere(self, who: int, which: int, shift: int, times: int) -> None:
        """The customer takes a chain to another vendor than the one holding it (a hand-off, or a return)."""
        cu = self.customers[who]
        chain = self.pick([c for c in cu.chains if not (c.tainted or c.closing or c.closed)], which)
        if chain is None or chain.custodian is None:
            return
        for _ in range(times):
            self.pay_once(who, which, (chain.custodian + shift) % 3)

    def pay_once(self, who: int, which: int, v: int) -> None:
        cu = self.customers[who]
        chain = self.pick([c for c in cu.chains if not (c.tainted or c.closing or c.closed)], which)
        slot = self.slots[v]
        if chain is None or chain.index + slot.price > LENGTH:
            return
        label = "pay" if chain.custodian in (None, v) else ("return" if v in chain.holders else "handoff")
        self.step(label)
        if slot.running is None:
            STATS["payments to a vendor that is down"] += 1
            with pytest.raises(requests.ConnectionError):
                requests.post(f"http://127.0.0.1:{slot.port}/v1/quotes", json={"item_id": slot.item}, timeout=5)
            return
        to = chain.index + slot.price
        resp = slot.pay(chain.known.segment(chain.index, to))
        STATS["checks"] += 1
        assert resp.status_code == 200, f"an honest payment at {slot.vendor_id} was refused: {resp.text}"
        chain.accepted.append((v, chain.index, to))
        chain.index, chain.custodian = to, v
        if v not in chain.holders:
            chain.holders.append(v)

    @rule(v=st.integers(0, 2), back=st.booleans())
    def vendor_down_or_back(self, v: int, back: bool) -> None:
        slot = self.slots[v]
        if slot.running is None and back:
            self.step("vendor back")
            slot.up(self.broker)
        elif slot.running is not None and not back and len(self.up()) > 1:
            self.step("vendor down")
            slot.down()

    @rule(v=st.integers(0, 2))
    def spend_report(self, v: int) -> None:
        slot = self.slots[v]
        if slot.running is not None:
            self.step("spend report")
            slot.running.vendor.reporter.flush()

    @rule(v=st.integers(0, 2))
    def redeem(self, v: int) -> None:
        slot = self.slots[v]
        if slot.running is not None:
            self.step("redemption batch")
            summary = slot.running.vendor.redeemer.redeem()
            STATS["claims accepted"] += summary["accepted"]
            STATS["claims rejected"] += summary["rejected"]
            for row in slot.running.vendor.store.query("SELECT DISTINCT reason FROM spends WHERE reason IS NOT NULL"):
                self.documented(row[0])

    @rule(who=st.integers(0, 1), which=st.integers(0, 5))
    def close(self, who: int, which: int) -> None:
        cu = self.customers[who]
        chain = self.pick([c for c in cu.chains if not (c.closed or c.tainted)], which)
        if chain is None:
            return
        self.step("close")
        resp = self.broker.session.post(
            f"{self.url()}/v1/chains/{chain.cid}/close", headers={"Authorization": f"Bearer {cu.token}"}
        )
        assert resp.status_code == 200, resp.text
        out = resp.json()
        chain.closing = True
        if out["status"] == "closed":
            chain.closed = True
            STATS["checks"] += 1
            assert out["final_index"] == chain.index, (out, chain.index)
            assert out["refund"]["amount"] == LENGTH - chain.index
        else:
            assert out["status"] == "closing" and chain.custodian is not None
            assert self.slots[chain.custodian].running is None  # only an unreachable custodian keeps it open

    @rule(refresh=st.booleans())
    def revocation(self, refresh: bool) -> None:
        if refresh:
            self.step("vendors refresh revocations")
            for i in self.up():
                running = self.slots[i].running
                assert running is not None
                running.vendor.trust.refresh_revocations()
        elif not self.mallory_revoked:
            self.step("operator revokes a rogue vendor")
            resp = self.broker.session.post(f"{self.url()}/v1/vendors/{self.mallory.vendor_id}/revoke",
                                            headers={"X-Operator-Token": self.broker.operator_token})  # fmt: skip
            assert resp.status_code == 200
            self.mallory_revoked = True

    # -- dishonest moves ------------------------------------------------------------------------------------------
    @rule(v=st.integers(0, 2), which=st.integers(0, 20), kind=st.sampled_from(["exact", "part", "batch"]))
    def vendor_claims_what_is_not_its_own(self, v: int, which: int, kind: str) -> None:
        """Another vendor's coins claimed as an exact copy of its claim or a part of it, or its batch re-sent."""
        if kind == "batch":
            self.vendor_resends_anothers_batch(which)
            return
        exact = kind == "exact"
        choices = [(c, a) for c in self.chains() for a in c.accepted if a[0] != v and self.hard(c)]
        picked = self.pick(choices, which)
        if picked is None:
            return
        chain, (other, lo, hi) = picked
        if not exact and hi - lo > 1:
            lo = lo + 1
        mine = [a for a in chain.accepted if a[0] == v]
        if any(a[2] <= lo for a in mine):
            self.dishonest("claim after releasing")
        else:
            self.dishonest("replay another vendor's claim" if exact else "claim outside its window")
        before = self.money()
        resp = self.redeem_claims(self.slots[v], [(bytes.fromhex(chain.cid), lo, hi, chain.known.word(hi))])
        self.refused_claim(resp)
        self.unchanged(before)
        del other

    def refused_claim(self, resp: requests.Response) -> None:
        STATS["checks"] += 1
        if resp.status_code == 200:
            res = resp.json()["body"]["results"][0]
            assert res["status"] == "rejected", res
            self.documented(res["reason"])
        else:
            assert 400 <= resp.status_code < 500, resp.text
            self.documented(resp.json()["error"]["code"])
            reason = resp.json()["error"]["details"].get("reason")
            if reason:
                self.documented(reason)

    def vendor_resends_anothers_batch(self, which: int) -> None:
        """A stored batch of a vendor sent again as it is (same id, same bytes): the stored answer, nothing paid."""
        slot = self.slots[which % 3]
        if slot.running is None:
            return
        rows = slot.running.vendor.store.query("SELECT body, result FROM batches WHERE status = 'done'")
        row = self.pick(rows, which)
        if row is None:
            return
        self.dishonest("replay a stored batch")
        before = self.money()
        resp = self.broker.session.post(f"{self.url()}/v1/redemptions", json=json.loads(row["body"]))
        STATS["checks"] += 1
        if resp.status_code == 200:
            assert resp.json() == json.loads(row["result"])
        else:
            self.documented(resp.json()["error"]["code"])
        self.unchanged(before)

    @rule(b=st.integers(0, 2), which=st.integers(0, 5))
    def customer_spends_twice_while_custodian_is_down(self, b: int, which: int) -> None:
        cu = self.customers[1]
        chain = self.pick([c for c in cu.chains if not (c.tainted or c.closing or c.closed)], which)
        slot = self.slots[b]
        if chain is None or chain.custodian is None or chain.custodian == b or slot.running is None:
            return
        if self.slots[chain.custodian].running is not None:
            self.step("vendor down")
            self.slots[chain.custodian].down()
        self.dishonest("customer double-spends while the custodian is down")
        # From here on the customer cheats with this chain (it never closes it, so nothing it spent is refunded).
        chain.tainted = True
        cu.cheated = True
        # The customer offers coins from 0: B claims custody, cannot reach the custodian, and answers with the index
        # it will accept from (the broker's lower bound). The customer then pays from there.
        first = slot.pay(chain.known.segment(0, slot.price))
        start = 0
        if first.status_code != 200:
            self.documented(first.json()["error"]["code"])
            held = first.json()["error"]["details"]["refusal"]["body"]["held"][0]["index"]
            if held is None or held + slot.price > LENGTH:
                return
            start = held
            first = slot.pay(chain.known.segment(start, start + slot.price))
            assert first.status_code == 200, first.text
        chain.accepted.append((b, start, start + slot.price))
        chain.custodian = b
        if b not in chain.holders:
            chain.holders.append(b)
        if start < chain.index:
            STATS["coins spent twice"] += min(chain.index, start + slot.price) - start
        chain.index = max(chain.index, start + slot.price)

    @rule(v=st.integers(0, 2), which=st.integers(0, 20),
          kind=st.sampled_from(["forged", "replayed", "none", "stolen", "old"]))  # fmt: skip
    def forged_or_replayed_release(self, v: int, which: int, kind: str) -> None:
        """At the broker: a release forged or replayed. At a custodian: a release request with no grant, a grant
        stolen from another vendor, or a genuine grant of an earlier window."""
        if kind in ("forged", "replayed"):
            self.release_at_the_broker(which, kind)
        else:
            self.release_request_from_a_vendor_not_named(v, which, kind)

    def release_at_the_broker(self, which: int, kind: str) -> None:
        url = f"{self.url()}/v1/custody/releases"
        if kind == "replayed":
            rows = self.db.query("SELECT wire FROM releases WHERE released_to != 'broker'")
            row = self.pick(rows, which)
            if row is None:
                return
            self.dishonest("replay a release at the broker")
            before = self.money()
            resp = self.broker.session.post(url, json=json.loads(row[0]))
            STATS["checks"] += 1
            assert resp.status_code == 200 and resp.json()["recorded"] is False, resp.text
            self.unchanged(before)
            return
        chain = self.pick(self.chains(), which)
        if chain is None or not chain.holders:
            return
        self.dishonest("forge a release at the broker")
        victim = self.slots[chain.holders[0]].vendor_id
        hi = max(chain.index, 1)
        forged = Signed.sign(
            CustodyRelease(bytes.fromhex(chain.cid), victim, self.mallory.vendor_id, hi, chain.known.word(hi), 1),
            self.mallory.key,
        )
        before = self.money()
        resp = self.broker.session.post(url, json=forged.to_wire())
        STATS["checks"] += 1
        assert resp.status_code in (400, 404, 409), resp.text
        self.documented(resp.json()["error"]["code"])
        self.unchanged(before)

    def release_request_from_a_vendor_not_named(self, v: int, which: int, how: str) -> None:
        slot = self.slots[v]
        if slot.running is None:
            return
        store = slot.running.vendor.store
        held = self.pick(store.query("SELECT chain_id, custody_window FROM chains"), which)
        if held is None:
            return
        chain_id = bytes.fromhex(held["chain_id"])
        grant: Signed[CustodyGrant] | None = None
        requester = (self.mallory_cert, self.mallory.key)
        if how in ("stolen", "old"):
            grants = [
                Signed.from_wire(json.loads(r["custody_grant"]), CustodyGrant)
                for s in self.slots
                if s.running is not None
                for r in s.running.vendor.store.query(
                    "SELECT custody_grant FROM chains WHERE chain_id = ? AND custody_grant IS NOT NULL",
                    (held["chain_id"],),
                )
            ]
            if how == "old":  # a genuine grant of an earlier window, sent by the vendor it names
                grants = [g for g in grants if g.body.window <= held["custody_window"]]
                if not grants:
                    return
                grant = grants[0]
                owner = next(s for s in self.slots if s.vendor_id == grant.body.vendor_id)
                if owner.running is None:
                    return
                requester = (owner.running.vendor.trust.certificate(), owner.key)
            else:
                grant = self.pick(grants, which)
                if grant is None:
                    return
        self.dishonest(f"release request with {how} grant")
        before_vendor = slot.running.dump()
        before = self.money()
        req = Signed.sign(ReleaseRequest(chain_id, requester[0], secrets.token_hex(8), int(time.time()), grant),
                          requester[1])  # fmt: skip
        resp = requests.post(f"{slot.urls()[0]}/v1/custody/release", json=req.to_wire(), timeout=10)
        STATS["checks"] += 1
        assert 400 <= resp.status_code < 500, resp.text
        self.documented(resp.json()["error"]["code"])
        assert slot.running.dump() == before_vendor
        self.unchanged(before)

    # -- hosted e-wallets and grants ------------------------------------------------------------------------------
    @rule()
    def hosted_customer_arrives(self) -> None:
        # Not in the world of several processes: there a shop's two processes answer on two ports, and its certificate
        # names one origin, so the broker rightly refuses the other's redirect URI (a real shop's processes share one
        # public origin). The hosted e-wallet's races between processes are tests/hosted/test_hosted_races.py and
        # test_hosted_persistence.py.
        if len(self.hosted) >= 2 or self.world.engine != "default":
            return
        self.step("hosted customer arrives")
        name, token = hosted_customer(self.broker, hosted_cents=LENGTH, topup=LENGTH)
        auth = {"Authorization": f"Bearer {token}"}
        account = self.broker.session.get(f"{self.broker.url}/v1/account", headers=auth).json()["account_id"]
        [chain] = self.broker.session.get(f"{self.broker.url}/v1/account/hosted", headers=auth).json()["chains"]
        self.hosted.append(HostedCustomer(name, token, account, chain["chain_id"]))

    @rule(h=st.integers(0, 1), v=st.integers(0, 2), budget=st.integers(10, 40), times=st.integers(1, 3))
    def hosted_pay(self, h: int, v: int, budget: int, times: int) -> None:
        """The hosted customer buys at shop v: one tap under its grant, or a new grant (the e-wallet moves)."""
        for _ in range(times):
            self.hosted_pay_once(h, v, budget)

    @rule(h=st.integers(0, 1), a=st.integers(0, 2), shift=st.integers(1, 2), budget=st.integers(10, 40))
    def hosted_pay_at_a_then_b_then_a(self, h: int, a: int, shift: int, budget: int) -> None:
        for v in (a, (a + shift) % 3, a):
            self.hosted_pay_once(h, v, budget)

    def hosted_pay_once(self, h: int, v: int, budget: int) -> None:
        hc = self.pick(self.hosted, h)
        slot = self.slots[v]
        if hc is None or slot.running is None or hc.index + slot.price > LENGTH:
            return
        if hc.holder is not None and self.slots[hc.holder].running is None:
            return  # the e-wallet stays with a shop that cannot release it (the broker says so; nothing moves)
        if hc.holder == v and hc.index + slot.price <= hc.top:
            self.step("hosted pay under the grant")
            r = hc.browser.post(f"{slot.running.url}/hosted/buy/{slot.item}", allow_redirects=False)
            STATS["checks"] += 1
            if r.status_code == 303:
                assert "?code=" in r.headers["location"], r.headers
                hc.accepted.append((v, hc.index, hc.index + slot.price))
                hc.index += slot.price
                return
            # The shop released the chain to the broker, but the broker did not hear it in time (a loaded machine):
            # the shop's grant has ended there; the customer allows the shop again (the broker asks again and gets
            # the same release).
            self.hosted_refused(r, "a hosted grant ended at its shop, unheard by the broker")
        self.hosted_allow(hc, v, budget)

    def hosted_allow(self, hc: HostedCustomer, v: int, budget: int) -> str:
        """The customer allows shop v a budget: shop → broker (log in) → approve → back at the shop, which redeems
        the code and pays the item. Played step by step, stopping at the shop's redirect to the item (opening it
        would write to the shop's database after this move). Returns the code the shop got."""
        slot = self.slots[v]
        assert slot.running is not None
        self.step("hosted grant" if hc.holder in (None, v) else "hosted grant, the e-wallet moves")
        coins = max(slot.price, min(budget, LENGTH - hc.index))
        page = hc.browser.get(f"{slot.running.url}/hosted/start?item={slot.item}")
        # as a browser does, the forms go back to the broker process that served them (the shop names one of them)
        at = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
        if 'action="/hosted/login"' in page.text:
            login = {**hidden_fields(page.text), "username": hc.name, "password": PASSWORD}
            page = hc.browser.post(f"{at}/hosted/login", data=login)
        form = {**hidden_fields(page.text), "budget": f"{coins // 100}.{coins % 100:02d}", "duration": "86400",
                "decision": "allow"}  # fmt: skip
        r = hc.browser.post(f"{at}/hosted/authorize", data=form, allow_redirects=False)
        STATS["checks"] += 1
        assert r.status_code == 303, r.text
        redirect = r.headers["location"]
        code = re.search(r"[?&]code=([^&]+)", redirect)
        assert code is not None, redirect
        r = hc.browser.get(redirect, allow_redirects=False)  # back at the shop: it redeems the code, pays the item
        if r.status_code == 303:
            assert "?code=" in r.headers["location"], r.headers
            hc.holder, hc.top = v, hc.index + coins
            hc.accepted.append((v, hc.index, hc.index + slot.price))
            hc.index += slot.price
        else:  # the holder did not answer the broker's close request in time: nothing moves
            self.hosted_refused(r, "hosted grant refused: the holder did not release in time")
        return unquote(code.group(1))

    def hosted_refused(self, r: requests.Response, what: str) -> None:
        """An honest hosted move refused because a shop did not answer in time: a documented code, nothing paid."""
        STATS[what] += 1
        STATS["checks"] += 1
        assert r.status_code == 402 and 'data-code="insufficient_coins"' in r.text, (r.status_code, r.text)

    @rule(h=st.integers(0, 1), v=st.integers(0, 2), w=st.integers(0, 2), budget=st.integers(10, 40))
    def hosted_code_replayed(self, h: int, v: int, w: int, budget: int) -> None:
        """The customer allows shop v (the redirect played step by step, the code seen on its way back); once the shop
        has redeemed it, the same code is sent again, by the shop or by another (signed by it): refused, nothing
        granted."""
        hc = self.pick(self.hosted, h)
        slot = self.slots[v]
        if hc is None or slot.running is None or hc.index + slot.price > LENGTH:
            return
        if hc.holder is not None and self.slots[hc.holder].running is None:
            return
        code = self.hosted_allow(hc, v, budget)
        self.dishonest("hosted authorization code replayed" + (" by another shop" if w != v else ""))
        replayer = self.slots[w]
        before = self.money()
        grants = self.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0]
        req = GrantRequest(replayer.vendor_id, code, secrets.token_urlsafe(48), f"{slot.running.url}/hosted/callback",
                           secrets.token_hex(8), int(time.time()))  # fmt: skip
        resp = self.broker.session.post(f"{self.broker.url}/v1/hosted/grants",
                                        json=Signed.sign(req, replayer.key).to_wire())  # fmt: skip
        STATS["checks"] += 1
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "replayed", resp.text
        self.documented(resp.json()["error"]["code"])
        assert self.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0] == grants
        self.unchanged(before)

    def hosted_grants(self, hc: HostedCustomer) -> list[tuple[HostedGrant, Any]]:
        """The grants of the customer's chain, oldest first, with their broker rows."""
        rows = self.db.query("SELECT * FROM hosted_grants WHERE chain_id = ? ORDER BY from_index, issued_at",
                             (hc.cid,))  # fmt: skip
        return [(Signed.from_wire(json.loads(r["wire"]), HostedGrant).body, r) for r in rows]

    @rule(h=st.integers(0, 1), which=st.integers(0, 20), w=st.integers(1, 2),
          kind=st.sampled_from(["replayed", "wrong_vendor", "beyond", "released"]))  # fmt: skip
    def hosted_dishonest(self, h: int, which: int, w: int, kind: str) -> None:
        """A grant handed to its shop again or to another shop; a shop redeeming (and reporting) coins beyond its
        grant or the part of an old slice it released."""
        hc = self.pick(self.hosted, h)
        picked = self.pick(self.hosted_grants(hc), which) if hc is not None else None
        if picked is None:
            return
        grant, row = picked
        v = next(i for i, s in enumerate(self.slots) if s.vendor_id == grant.vendor_id)
        target = v if kind in ("replayed", "beyond", "released") else (v + w) % 3
        slot = self.slots[target]
        if slot.running is None:
            return
        if kind in ("replayed", "wrong_vendor"):
            self.dishonest(f"hosted grant {kind.replace('_', ' ')}")
            cert = self.db.one("SELECT certificate FROM chains WHERE chain_id = ?", (hc.cid,))
            answer = {"grant": json.loads(row["wire"]), "certificate": json.loads(cert[0])}
            before, before_shop = self.money(), slot.running.dump()
            with pytest.raises(NetPayError) as refused:
                GrantBook(slot.running.vendor).accept(answer, secrets.token_urlsafe(16))
            STATS["checks"] += 1
            assert refused.value.code == ("replayed" if kind == "replayed" else "untrusted_signer"), refused.value
            self.documented(refused.value.code)
            assert slot.running.dump() == before_shop
            self.unchanged(before)
            return
        hasher = ChainHasher(grant.chain_id)
        if kind == "beyond":  # a payword above the slice's top: the shop can only guess it
            if grant.to_index >= LENGTH:
                return
            lo, hi, word = grant.to_index, min(LENGTH, grant.to_index + 5), secrets.token_bytes(32)
        else:  # the part of an ended slice the shop released (it knows those paywords), outside all its grants
            if row["status"] != "ended" or row["end_index"] is None or row["end_index"] >= grant.to_index:
                return
            others = [(g.from_index, g.to_index) for g, r in self.hosted_grants(hc)
                      if g.vendor_id == grant.vendor_id and r["grant_id"] != row["grant_id"]]  # fmt: skip
            lo = int(row["end_index"])
            for a, b in sorted(others):
                if a <= lo < b:
                    lo = b
            hi = min([grant.to_index] + [a for a, _ in others if a > lo])
            if lo >= hi:
                return
            word = hasher.walk(grant.top_payword, grant.to_index, hi)
        self.dishonest(f"hosted shop redeems {kind} its grant" if kind == "beyond" else "hosted shop redeems released")
        before = self.money()
        resp = self.redeem_claims(slot, [(grant.chain_id, lo, hi, word)])
        self.refused_claim(resp)
        report = SpendReport(secrets.token_hex(8), slot.vendor_id, (SpendEntry(grant.chain_id, lo, hi, word),),
                             int(time.time()))  # fmt: skip
        resp = self.broker.session.post(f"{self.broker.url}/v1/spend-reports",
                                        json=Signed.sign(report, slot.key).to_wire())  # fmt: skip
        STATS["checks"] += 1
        assert 400 <= resp.status_code < 500, resp.text
        self.documented(resp.json()["error"]["code"])
        self.unchanged(before)

    @invariant()
    def hosted_coins_are_paid_only_to_the_shop_that_took_them(self) -> None:
        for hc in self.hosted:
            for i, slot in enumerate(self.slots):
                accepted = {k for (v, lo, hi) in hc.accepted if v == i for k in range(lo + 1, hi + 1)}
                paid = [k for lo, hi in self.paid(slot.vendor_id, hc.cid) for k in range(lo + 1, hi + 1)]
                STATS["checks"] += 1
                assert len(paid) == len(set(paid)), f"{slot.vendor_id} paid twice on hosted {hc.cid}"
                assert set(paid) <= accepted, f"{slot.vendor_id} paid for hosted coins it did not take on {hc.cid}"
            row = self.db.one("SELECT COUNT(*) FROM custody_overlaps WHERE account_id = ?", (hc.account_id,))
            STATS["checks"] += 1
            assert row is not None and int(row[0]) == 0  # a hosted customer never spends twice

    def hosted_paid_exactly(self) -> None:
        for hc in self.hosted:
            for i, slot in enumerate(self.slots):
                accepted = {k for (v, lo, hi) in hc.accepted if v == i for k in range(lo + 1, hi + 1)}
                paid = {k for lo, hi in self.paid(slot.vendor_id, hc.cid) for k in range(lo + 1, hi + 1)}
                STATS["checks"] += 1
                assert paid == accepted, (slot.vendor_id, hc.cid, sorted(accepted - paid))

    # -- invariants -----------------------------------------------------------------------------------------------
    @invariant()
    def books_balance(self) -> None:
        if not self.customers:
            return
        report = audit_report(self.broker.broker.core)
        STATS["checks"] += len(report["checks"])
        assert report["balanced"], report

    @invariant()
    def nobody_is_paid_for_coins_it_did_not_accept(self) -> None:
        for chain in self.chains():
            for i, slot in enumerate(self.slots):
                accepted = {k for (v, lo, hi) in chain.accepted if v == i for k in range(lo + 1, hi + 1)}
                paid = [k for lo, hi in self.paid(slot.vendor_id, chain.cid) for k in range(lo + 1, hi + 1)]
                STATS["checks"] += 1
                assert len(paid) == len(set(paid)), f"{slot.vendor_id} paid twice on {chain.cid}"
                assert set(paid) <= accepted, f"{slot.vendor_id} paid for coins it did not accept on {chain.cid}"

    @invariant()
    def only_a_cheating_customer_is_charged(self) -> None:
        for cu in self.customers:
            row = self.db.one("SELECT COUNT(*) FROM custody_overlaps WHERE account_id = ?", (cu.account_id,))
            STATS["checks"] += 1
            assert row is not None and (cu.cheated or int(row[0]) == 0)
            if not cu.cheated:
                bought = LENGTH * len(cu.chains)
                refunds = sum(LENGTH - c.index for c in cu.chains if c.closed)
                balance = self.broker.broker.accounts.balance(cu.account_id).amount
                STATS["checks"] += 1
                assert balance == 2000 - bought + refunds

    def teardown(self) -> None:
        """Eventually: every vendor back up, reports and redemptions done; each is paid for every coin it took."""
        try:
            for slot in self.slots:
                if slot.running is None:
                    slot.up(self.broker)
            for chain in self.chains():
                if chain.closing and not chain.closed:
                    cu = self.customers[chain.owner]
                    out = self.broker.session.post(
                        f"{self.url()}/v1/chains/{chain.cid}/close",
                        headers={"Authorization": f"Bearer {cu.token}"},
                    ).json()
                    assert out["status"] == "closed" and out["final_index"] == chain.index, out
                    chain.closed = True
            for _ in range(2):
                for slot in self.slots:
                    assert slot.running is not None
                    slot.running.vendor.reporter.flush()
                    summary = slot.running.vendor.redeemer.redeem()
                    STATS["claims accepted"] += summary["accepted"]
                    STATS["claims rejected"] += summary["rejected"]
            for chain in self.chains():
                for i, slot in enumerate(self.slots):
                    accepted = {k for (v, lo, hi) in chain.accepted if v == i for k in range(lo + 1, hi + 1)}
                    paid = {k for lo, hi in self.paid(slot.vendor_id, chain.cid) for k in range(lo + 1, hi + 1)}
                    STATS["checks"] += 1
                    assert paid == accepted, (slot.vendor_id, chain.cid, sorted(accepted - paid))
            self.hosted_paid_exactly()
            self.only_a_cheating_customer_is_charged()
            self.books_balance()
            STATS["runs"] += 1
        finally:
            for slot in self.slots:
                if slot.running is None:
                    slot.up(self.broker)


@pytest.mark.timeout(0 if STEPS else 900)
def test_protocol_model(world: World) -> None:
    ProtocolModel.world = world
    started = STARTED[0] = time.monotonic()
    STATS.clear()
    # The default run is the same every time (derandomized); the long run draws new runs until it made STEPS moves.
    while True:
        left = STEPS - STATS["steps"]
        run_state_machine_as_test(
            ProtocolModel,
            settings=settings(
                max_examples=max(1, left // STEPS_PER_RUN) if STEPS else 10,  # at most the steps left
                stateful_step_count=STEPS_PER_RUN,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=not STEPS,
                database=None,
            ),
        )
        if STATS["steps"] >= STEPS:
            break
    wall = time.monotonic() - started
    moves = sorted((k, v) for k, v in STATS.items() if k.startswith("move "))
    print(f"\nprotocol model ({world.engine}): {STATS['runs']} runs, {STATS['steps']} steps, "
          f"{STATS['dishonest moves']} dishonest moves, {STATS['checks']} invariant checks, {wall:.1f} s")  # fmt: skip
    for name, count in moves:
        print(f"  {name[5:]}: {count}")
    for key in (
        "payments to a vendor that is down",
        "coins spent twice",
        "claims accepted",
        "claims rejected",
        "hosted grant refused: the holder did not release in time",
        "a hosted grant ended at its shop, unheard by the broker",
    ):
        print(f"  {key}: {STATS[key]}")
    assert STATS["steps"] > 0 and STATS["checks"] > 0

"""Crash test: a wallet process paying 200 quotes to two real vendors is killed with SIGKILL again and again — at
named steps of the engine (after the journal write before the send, after the vendor answered before the receipt
is stored, after the receipt is stored) and at random moments from outside. After each kill the vault is opened,
pending spends are recovered, and the accounting is checked:

- no index was ever sent to two vendors (checked from the worker's own sent log, written before each send);
- every coin is spent with a receipt, unspent, or burned and accounted for (per chain, and in total);
- balance = coins bought - coins spent - coins burned.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from netpay.encoding import parse_json
from netpay.messages import Receipt
from netpay.money import Money
from netpay.signed import Signed
from tests.support.broker import TEST_CARD, RunningBroker
from tests.support.test_keyring import FileKeyring
from tests.support.vendor import CARDS
from tests.support.wallet_crash_worker import LoggingVendorClient
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService

PAYMENTS = 200
MIN_KILLS = 55
STEPS = ["after_journal", "after_send", "after_settle"]
ROOT = Path(__file__).resolve().parents[3]


def _wallet(data_dir: Path, keyring_file: Path) -> WalletService:
    store = KeyStore(FileKeyring(keyring_file), kdf=FAST_TEST_KDF)
    return WalletService(data_dir, key_store=store, vendor_client_factory=LoggingVendorClient)


def _audit(data_dir: Path, keyring_file: Path, sent_log: Path) -> dict[str, int]:
    """Open the vault (which recovers pending spends) and check every invariant; return the counts."""
    w = _wallet(data_dir, keyring_file)
    w.unlock()
    try:
        v = w.vault
        assert v.one("SELECT COUNT(*) FROM spends WHERE status = 'pending'")[0] == 0, "recovery left a spend pending"
        # Coins with a receipt, read from the vendor-signed receipts themselves.
        settled: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for (rj,) in v.query("SELECT receipt_json FROM spends WHERE status = 'settled'"):
            receipt = Signed.from_wire(parse_json(rj), Receipt)
            for seg in receipt.body.segments:
                settled[seg.chain_id.hex()].append((seg.from_index, seg.to_index))
        burned: dict[str, int] = defaultdict(int)
        for cid, frm, to in v.query(
            """SELECT g.chain_id, g.from_index, g.to_index FROM spend_segments g JOIN spends s
               ON s.payment_id = g.payment_id WHERE s.status = 'burned' OR (s.status = 'released' AND g.rewound = 0)"""
        ):
            burned[cid] += to - frm
        totals = {"bought": 0, "spent": 0, "burned": 0, "unspent": 0}
        for chain in w.list_chains():
            ranges = sorted(settled[chain.chain_id])
            for (_, a_to), (b_from, _) in itertools.pairwise(ranges):
                assert a_to <= b_from, f"two receipts cover the same coins of chain {chain.chain_id}"
            spent = sum(t - f for f, t in ranges)
            assert all(t <= chain.position for _, t in ranges)
            assert spent + burned[chain.chain_id] + chain.unspent == chain.length, (
                f"chain {chain.chain_id}: {spent} spent + {burned[chain.chain_id]} burned + {chain.unspent} unspent "
                f"!= {chain.length}"
            )
            value = chain.coin_value.amount
            totals["bought"] += chain.length * value
            totals["spent"] += spent * value
            totals["burned"] += burned[chain.chain_id] * value
            totals["unspent"] += chain.unspent * value
        (line,) = w.balance()
        assert line.unspent == Money(totals["bought"] - totals["spent"] - totals["burned"], "EUR")
        assert line.unspent.amount == totals["unspent"]
        # No index ever went to two vendors: from the sent log written before every send.
        owner: dict[tuple[str, int], str] = {}
        sent_ids = set()
        for raw in sent_log.read_text().splitlines() if sent_log.exists() else []:
            entry = json.loads(raw)
            sent_ids.add(entry["payment_id"])
            for cid, frm, to in entry["segments"]:
                for i in range(frm + 1, to + 1):
                    assert owner.setdefault((cid, i), entry["vendor_id"]) == entry["vendor_id"], (
                        f"index {i} of chain {cid} was sent to two vendors"
                    )
        for (pid,) in v.query("SELECT payment_id FROM spends WHERE status = 'settled'"):
            assert pid in sent_ids
        totals["payments"] = v.one("SELECT COUNT(*) FROM spends WHERE status = 'settled'")[0]
        totals["burned_spends"] = v.one("SELECT COUNT(*) FROM spends WHERE status = 'burned'")[0]
        totals["released_spends"] = v.one("SELECT COUNT(*) FROM spends WHERE status = 'released'")[0]
        return totals
    finally:
        w.close()


@pytest.mark.slow
@pytest.mark.timeout(280)
def test_sigkill_during_200_payments(broker: RunningBroker, vendor_factory: Any, tmp_path: Path) -> None:
    news = vendor_factory()
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    data_dir, keyring_file, sent_log = tmp_path / "wallet", tmp_path / "keyring.json", tmp_path / "sent.log"
    LoggingVendorClient.log_path = sent_log

    w = _wallet(data_dir, keyring_file)
    w.create()
    info = w.add_broker(broker.url)
    w.trust_broker(info.broker_id)
    w.register(info.broker_id, "crash_test", "correct horse battery staple")
    for _ in range(15):  # 1500 coins; 200 payments alternating 3 and 10 coins need 1300
        w.buy_coins(info.broker_id, 100, Money(1, "EUR"), card=TEST_CARD)
    w.close()

    seed = int(os.environ.get("NETPAY_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    cmd = [
        sys.executable, "-m", "tests.support.wallet_crash_worker", "--data-dir", str(data_dir),
        "--keyring-file", str(keyring_file), "--sent-log", str(sent_log), "--payments", str(PAYMENTS),
        "--vendor", f"{news.url}:night-market-returns", "--vendor", f"{cards.url}:thank-you-sunrise",
    ]  # fmt: skip
    kill_points: set[tuple[str, int, int]] = set()
    kills = {"hook": 0, "external": 0}
    totals: dict[str, int] = {}
    started = time.monotonic()
    for _round in range(400):
        before = totals.get("payments", 0)
        if before >= PAYMENTS:
            break
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETPAY_WALLET_CRASH")}
        mode = "none"
        if len(kill_points) < MIN_KILLS + 10:
            mode = rng.choice(["hook", "hook", "external"])
        hit = rng.randint(1, 3)
        step = rng.choice(STEPS)
        # Pace the kills so the payments cannot run out first: a hook kill at hit 1 costs at most one payment, an
        # external kill may let dozens through (the wallet pays a quote in a few ms), so it is only taken while
        # far ahead of what the remaining payments must still yield.
        needed = MIN_KILLS + 3 - len(kill_points)
        remaining = PAYMENTS - before
        if mode == "external" and remaining < 3 * needed + 40:
            mode = "hook"
        if mode != "none" and remaining < 3 * needed + 20:  # behind pace: die at the first chance
            hit = 1
        if mode == "hook":
            env.update(NETPAY_WALLET_CRASH_AT=step, NETPAY_WALLET_CRASH_HIT=str(hit))
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if mode == "external":
            delay_ms = rng.randint(200, 450)
            try:
                proc.wait(timeout=delay_ms / 1000)
            except subprocess.TimeoutExpired:
                proc.kill()
        rc = proc.wait(timeout=120)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if rc == -9:
            kills[mode] += 1
            point = (step if mode == "hook" else f"external~{delay_ms // 50}", before, hit if mode == "hook" else 0)
            kill_points.add(point)
        else:
            assert rc == 0, f"wallet worker failed (rc={rc}):\n{err[-3000:]}"
        totals = _audit(data_dir, keyring_file, sent_log)
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test (seed {seed}): {kills['hook']} kills at engine steps + {kills['external']} external kills, "
        f"{len(kill_points)} distinct kill points, {elapsed:.1f}s\n"
        f"payments settled {totals['payments']}, burned spends {totals['burned_spends']}, "
        f"released spends {totals['released_spends']}\n"
        f"cents bought {totals['bought']} = spent {totals['spent']} + burned {totals['burned']} "
        f"+ unspent {totals['unspent']}"
    )
    assert totals["payments"] >= PAYMENTS
    assert len(kill_points) >= MIN_KILLS
    assert kills["hook"] and kills["external"]
    assert {p[0] for p in kill_points} >= {"after_journal", "after_send"}

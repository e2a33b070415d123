"""Work that runs beside the shop: spend reports to the broker ("almost on-line") and redemption of earnings.

Spend reports go out shortly after each payment and are retried with back-off while the broker is down.
Redemption sends the pending spends as claims in a signed batch. The batch is written to the database before it is
sent, so a batch whose answer was lost is re-sent with the same ``batch_id`` (the broker answers it idempotently).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from netpay.errors import NetPayError, PeerUnavailable
from netpay.keys import SigningKey
from netpay.messages import (
    CustodyRelease,
    RedemptionBatch,
    RedemptionClaim,
    RedemptionResult,
    SpendEntry,
    SpendReport,
)
from netpay.signed import Signed
from vendor_stub.broker_client import BrokerClient
from vendor_stub.storage import Store
from vendor_stub.trust import Trust

__all__ = ["Redeemer", "SpendReporter"]

log = logging.getLogger(__name__)

MAX_ENTRIES = 1000


class SpendReporter:
    """Reports accepted spends to the broker in the background; :meth:`flush` does one round synchronously."""

    def __init__(self, store: Store, broker: BrokerClient, key: SigningKey, vendor_id: str,
                 clock: Callable[[], int], delay_s: float = 0.2) -> None:  # fmt: skip
        self._store = store
        self._broker = broker
        self._key = key
        self.vendor_id = vendor_id
        self._now = clock
        self._delay = delay_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None
        self.reports_sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vendor-spend-reports", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def poke(self) -> None:
        """A payment was recorded: report soon."""
        self._wake.set()

    def _run(self) -> None:
        backoff = 0.0
        self._wake.set()  # report what an earlier run left unreported
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff or 30.0)
            if self._stop.wait(self._delay):
                return
            self._wake.clear()
            try:
                while self.flush() == MAX_ENTRIES:
                    pass
                backoff = 0.0
            except NetPayError as exc:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                self._wake.set()
                log.info("spend report failed (%s); retrying in %.1fs", exc.code, backoff)
                if self._stop.wait(backoff):
                    return
            except Exception:  # keep reporting whatever happens; the next round retries
                log.exception("spend reporter error")
                backoff = 5.0

    def flush(self) -> int:
        """Send one report of unreported spends; return how many entries it held (0 when another process of this
        shop is reporting right now: it sends these rows)."""
        with self._round, self._store.session_lock(f"spend-reports:{self.vendor_id}") as mine:
            if not mine:
                return 0
            rows = self._store.query(
                "SELECT spend_id, chain_id, from_index, to_index, payword FROM spends WHERE reported_at IS NULL"
                " ORDER BY spend_id LIMIT ?",
                (MAX_ENTRIES,),
            )
            if not rows:
                return 0
            entries = tuple(
                SpendEntry(bytes.fromhex(r["chain_id"]), r["from_index"], r["to_index"], bytes.fromhex(r["payword"]))
                for r in rows
            )
            report = Signed.sign(SpendReport(secrets.token_hex(16), self.vendor_id, entries, self._now()), self._key)
            try:
                self._broker.report_spends(report)
            except PeerUnavailable:
                raise
            except NetPayError as exc:
                # The broker refused every entry for good (e.g. the chain was closed below them): retrying cannot
                # help; redemption will settle these spends.
                log.warning("broker refused a spend report (%s: %s)", exc.code, exc.message)
            now = self._now()
            ids = [r["spend_id"] for r in rows]

            def write(c: sqlite3.Connection) -> None:
                c.executemany("UPDATE spends SET reported_at = ? WHERE spend_id = ?", [(now, i) for i in ids])

            self._store.write(write)
            self.reports_sent += 1
            return len(rows)


class Redeemer:
    """Sends pending spends to the broker for redemption and records what it accepted or rejected."""

    def __init__(self, store: Store, broker: BrokerClient, trust: Trust, key: SigningKey, vendor_id: str,
                 clock: Callable[[], int], interval_s: float = 300.0) -> None:  # fmt: skip
        self._store = store
        self._broker = broker
        self._trust = trust
        self._key = key
        self.vendor_id = vendor_id
        self._now = clock
        self._interval = interval_s
        self._stop = threading.Event()
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None
        self.after_round: Callable[[], object] = lambda: None  # e.g. pay refunds the new payable now covers

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vendor-redemption", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.redeem()
            except NetPayError as exc:
                log.info("redemption postponed: %s", exc.message)
            except Exception:
                log.exception("redemption error")

    def redeem(self) -> dict[str, Any]:
        """Re-send open batches, then send every pending spend. Returns counts and amounts of this round (all 0
        when another process of this shop is redeeming right now)."""
        summary: dict[str, Any] = {"batches": 0, "accepted": 0, "rejected": 0, "accepted_amount": 0}
        with self._round, self._store.session_lock(f"redemption:{self.vendor_id}") as mine:
            if not mine:
                return summary
            for row in self._store.query("SELECT batch_id FROM batches WHERE status = 'open' ORDER BY created_at"):
                self._send(row["batch_id"], summary)
            while (batch_id := self._open_batch()) is not None:
                self._send(batch_id, summary)
        try:
            self.after_round()
        except Exception:  # a refund that cannot be paid yet never stops redemption
            log.exception("after-redemption step failed")
        return summary

    def _open_batch(self) -> str | None:
        rows = self._store.query(
            "SELECT s.spend_id, s.chain_id, s.from_index, s.to_index, s.payword, c.base_index, c.base_source,"
            " c.base_release FROM spends s JOIN chains c ON c.chain_id = s.chain_id"
            " WHERE s.status = 'pending' AND s.batch_id IS NULL ORDER BY s.spend_id LIMIT ?",
            (MAX_ENTRIES,),
        )
        if not rows:
            return None
        claims = []
        for r in rows:
            release = None
            if r["base_source"] == "release" and r["from_index"] == r["base_index"] and r["base_release"]:
                release = Signed.from_wire(json.loads(r["base_release"]), CustodyRelease, "release", verify=False)
            claims.append(RedemptionClaim(bytes.fromhex(r["chain_id"]), r["from_index"], r["to_index"],
                                          bytes.fromhex(r["payword"]), release))  # fmt: skip
        batch_id = secrets.token_hex(16)
        batch = Signed.sign(RedemptionBatch(batch_id, self.vendor_id, tuple(claims), self._now()), self._key)
        ids = [r["spend_id"] for r in rows]
        now = self._now()

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO batches (batch_id, body, created_at, status) VALUES (?, ?, ?, 'open')",
                      (batch_id, json.dumps(batch.to_wire()), now))  # fmt: skip
            c.executemany("UPDATE spends SET status = 'submitted', batch_id = ? WHERE spend_id = ?",
                          [(batch_id, i) for i in ids])  # fmt: skip

        self._store.write(write)
        return batch_id

    def _send(self, batch_id: str, summary: dict[str, Any]) -> None:
        row = self._store.one("SELECT body FROM batches WHERE batch_id = ?", (batch_id,))
        assert row is not None
        batch = Signed.from_wire(json.loads(row["body"]), RedemptionBatch, "batch", verify=False)
        try:
            result = self._broker.redeem(batch)
        except NetPayError as exc:
            # The broker refuses a batch of which no claim was accepted as a whole (4xx), with the signed
            # per-claim result in details.result: record those rejections like any other answer.
            if not isinstance(exc.details.get("result"), dict):
                raise
            result = Signed.from_wire(exc.details["result"], RedemptionResult, "result")
        body = result.require_signer(self._trust.broker_key())
        if body.batch_id != batch_id or len(body.results) != len(batch.body.claims):
            raise NetPayError("the broker's redemption result does not match the batch")
        spends = self._store.query("SELECT spend_id, chain_id, to_index FROM spends WHERE batch_id = ?", (batch_id,))
        by_claim = {(r["chain_id"], r["to_index"]): r["spend_id"] for r in spends}
        now = self._now()
        updates = []
        for claim, res in zip(batch.body.claims, body.results, strict=True):
            spend_id = by_claim.get((claim.chain_id.hex(), claim.to_index))
            if spend_id is None:
                continue
            status = "redeemed" if res.status == "accepted" else "rejected"
            updates.append((status, res.reason, json.dumps(res.evidence) if res.evidence else None, now, spend_id))
            summary["accepted" if status == "redeemed" else "rejected"] += 1
            if status == "redeemed":
                summary["accepted_amount"] += res.amount.amount

        def write(c: sqlite3.Connection) -> None:
            c.executemany(
                "UPDATE spends SET status = ?, reason = ?, evidence = ?, settled_at = ? WHERE spend_id = ?", updates
            )
            c.execute("UPDATE batches SET status = 'done', result = ?, processed_at = ? WHERE batch_id = ?",
                      (json.dumps(result.to_wire()), now, batch_id))  # fmt: skip

        self._store.write(write)
        summary["batches"] += 1

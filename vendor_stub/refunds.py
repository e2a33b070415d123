"""Refunds and re-delivery from the receipt alone (Kravitz, seed 003: both decoupled from payment).

A customer sends the shop's own signed receipt (``POST /v1/refunds`` with a reason). The shop answers at once:

- ``refused`` (signed) when the shop's refund window (``refund_window_s`` after the receipt) has closed;
- ``granted`` (signed) automatically when the item was never opened with the receipt's access token;
- ``pending`` otherwise: the publisher decides on the earnings page (``POST /v1/refunds/{id}/decision``), and the
  customer asks again (``GET /v1/refunds/{id}``) for the signed decision.

A granted refund revokes the receipt's access token and is paid through the broker from the shop's payable to the
account that bought the receipt's chains (the shop never learns it): at once, or after the next redemption when the
payable does not cover it yet. A request for the same receipt again gets the same answer; only this shop's genuine
receipts of recorded payments are taken. Whoever holds a receipt may ask, but the money only ever goes to the
account that paid.

``POST /v1/redeliveries`` gives a new access token for a genuine, unrefunded receipt (a new device, a lost or expired
token; a time pass keeps its end).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from netpay.encoding import FieldReader
from netpay.errors import Forbidden, MalformedMessage, NetPayError, NotFound, UntrustedSigner
from netpay.keys import SigningKey
from netpay.messages import MAX_REASON, Receipt, RefundDecision
from netpay.money import Money
from netpay.signed import Signed
from vendor_stub.access import AccessTokens
from vendor_stub.broker_client import BrokerClient
from vendor_stub.storage import Store

__all__ = ["RefundDesk"]

log = logging.getLogger(__name__)


class RefundDesk:
    """Takes refund requests, records decisions, pays granted refunds through the broker, re-delivers."""

    def __init__(self, store: Store, key: SigningKey, vendor_id: str, broker: BrokerClient, tokens: AccessTokens,
                 clock: Callable[[], int], window_s: int) -> None:  # fmt: skip
        self._store = store
        self._key = key
        self.vendor_id = vendor_id
        self._broker = broker
        self._tokens = tokens
        self._now = clock
        self.window_s = window_s
        self._settle_lock = threading.Lock()
        self._seen_open: set[str] = set()
        for row in store.query("SELECT receipt_id FROM refunds WHERE status = 'granted'"):
            tokens.revoke(str(row["receipt_id"]))

    # -- the customer's side ------------------------------------------------------------------------------------
    def _own_receipt(self, raw: Any, where: str) -> tuple[Signed[Receipt], sqlite3.Row]:
        """This shop's genuine receipt of a recorded payment (and its payments row)."""
        signed = Signed.from_wire(raw, Receipt, where)
        if signed.signer != self._key.public or signed.body.vendor_id != self.vendor_id:
            raise UntrustedSigner("this receipt was not issued by this shop", field=where)
        row = self._store.one("SELECT payment_id, item_id, receipt FROM payments WHERE payment_id = ?",
                              (signed.body.payment_id,))  # fmt: skip
        if row is None or json.loads(row["receipt"])["body"]["receipt_id"] != signed.body.receipt_id:
            raise NotFound("this shop has no purchase with that receipt", receipt_id=signed.body.receipt_id)
        return signed, row

    def request(self, data: Any) -> dict[str, Any]:
        """A refund request ``{"receipt": <signed receipt>, "reason": "..."}``: the answer (see module doc)."""
        r = FieldReader(data, "body")
        raw = r.raw("receipt")
        reason = r.text("reason", MAX_REASON, min_len=0)
        r.done()
        signed, _ = self._own_receipt(raw, "body.receipt")
        receipt = signed.body
        existing = self._row_by_receipt(receipt.receipt_id)
        if existing is not None:
            return self._answer(existing)
        now = self._now()
        refund_id = "ref_" + secrets.token_hex(12)
        if now > receipt.issued_at + self.window_s:
            status, why = "refused", f"the refund window of {self.window_s // 86400 or 1} day(s) has closed"
        elif not self._opened(receipt.receipt_id):
            status, why = "granted", "never opened: refunded automatically"
        else:
            status, why = "pending", ""
        decision = self._sign(refund_id, signed, status, why, now) if status != "pending" else None

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO refunds (refund_id, receipt_id, receipt_digest, receipt, amount, currency, reason,"
                " status, decision, requested_at, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (receipt_id) DO NOTHING",
                (refund_id, receipt.receipt_id, signed.digest, json.dumps(signed.to_wire()), receipt.amount.amount,
                 receipt.amount.currency, reason, status, json.dumps(decision) if decision else None, now,
                 now if decision else None),
            )  # fmt: skip

        self._store.write(write)
        row = self._row_by_receipt(receipt.receipt_id)
        assert row is not None
        if row["status"] == "granted":
            self._tokens.revoke(receipt.receipt_id)
            self.settle(row["refund_id"])
            row = self._row_by_receipt(receipt.receipt_id)
            assert row is not None
        return self._answer(row)

    def status(self, refund_id: str) -> dict[str, Any]:
        row = self._store.one("SELECT * FROM refunds WHERE refund_id = ?", (refund_id,))
        if row is None:
            raise NotFound("no refund with that id", refund_id=refund_id)
        return self._answer(row)

    def redeliver(self, data: Any) -> dict[str, Any]:
        """A new access token for a genuine receipt that was not refunded (``{"receipt": ...}``)."""
        r = FieldReader(data, "body")
        raw = r.raw("receipt")
        r.done()
        signed, _ = self._own_receipt(raw, "body.receipt")
        receipt = signed.body
        refunded = self._row_by_receipt(receipt.receipt_id)
        if refunded is not None and refunded["status"] == "granted":
            raise Forbidden("this purchase was refunded", receipt_id=receipt.receipt_id)
        now = self._now()
        if receipt.valid_until is not None and now >= receipt.valid_until:
            raise Forbidden("this pass has ended", valid_until=receipt.valid_until)
        token = self._tokens.issue(receipt.item_id, receipt.receipt_id, receipt.valid_until is not None,
                                   receipt.valid_until)  # fmt: skip
        return {"access_token": token, "item_id": receipt.item_id, "valid_until": receipt.valid_until}

    # -- the publisher's side -----------------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        rows = self._store.query("SELECT * FROM refunds ORDER BY requested_at DESC LIMIT 50")
        out = []
        for r in rows:
            d = dict(r)
            d["asked"] = time.strftime("%d %b %H:%M UTC", time.gmtime(int(r["requested_at"])))
            out.append(d)
        return out

    def decide(self, refund_id: str, grant: bool, reason: str) -> dict[str, Any]:
        """The publisher's decision on a pending request (a decided one stays as it was)."""
        if len(reason) > MAX_REASON:
            raise MalformedMessage(f"the reason may be at most {MAX_REASON} characters", field="reason")
        row = self._store.one("SELECT * FROM refunds WHERE refund_id = ?", (refund_id,))
        if row is None:
            raise NotFound("no refund with that id", refund_id=refund_id)
        if row["status"] != "pending":
            return self._answer(row)
        signed = Signed.from_wire(json.loads(row["receipt"]), Receipt, "receipt")
        now = self._now()
        status = "granted" if grant else "refused"
        decision = self._sign(refund_id, signed, status, reason or ("granted by the shop" if grant else
                                                                    "refused by the shop"), now)  # fmt: skip

        def write(c: sqlite3.Connection) -> None:
            c.execute("UPDATE refunds SET status = ?, decision = ?, decided_at = ? WHERE refund_id = ? AND"
                      " status = 'pending'", (status, json.dumps(decision), now, refund_id))  # fmt: skip

        self._store.write(write)
        if grant:
            self._tokens.revoke(signed.body.receipt_id)
            self.settle(refund_id)
        return self.status(refund_id)

    # -- paying through the broker --------------------------------------------------------------------------------
    def settle(self, refund_id: str | None = None) -> int:
        """Send granted, uncredited refunds to the broker; returns how many were credited. A refusal for lack of
        payable, or a broker that is down, leaves them for the next round (after the next redemption)."""
        done = 0
        with self._settle_lock:
            sql = "SELECT refund_id, decision FROM refunds WHERE status = 'granted' AND credited_at IS NULL"
            params: tuple[str, ...] = ()
            if refund_id is not None:
                sql += " AND refund_id = ?"
                params = (refund_id,)
            for row in self._store.query(sql, params):
                try:
                    answer = self._broker.post("/v1/refunds", json.loads(row["decision"]))
                except NetPayError as exc:
                    log.info("refund %s not credited yet: %s", row["refund_id"], exc.message)
                    continue
                at = int(answer.get("credited_at", self._now())) if isinstance(answer, dict) else self._now()

                def write(c: sqlite3.Connection, rid: str = row["refund_id"], at: int = at) -> None:
                    c.execute("UPDATE refunds SET credited_at = ? WHERE refund_id = ?", (at, rid))

                self._store.write(write)
                done += 1
        return done

    # -- helpers ------------------------------------------------------------------------------------------------
    def _opened(self, receipt_id: str) -> bool:
        # the in-memory note first: an item opened a moment ago may not be on disk yet
        if receipt_id in self._seen_open:
            return True
        return self._store.one("SELECT 1 FROM opened WHERE receipt_id = ?", (receipt_id,)) is not None

    def mark_opened(self, receipt_id: str) -> None:
        """Note (without waiting for the disk) that a receipt's token opened its item: no automatic refund then."""
        if receipt_id in self._seen_open:
            return
        self._seen_open.add(receipt_id)

        def write(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO opened (receipt_id, at) VALUES (?, ?) ON CONFLICT (receipt_id) DO NOTHING",
                      (receipt_id, self._now()))  # fmt: skip

        self._store.writer.submit(write, lambda job: None)

    def _row_by_receipt(self, receipt_id: str) -> sqlite3.Row | None:
        return self._store.one("SELECT * FROM refunds WHERE receipt_id = ?", (receipt_id,))

    def _sign(self, refund_id: str, signed: Signed[Receipt], status: str, why: str, now: int) -> dict[str, Any]:
        receipt = signed.body
        amount = receipt.amount if status == "granted" else Money.zero(receipt.amount.currency)
        decision = RefundDecision(refund_id, self.vendor_id, receipt.receipt_id, bytes.fromhex(signed.digest),
                                  status, amount, receipt.segments, why, now)  # type: ignore[arg-type]  # fmt: skip
        return Signed.sign(decision, self._key).to_wire()

    @staticmethod
    def _answer(row: sqlite3.Row) -> dict[str, Any]:
        credit = None
        if row["status"] == "granted":
            credit = "credited" if row["credited_at"] is not None else "pending"
        return {
            "refund_id": row["refund_id"],
            "receipt_id": row["receipt_id"],
            "status": row["status"],
            "decision": json.loads(row["decision"]) if row["decision"] else None,
            "credit": credit,
            "credited_at": row["credited_at"],
        }

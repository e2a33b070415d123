"""Refund requests and re-delivery from the wallet's receipts (Kravitz, seed 003).

:meth:`RefundRequests.ask` sends a settled purchase's receipt with the customer's reason to the shop
(``POST {api}/v1/refunds``) and keeps the answer in the vault: the shop's decision is checked (signed by the key the
purchase was made with, bound to this receipt's digest, for no more than was paid) before it is believed.
:meth:`RefundRequests.refresh` asks again about requests the publisher has not decided yet and granted refunds the
broker has not credited yet. The credit itself reaches the broker account (its statement shows ``shop_refund``).
:meth:`RefundRequests.redeliver` gets a new access token for a receipt (a new device, a lost token).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from netpay.errors import MalformedMessage, NetPayError, NotFound, UntrustedSigner
from netpay.keys import VerifyKey
from netpay.messages import MAX_REASON, Receipt, RefundDecision
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.clients.vendor import VendorClient
from wallet_app.services.types import ActivityEntry
from wallet_app.vault.store import Vault

__all__ = ["RefundRequests"]


class RefundRequests:
    """The customer's side of refunds and re-delivery."""

    def __init__(self, vault: Vault, vendor_client: Callable[[str], VendorClient], clock: Callable[[], float],
                 lock: threading.RLock) -> None:  # fmt: skip
        self.vault = vault
        self.vendor_client = vendor_client
        self.clock = clock
        self.lock = lock

    def _purchase(self, payment_id: str) -> Any:
        row = self.vault.one("SELECT * FROM spends WHERE payment_id = ? AND status = 'settled'", (payment_id,))
        if row is None or not row["receipt_json"]:
            raise NotFound("no settled purchase with that id", payment_id=payment_id)
        return row

    def ask(self, payment_id: str, reason: str) -> dict[str, Any]:
        """Ask the shop to refund a settled purchase; returns the stored request (``status``, ``credit``...)."""
        if len(reason) > MAX_REASON:
            raise MalformedMessage(f"the reason may be at most {MAX_REASON} characters", field="reason")
        with self.lock:
            row = self._purchase(payment_id)
        receipt = json.loads(row["receipt_json"])
        client = self.vendor_client(json.loads(row["api_url_json"]))
        answer = client.request("POST", "/v1/refunds", {"receipt": receipt, "reason": reason})
        return self._store(row, answer, reason)

    def refresh(self) -> int:
        """Ask again about undecided or uncredited requests; returns how many changed."""
        with self.lock:
            rows = self.vault.query(
                "SELECT r.*, s.api_url_json, s.vendor_key, s.receipt_json, s.amount AS paid, s.currency AS cur "
                "FROM refund_requests r JOIN spends s ON s.payment_id = r.payment_id "
                "WHERE r.status = 'pending' OR (r.status = 'granted' AND r.credit != 'credited')"
            )
        changed = 0
        for row in rows:
            try:
                client = self.vendor_client(json.loads(row["api_url_json"]))
                answer = client.request("GET", f"/v1/refunds/{row['refund_id']}")
                before = (row["status"], row["credit"])
                stored = self._store(row, answer, row["reason"])
            except NetPayError:  # that shop is down or answered nonsense: the others are still asked
                continue
            changed += (stored["status"], stored["credit"]) != before
        return changed

    def redeliver(self, payment_id: str) -> str:
        """A new access token for a settled purchase, kept as the purchase's token; returns it."""
        with self.lock:
            row = self._purchase(payment_id)
        client = self.vendor_client(json.loads(row["api_url_json"]))
        answer = client.request("POST", "/v1/redeliveries", {"receipt": json.loads(row["receipt_json"])})
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not 0 < len(token) <= 512:
            raise MalformedMessage("the shop answered without an access token", field="access_token")
        with self.lock, self.vault.tx() as c:
            c.execute("UPDATE spends SET access_token = ?, updated_at = ? WHERE payment_id = ?",
                      (token, int(self.clock()), payment_id))  # fmt: skip
        return token

    def _store(self, row: Any, answer: Any, reason: str) -> dict[str, Any]:
        """Check the shop's answer against the purchase and keep it."""
        if not isinstance(answer, dict) or answer.get("status") not in ("pending", "granted", "refused"):
            raise MalformedMessage("the shop's refund answer is not one", field="status")
        receipt = Signed.from_wire(json.loads(row["receipt_json"]), Receipt, "receipt", verify=False)
        status = str(answer["status"])
        decision_json = None
        if status != "pending":
            decision = Signed.from_wire(answer.get("decision"), RefundDecision, "decision")
            decision.require_signer(VerifyKey.from_hex(row["vendor_key"]))
            body = decision.body
            if body.receipt_digest.hex() != receipt.digest or body.receipt_id != receipt.body.receipt_id:
                raise UntrustedSigner("the shop's decision is about another receipt", field="decision")
            if body.decision != status or not body.amount <= receipt.body.amount:
                raise MalformedMessage("the shop's decision does not match its answer", field="decision")
            decision_json = json.dumps(decision.to_wire())
        credit = answer.get("credit") if status == "granted" else None
        credit = credit if credit in ("credited", "pending") else None
        now = int(self.clock())
        amount = receipt.body.amount
        with self.lock, self.vault.tx() as c:
            c.execute(
                "INSERT INTO refund_requests (payment_id, refund_id, vendor_id, vendor_name, title, amount, currency,"
                " reason, status, credit, decision_json, requested_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status, credit = excluded.credit,"
                " decision_json = COALESCE(excluded.decision_json, refund_requests.decision_json),"
                " updated_at = excluded.updated_at",
                (row["payment_id"], str(answer.get("refund_id", ""))[:64], row["vendor_id"], row["vendor_name"],
                 row["title"], amount.amount, amount.currency, reason, status, credit, decision_json, now, now),
            )  # fmt: skip
        return {"payment_id": row["payment_id"], "status": status, "credit": credit,
                "reason": _decision_reason(decision_json)}  # fmt: skip

    def activity(self) -> list[ActivityEntry]:
        """One Activity line per request: asked (pending), refused, granted (credit pending) or credited."""
        out = []
        for r in self.vault.query("SELECT * FROM refund_requests ORDER BY updated_at DESC LIMIT 200"):
            status = r["status"] if r["status"] != "granted" else f"refund_{r['credit'] or 'pending'}"
            out.append(ActivityEntry(
                at=r["updated_at"], kind="refund_request", status=status,
                amount=Money(r["amount"] if r["status"] == "granted" else 0, r["currency"]),
                vendor_id=r["vendor_id"], vendor_name=r["vendor_name"], title=r["title"], via=None,
                ref=r["payment_id"],
            ))  # fmt: skip
        return out

    def request_for(self, payment_id: str) -> dict[str, Any] | None:
        r = self.vault.one("SELECT * FROM refund_requests WHERE payment_id = ?", (payment_id,))
        if r is None:
            return None
        return {"payment_id": payment_id, "status": r["status"], "credit": r["credit"], "reason": r["reason"],
                "answer": _decision_reason(r["decision_json"]), "requested_at": r["requested_at"]}  # fmt: skip


def _decision_reason(decision_json: str | None) -> str | None:
    if not decision_json:
        return None
    return str(json.loads(decision_json)["body"]["reason"])

"""Refunds a shop grants (Kravitz, seed 003): paid from the shop's payable to the account that bought the coins.

``POST /v1/refunds`` takes a shop-signed ``refund_decision`` (``granted``). The shop names only the chains of the
receipt (as its coins did); the broker knows which account bought each chain and credits that account: the shop
never learns who the customer is, and a refund can only ever reach the account that paid. Checks: the signer is the
registered, unrevoked shop; the chains exist and the shop held custody of each (it was paid with them); the amount
is at most the segments' face value; the shop's payable covers it (else ``insufficient_funds``: the shop retries
after its next redemption). One ledger transaction: vendor_payables (debit) → customer_funds (credit), per
account. Idempotent per ``(vendor_id, refund_id)``; one refund per receipt.
"""

from __future__ import annotations

import json
from typing import Any

from broker_stub import ledger
from broker_stub.core import BrokerCore, request_hash
from broker_stub.ledger import Leg
from broker_stub.vendors import VendorService
from netpay.errors import Conflict, Forbidden, InsufficientFunds, MalformedMessage, NotFound, ReplayedRequest, Revoked
from netpay.keys import VerifyKey
from netpay.messages import RefundDecision
from netpay.signed import Signed

__all__ = ["RefundService"]


class RefundService:
    """``POST /v1/refunds``."""

    def __init__(self, core: BrokerCore, vendors: VendorService) -> None:
        self.core = core
        self.vendors = vendors

    def refund(self, data: Any) -> tuple[int, dict[str, Any]]:
        signed = Signed.from_wire(data, RefundDecision, "body")
        body = signed.body
        vendor = self.vendors.vendor_row(body.vendor_id)
        signed.require_signer(VerifyKey.from_hex(vendor["public_key"]))
        if body.decision != "granted":
            raise MalformedMessage("only a granted refund is paid; a refusal stays between shop and customer",
                                   field="body.body.decision")  # fmt: skip
        self.core.require_currency(body.amount, "body.body.amount")
        req = request_hash(data)
        now = self.core.now()
        with self.core.db.tx() as c:
            row = c.execute(
                "SELECT refund_id, request_hash, response FROM refunds WHERE vendor_id = ? AND "
                "(refund_id = ? OR receipt_id = ?)",
                (body.vendor_id, body.refund_id, body.receipt_id),
            ).fetchone()
            if row is not None:
                if row[0] != body.refund_id:
                    raise Conflict("this receipt was refunded already", receipt_id=body.receipt_id)
                if row[1] != req:
                    raise ReplayedRequest("this refund_id was used for another refund", refund_id=body.refund_id)
                return 200, json.loads(row[2])
            if vendor["revoked"]:
                raise Revoked("this vendor is revoked", vendor_id=body.vendor_id)
            credits: dict[str, int] = {}
            left = body.amount.amount
            for seg in body.segments:
                chain = c.execute(
                    "SELECT account_id, coin_value FROM chains WHERE chain_id = ?", (seg.chain_id.hex(),)
                ).fetchone()
                if chain is None:
                    raise NotFound("no such chain", chain_id=seg.chain_id.hex())
                held = c.execute(
                    "SELECT 1 FROM custody WHERE chain_id = ? AND vendor_id = ? LIMIT 1",
                    (seg.chain_id.hex(), body.vendor_id),
                ).fetchone()
                if held is None:
                    raise Forbidden("this shop never held that chain", chain_id=seg.chain_id.hex())
                share = min(left, (seg.to_index - seg.from_index) * int(chain["coin_value"]))
                if share:
                    credits[chain["account_id"]] = credits.get(chain["account_id"], 0) + share
                left -= share
            if left:
                raise MalformedMessage("the refund is more than the coins of the receipt", field="body.body.amount")
            payable = -ledger.balance_of(c, "vendor_payables", body.vendor_id)
            if payable < body.amount.amount:
                raise InsufficientFunds(
                    "the shop's payable does not cover the refund yet; retry after the next redemption",
                    payable=self.core.money(payable).to_json(),
                    requested=body.amount.to_json(),
                )
            legs = [Leg("vendor_payables", body.amount.amount, body.vendor_id)]
            legs += [Leg("customer_funds", -amount, account) for account, amount in sorted(credits.items())]
            ledger.post(c, now, "shop_refund", f"{body.vendor_id}/{body.refund_id}",
                        f"Refund from {vendor['display_name']} ({body.reason or 'no reason given'})"[:200],
                        legs)  # fmt: skip
            answer = {"refund_id": body.refund_id, "status": "credited", "amount": body.amount.to_json(),
                      "credited_at": now}  # fmt: skip
            c.execute(
                "INSERT INTO refunds (vendor_id, refund_id, receipt_id, amount, request_hash, response, at) "
                "VALUES (?,?,?,?,?,?,?)",
                (body.vendor_id, body.refund_id, body.receipt_id, body.amount.amount, req, json.dumps(answer), now),
            )
        return 201, answer

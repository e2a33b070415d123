"""Vendor balances and payouts to a (test) bank account."""

from __future__ import annotations

import secrets
from typing import Any

from broker_stub import ledger
from broker_stub.core import BrokerCore
from broker_stub.ledger import Leg
from broker_stub.vendors import VendorService, parse_signed
from netpay.errors import Conflict, Forbidden, InsufficientFunds, NotFound
from netpay.messages import VendorRequest
from netpay_web.db import lock_keys

__all__ = ["PayoutService"]


class PayoutService:
    """``GET /v1/vendors/{vendor_id}/account`` and ``POST /v1/vendors/{vendor_id}/payouts``."""

    def __init__(self, core: BrokerCore, vendors: VendorService) -> None:
        self.core = core
        self.vendors = vendors

    def authorize(self, vendor_id: str, data: Any, action: str) -> VendorRequest:
        signed = parse_signed(data, VendorRequest)
        req: VendorRequest = signed.body
        if req.vendor_id != vendor_id or req.action != action:
            raise Forbidden(f"the signed request is not a {action} request for this vendor")
        self.vendors.check_signed(signed, vendor_id, req.requested_at)
        return req

    def account(self, vendor_id: str) -> dict[str, Any]:
        if self.core.db.one("SELECT 1 FROM vendors WHERE vendor_id = ?", (vendor_id,)) is None:
            raise NotFound("no such vendor", vendor_id=vendor_id)
        with self.core.db.reader() as conn:
            payable = -ledger.balance_of(conn, "vendor_payables", vendor_id)
            paid = conn.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE vendor_id = ?", (vendor_id,)
            ).fetchone()[0]
            coins, redeemed = 0, 0
            for table in ("redeemed", "custody_overlaps"):  # coins of custody overlaps are paid too
                row = conn.execute(
                    f"SELECT COALESCE(SUM(to_index - from_index), 0), COALESCE(SUM(amount), 0) FROM {table} "
                    "WHERE vendor_id = ?",
                    (vendor_id,),
                ).fetchone()
                coins, redeemed = coins + int(row[0]), redeemed + int(row[1])
        return {
            "vendor_id": vendor_id,
            "payable": self.core.money(payable).to_json(),
            "paid_out": self.core.money(int(paid)).to_json(),
            "redeemed": self.core.money(int(redeemed)).to_json(),
            "redeemed_coins": int(coins),
        }

    def payout(self, vendor_id: str, data: Any) -> tuple[int, dict[str, Any]]:
        req = self.authorize(vendor_id, data, "payout")
        if req.amount is not None:
            self.core.require_currency(req.amount, "body.body.amount")
        with self.core.db.tx() as c:
            lock_keys(c, f"vendor:{vendor_id}")  # the payable balance is read, then paid out
            self.vendors.use_nonce(c, vendor_id, req.nonce, req.requested_at)
            payable = -ledger.balance_of(c, "vendor_payables", vendor_id)
            amount = req.amount.amount if req.amount is not None else payable
            if payable <= 0:
                raise Conflict("nothing to pay out", payable=self.core.money(payable).to_json())
            if amount > payable:
                raise InsufficientFunds(
                    "the payout is larger than the payable balance", payable=self.core.money(payable).to_json()
                )
            now = self.core.now()
            payout_id = "po_" + secrets.token_hex(8)
            bank_ref = "TESTBANK-" + secrets.token_hex(6).upper()
            c.execute(
                "INSERT INTO payouts (payout_id, vendor_id, amount, bank_ref, at) VALUES (?,?,?,?,?)",
                (payout_id, vendor_id, amount, bank_ref, now),
            )
            ledger.post(
                c,
                now,
                "payout",
                payout_id,
                f"Payout to {vendor_id} ({bank_ref}, test bank)",
                [Leg("vendor_payables", amount, vendor_id), Leg("payouts", -amount)],
            )
        return 201, {
            "payout_id": payout_id,
            "amount": self.core.money(amount).to_json(),
            "bank_ref": bank_ref,
            "payable": self.core.money(payable - amount).to_json(),
        }

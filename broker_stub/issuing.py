"""Selling coin chains: charge the account (a card pays what it lacks), sign the certificate, list the chains."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from broker_stub import ledger
from broker_stub.accounts import AccountService
from broker_stub.core import BrokerCore, load_idempotent, request_hash, save_idempotent
from broker_stub.ledger import Leg
from broker_stub.test_card_processor import Card
from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader
from netpay.errors import Conflict, InsufficientFunds, MalformedMessage
from netpay.messages import CoinCertificate
from netpay.money import MAX_AMOUNT, Money
from netpay.signed import Signed
from netpay_web.db import lock_keys

__all__ = ["IssuingService"]


class IssuingService:
    """``POST /v1/chains`` and ``GET /v1/account/chains``."""

    def __init__(self, core: BrokerCore, accounts: AccountService) -> None:
        self.core = core
        self.accounts = accounts
        self.may_buy: Callable[[str], None] = lambda account_id: None

    def purchase(self, account_id: str, data: Any, idem_key: str) -> tuple[int, dict[str, Any]]:
        s = self.core.settings
        r = FieldReader(data, "body")
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        touchstone = r.hex("touchstone", PAYWORD_BYTES)
        length = r.integer("length", 1, MAX_CHAIN_LENGTH)
        coin_value = Money.from_json(r.raw("coin_value"), "body.coin_value")
        card_raw = r.raw("card", optional=True)
        r.done()
        card = Card.from_json(card_raw, "body.card") if card_raw is not None else None
        self.core.require_currency(coin_value, "body.coin_value")
        if coin_value.amount not in s.coin_values:
            raise MalformedMessage(
                f"body.coin_value must be one of {list(s.coin_values)} minor units", field="body.coin_value"
            )
        if not s.chain_length_min <= length <= s.chain_length_max:
            raise MalformedMessage(
                f"body.length must be from {s.chain_length_min} to {s.chain_length_max}", field="body.length"
            )
        face = coin_value * length
        if face.amount > min(MAX_AMOUNT, s.max_charge):
            raise MalformedMessage(
                f"the chain's face value is over the purchase limit of {s.max_charge} minor units",
                field="body.length",
                max=min(MAX_AMOUNT, s.max_charge),
            )
        req = request_hash({**data, "card": card.number if card else None})
        cid = chain_id.hex()
        self.may_buy(account_id)  # the operator's P2P supply policy (broker_stub/cis.py); off by default
        with self.core.db.tx() as c:
            # the balance is read, then debited; the idempotency key answers once
            lock_keys(c, f"account:{account_id}", f"idem:{account_id}:chains:{idem_key}", f"chain:{cid}")
            stored = load_idempotent(c, account_id, "chains", idem_key, req)
            if stored is not None:
                return stored
            if c.execute("SELECT 1 FROM chains WHERE chain_id = ?", (cid,)).fetchone():
                raise Conflict("a chain with this chain_id already exists", field="body.chain_id")
            now = self.core.now()
            balance = -ledger.balance_of(c, "customer_funds", account_id)
            from_card = max(0, face.amount - balance) if card is not None else 0
            if card is not None and from_card:  # the card pays only what the account lacks
                result = self.accounts.charge_card(card, self.core.money(from_card))
                self.accounts.record_topup(
                    c, account_id, "top_" + secrets.token_hex(8), self.core.money(from_card), card, result.charge_id
                )
                balance += from_card
            if balance < face.amount:
                raise InsufficientFunds(
                    "the account balance is too low for this chain",
                    balance=self.core.money(balance).to_json(),
                    needed=face.to_json(),
                )
            cert = Signed.sign(
                CoinCertificate(
                    chain_id=chain_id,
                    broker_id=self.core.broker_id,
                    touchstone=touchstone,
                    length=length,
                    coin_value=coin_value,
                    issued_at=now,
                    expires_at=now + s.chain_validity_s,
                ),
                self.core.key,
            )
            wire = cert.to_wire()
            c.execute(
                "INSERT INTO chains (chain_id, account_id, touchstone, length, coin_value, issued_at, expires_at, "
                "certificate, reported_payword) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    cid,
                    account_id,
                    touchstone,
                    length,
                    coin_value.amount,
                    now,
                    now + s.chain_validity_s,
                    json.dumps(wire),
                    touchstone,
                ),
            )
            c.execute("INSERT INTO chain_points (chain_id, idx, payword) VALUES (?, 0, ?)", (cid, touchstone))
            ledger.post(
                c,
                now,
                "purchase",
                cid,
                f"{length} coins of {coin_value} (chain {cid[:8]})",
                [Leg("customer_funds", face.amount, account_id), Leg("coins_outstanding", -face.amount)],
            )
            body = {
                "certificate": wire,
                "balance": self.core.money(balance - face.amount).to_json(),
                "paid": {
                    "account": self.core.money(face.amount - from_card).to_json(),
                    "card": self.core.money(from_card).to_json(),
                },
            }
            save_idempotent(c, account_id, "chains", idem_key, req, 201, body)
        return 201, body

    def list_chains(self, account_id: str) -> dict[str, Any]:
        rows = self.core.db.query(
            "SELECT chain_id, certificate, status, custodian, reported_index, final_index, refund, revoked "
            "FROM chains WHERE account_id = ? AND chain_id NOT IN (SELECT chain_id FROM hosted_chains) "
            "ORDER BY issued_at, chain_id",
            (account_id,),
        )
        return {
            "chains": [
                {
                    "chain_id": r["chain_id"],
                    "certificate": json.loads(r["certificate"]),
                    "status": r["status"],
                    "custodian": r["custodian"],
                    "reported_index": r["reported_index"],
                    "final_index": r["final_index"],
                    "refund": self.core.money(r["refund"]).to_json() if r["refund"] is not None else None,
                    "revoked": bool(r["revoked"]),
                }
                for r in rows
            ]
        }

"""Customer accounts: registration, password login (argon2id), expiring sessions, balance, statement, top-ups and
cash-outs (the balance paid back to a card that paid in)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError

from broker_stub import ledger
from broker_stub.core import BrokerCore, load_idempotent, request_hash, save_idempotent
from broker_stub.ledger import Leg
from broker_stub.test_card_processor import Card, charge, credit
from netpay.encoding import FieldReader
from netpay.errors import (
    AuthenticationRequired,
    Conflict,
    Forbidden,
    InsufficientFunds,
    InvalidCredentials,
    MalformedMessage,
    SessionExpired,
)
from netpay.money import MAX_AMOUNT, Money
from netpay_web.db import IntegrityError, lock_keys

__all__ = ["AccountService"]

_USERNAME = re.compile(r"\A[A-Za-z0-9_.@+-]{3,64}\Z")
_DUMMY_HASH: dict[int, str] = {}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _credentials(data: Any) -> tuple[str, str]:
    r = FieldReader(data, "body")
    username = r.text("username", 64, min_len=3)
    password = r.text("password", 256, min_len=1)
    r.done()
    if not _USERNAME.match(username):
        raise MalformedMessage("body.username may hold letters, digits and _.@+- (3 to 64)", field="body.username")
    return username, password


class AccountService:
    """Customer-facing account operations."""

    def __init__(self, core: BrokerCore) -> None:
        self.core = core

    def register(self, data: Any) -> dict[str, Any]:
        username, password = _credentials(data)
        if len(password) < 8:
            raise MalformedMessage("body.password must be at least 8 characters", field="body.password")
        if self.core.db.one("SELECT 1 FROM accounts WHERE username = ?", (username,)):
            raise Conflict("this user name is taken", field="body.username")
        pw_hash = self.core.passwords.hash(password)  # outside the lock: it is slow on purpose
        account_id = "acc_" + secrets.token_hex(8)
        try:
            with self.core.db.tx() as c:
                if c.execute("SELECT 1 FROM accounts WHERE username = ?", (username,)).fetchone():
                    raise Conflict("this user name is taken", field="body.username")
                c.execute(
                    "INSERT INTO accounts (account_id, username, password_hash, created_at) VALUES (?,?,?,?)",
                    (account_id, username, pw_hash, self.core.now()),
                )
        except IntegrityError:  # the same name registered by another process a moment before
            raise Conflict("this user name is taken", field="body.username") from None
        return {"account_id": account_id, "username": username}

    def login(self, data: Any) -> dict[str, Any]:
        username, password = _credentials(data)
        row = self.core.db.one("SELECT account_id, password_hash FROM accounts WHERE username = ?", (username,))
        if row is None:
            self._burn(password)
            raise InvalidCredentials()
        try:
            self.core.passwords.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            raise InvalidCredentials() from None
        token = secrets.token_urlsafe(32)
        now = self.core.now()
        expires = now + self.core.settings.session_ttl_s
        with self.core.db.tx() as c:
            c.execute("DELETE FROM sessions WHERE expires_at < ?", (now - 86400,))
            c.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?,?,?,?)",
                (_token_hash(token), row["account_id"], now, expires),
            )
        return {"token": token, "expires_at": expires, "account_id": row["account_id"]}

    def _burn(self, password: str) -> None:
        """Spend the same time on an unknown user as on a wrong password (no user enumeration by timing)."""
        key = id(self.core.passwords)
        if key not in _DUMMY_HASH:
            _DUMMY_HASH[key] = self.core.passwords.hash("not-a-real-password")
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.core.passwords.verify(_DUMMY_HASH[key], password)

    def authenticate(self, authorization: str | None) -> str:
        """The account id for an ``Authorization: Bearer <token>`` header."""
        if not authorization or not authorization.startswith("Bearer ") or len(authorization) > 200:
            raise AuthenticationRequired("send Authorization: Bearer <session token>")
        token = authorization[7:].strip()
        row = self.core.db.one(
            "SELECT account_id, expires_at FROM sessions WHERE token_hash = ?", (_token_hash(token),)
        )
        if row is None:
            raise AuthenticationRequired("unknown session token")
        if row["expires_at"] <= self.core.now():
            raise SessionExpired()
        return str(row["account_id"])

    def balance(self, account_id: str) -> Money:
        with self.core.db.reader() as conn:
            return self.core.money(-ledger.balance_of(conn, "customer_funds", account_id))

    def account(self, account_id: str) -> dict[str, Any]:
        row = self.core.db.one("SELECT username FROM accounts WHERE account_id = ?", (account_id,))
        assert row is not None
        return {"account_id": account_id, "username": row[0], "balance": self.balance(account_id).to_json()}

    def statement(self, account_id: str) -> dict[str, Any]:
        rows = self.core.db.query(
            "SELECT t.at, t.kind, e.amount, t.description, t.ref FROM ledger_entries e "
            "JOIN ledger_txns t ON t.txn_id = e.txn_id WHERE e.account = 'customer_funds' AND e.sub = ? "
            "ORDER BY t.txn_id",
            (account_id,),
        )
        entries = [
            {
                "at": r[0],
                "kind": r[1],
                "amount": self.core.money(-int(r[2])).to_json(),
                "description": r[3],
                "ref": r[4],
                **({"evidence": self._overlap_evidence(r[4])} if r[1] == "custody_overlap" else {}),
            }
            for r in rows
        ]
        return {"entries": entries, "balance": self.balance(account_id).to_json()}

    def _overlap_evidence(self, ref: str) -> Any:
        """The evidence of a custody-overlap charge (ref ``chain/vendor/batch/from_index``): both claims, the
        custody windows, the releases."""
        chain_id, vendor_id, batch_id, from_index = ref.rsplit("/", 3)
        row = self.core.db.one(
            "SELECT evidence FROM custody_overlaps WHERE chain_id = ? AND vendor_id = ? AND batch_id = ? "
            "AND from_index = ?",
            (chain_id, vendor_id, batch_id, int(from_index)),
        )
        return json.loads(row[0]) if row is not None else None

    def parse_amount(self, raw: Any, field: str) -> Money:
        amount = Money.from_json(raw, field)
        self.core.require_currency(amount, field)
        if not 0 < amount.amount <= min(self.core.settings.max_charge, MAX_AMOUNT):
            raise MalformedMessage(
                f"{field} must be from 1 to {self.core.settings.max_charge} minor units",
                field=field,
                max=min(self.core.settings.max_charge, MAX_AMOUNT),
            )
        return amount

    def charge_card(self, card: Card, amount: Money) -> Any:
        t = time.gmtime(self.core.now())
        return charge(card, amount, t.tm_year, t.tm_mon)

    def card_hash(self, card: Card) -> str:
        """A keyed hash of the card number (the key derives from the broker's secret key): recognises a card
        without storing its number."""
        key = hashlib.sha256(b"netpay-card-hash\0" + self.core.key.seed()).digest()
        return hmac.new(key, card.number.encode(), hashlib.sha256).hexdigest()

    def topup(self, account_id: str, data: Any, idem_key: str) -> tuple[int, dict[str, Any]]:
        r = FieldReader(data, "body")
        amount = self.parse_amount(r.raw("amount"), "body.amount")
        card = Card.from_json(r.raw("card"), "body.card")
        r.done()
        req = request_hash({"amount": amount.to_json(), "card": card.number + str(card.exp_year)})
        with self.core.db.tx() as c:
            lock_keys(c, f"account:{account_id}", f"idem:{account_id}:topup:{idem_key}")
            stored = load_idempotent(c, account_id, "topup", idem_key, req)
            if stored is not None:
                return stored
            result = self.charge_card(card, amount)
            topup_id = "top_" + secrets.token_hex(8)
            self.record_topup(c, account_id, topup_id, amount, card, result.charge_id)
            bal = -ledger.balance_of(c, "customer_funds", account_id)
            body = {"topup_id": topup_id, "balance": self.core.money(bal).to_json()}
            save_idempotent(c, account_id, "topup", idem_key, req, 201, body)
        return 201, body

    def record_topup(self, c: Any, account_id: str, topup_id: str, amount: Money, card: Card, charge_id: str) -> None:
        now = self.core.now()
        last4 = card.last4
        c.execute(
            "INSERT INTO topups (topup_id, account_id, amount, card_last4, charge_id, created_at, card_hash) "
            "VALUES (?,?,?,?,?,?,?)",
            (topup_id, account_id, amount.amount, last4, charge_id, now, self.card_hash(card)),
        )
        ledger.post(
            c,
            now,
            "topup",
            topup_id,
            f"Card payment (test card ending {last4})",
            [Leg("card_clearing", amount.amount), Leg("customer_funds", -amount.amount, account_id)],
        )

    def cashout(self, account_id: str, data: Any, idem_key: str) -> tuple[int, dict[str, Any]]:
        """Pay ``amount`` of the account balance back to ``card`` through the test card processor.

        Only a card that paid into this account receives money (a stolen session cannot send the balance to the
        thief's card); the amount may not exceed the balance. One ledger transaction: customer_funds → card_clearing.
        """
        r = FieldReader(data, "body")
        amount = self.parse_amount(r.raw("amount"), "body.amount")
        card = Card.from_json(r.raw("card"), "body.card")
        r.done()
        card_hash = self.card_hash(card)
        req = request_hash({"amount": amount.to_json(), "card": card_hash, "exp": [card.exp_year, card.exp_month]})
        with self.core.db.tx() as c:
            # the balance is read, then debited; the idempotency key answers once (across processes)
            lock_keys(c, f"account:{account_id}", f"idem:{account_id}:cashout:{idem_key}")
            stored = load_idempotent(c, account_id, "cashout", idem_key, req)
            if stored is not None:
                return stored
            if not c.execute(
                "SELECT 1 FROM topups WHERE account_id = ? AND card_hash = ?", (account_id, card_hash)
            ).fetchone():
                raise Forbidden("money is paid back only to a card that paid into this account", field="body.card")
            balance = -ledger.balance_of(c, "customer_funds", account_id)
            if amount.amount > balance:
                raise InsufficientFunds(
                    "the cash-out is more than the account balance",
                    balance=self.core.money(balance).to_json(),
                    requested=amount.to_json(),
                )
            t = time.gmtime(self.core.now())
            result = credit(card, amount, t.tm_year, t.tm_mon)
            now = self.core.now()
            cashout_id = "cash_" + secrets.token_hex(8)
            c.execute(
                "INSERT INTO cashouts (cashout_id, account_id, amount, card_last4, credit_id, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (cashout_id, account_id, amount.amount, card.last4, result.charge_id, now),
            )
            ledger.post(
                c,
                now,
                "cashout",
                cashout_id,
                f"Paid back to test card ending {card.last4}",
                [Leg("customer_funds", amount.amount, account_id), Leg("card_clearing", -amount.amount)],
            )
            body = {
                "cashout_id": cashout_id,
                "amount": amount.to_json(),
                "card_last4": card.last4,
                "balance": self.core.money(balance - amount.amount).to_json(),
            }
            save_idempotent(c, account_id, "cashout", idem_key, req, 201, body)
        return 201, body

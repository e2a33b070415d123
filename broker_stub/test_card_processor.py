"""A TEST card processor: behaves like a real card gateway's test mode. No real money moves, ever.

Fixed test numbers (spaces allowed):

- ``4242 4242 4242 4242`` succeeds.
- ``4000 0000 0000 0002`` is declined (``card_declined``, reason ``generic_decline``).
- ``4000 0000 0000 9995`` fails for insufficient funds (``insufficient_funds``).

Any other number that passes the Luhn check is declined with reason ``unknown_test_card`` (only the test numbers
work in test mode); a number failing the Luhn check, a bad expiry or CVC is ``malformed``; an expired card is
declined with reason ``expired_card``.

Credits (money paid back to a card, :func:`credit`, used by cash-outs) follow the same rules, except that the
insufficient-funds card accepts them: a card never lacks room for money coming in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from netpay.encoding import FieldReader
from netpay.errors import CardDeclined, InsufficientFunds, MalformedMessage
from netpay.money import Money

__all__ = ["TEST_CARDS", "Card", "Charge", "charge", "credit"]

SUCCEEDS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
TEST_CARDS = {SUCCEEDS: "succeeds", DECLINED: "card_declined", INSUFFICIENT: "insufficient_funds"}


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Card:
    """Card details as sent by the wallet; only ``last4`` is ever stored."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @classmethod
    def from_json(cls, data: Any, where: str = "card") -> Card:
        r = FieldReader(data, where)
        number = r.text("number", 32, min_len=12).replace(" ", "")
        exp_month = r.integer("exp_month", 1, 12)
        exp_year = r.integer("exp_year", 2000, 2200)
        cvc = r.text("cvc", 4, min_len=3)
        r.done()
        if not number.isdigit() or not 12 <= len(number) <= 19 or not _luhn_ok(number):
            raise MalformedMessage(f"{where}.number is not a valid card number", field=f"{where}.number")
        if not cvc.isdigit():
            raise MalformedMessage(f"{where}.cvc must be 3 or 4 digits", field=f"{where}.cvc")
        return cls(number, exp_month, exp_year, cvc)


@dataclass(frozen=True, slots=True)
class Charge:
    """A successful test charge."""

    charge_id: str
    amount: Money
    last4: str


def charge(card: Card, amount: Money, now_year: int, now_month: int) -> Charge:
    """Charge ``amount`` to ``card`` in test mode, or raise the error a real gateway would give."""
    if amount.amount <= 0:
        raise MalformedMessage("a charge must be positive", field="amount")
    if (card.exp_year, card.exp_month) < (now_year, now_month):
        raise CardDeclined("the card has expired", reason="expired_card")
    outcome = TEST_CARDS.get(card.number)
    if outcome is None:
        raise CardDeclined("only the test card numbers work in test mode", reason="unknown_test_card")
    if outcome == "card_declined":
        raise CardDeclined("the card was declined", reason="generic_decline")
    if outcome == "insufficient_funds":
        raise InsufficientFunds("the card has insufficient funds", reason="card_insufficient_funds")
    digest = hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:24]
    return Charge(f"ch_test_{digest}", amount, card.last4)


def credit(card: Card, amount: Money, now_year: int, now_month: int) -> Charge:
    """Pay ``amount`` back to ``card`` in test mode (a refund to the card), or raise what a real gateway would."""
    if amount.amount <= 0:
        raise MalformedMessage("a credit must be positive", field="amount")
    if (card.exp_year, card.exp_month) < (now_year, now_month):
        raise CardDeclined("the card has expired", reason="expired_card")
    outcome = TEST_CARDS.get(card.number)
    if outcome is None:
        raise CardDeclined("only the test card numbers work in test mode", reason="unknown_test_card")
    if outcome == "card_declined":
        raise CardDeclined("the card was declined", reason="generic_decline")
    digest = hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:24]
    return Charge(f"re_test_{digest}", amount, card.last4)

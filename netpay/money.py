"""Money as integer minor units with an ISO 4217 currency. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netpay.errors import CurrencyMismatch, MalformedMessage

__all__ = ["CURRENCY_EXPONENTS", "MAX_AMOUNT", "Money"]

#: ISO 4217 codes this system accepts, with their number of minor-unit digits.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "NZD": 2, "AUD": 2, "CAD": 2, "SEK": 2, "NOK": 2,
    "DKK": 2, "PLN": 2, "CZK": 2, "CNY": 2, "INR": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3,
}  # fmt: skip

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "NZD": "NZ$", "AUD": "A$"}

#: Upper bound on any single amount (10^15 minor units), so no sum can overflow a SQLite integer.
MAX_AMOUNT = 10**15


@dataclass(frozen=True, order=False, slots=True)
class Money:
    """An amount in integer minor units (cents) of one ISO 4217 currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise MalformedMessage("amount must be an integer number of minor units", field="amount")
        if not -MAX_AMOUNT <= self.amount <= MAX_AMOUNT:
            raise MalformedMessage("amount out of range", field="amount")
        if self.currency not in CURRENCY_EXPONENTS:
            raise MalformedMessage(f"unknown currency {self.currency!r}", field="currency")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError("Money can only be multiplied by an int")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_json(cls, value: Any, field: str = "money") -> Money:
        if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
            raise MalformedMessage(f"{field} must be an object with amount and currency", field=field)
        amount, currency = value["amount"], value["currency"]
        if type(amount) is not int or not isinstance(currency, str):
            raise MalformedMessage(f"{field} has the wrong types", field=field)
        return cls(amount, currency)

    def format(self) -> str:
        """Human form, e.g. ``€0.05`` or ``12 JPY``-style for unknown symbols."""
        exp = CURRENCY_EXPONENTS[self.currency]
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exp) if exp else (abs(self.amount), 0)
        number = f"{units:,}.{minor:0{exp}d}" if exp else f"{units:,}"
        symbol = _SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {self.currency}"

    def __str__(self) -> str:
        return self.format()

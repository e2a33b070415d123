"""Parse amounts typed by people ("5", "5.5", "5,50", "€5.50") into integer minor units. No floats."""

from __future__ import annotations

import re

from netpay.money import CURRENCY_EXPONENTS, Money

__all__ = ["parse_money"]

_NUMBER = re.compile(r"^\s*(\d{1,12})(?:[.,](\d*))?\s*$")


def parse_money(text: str, currency: str) -> Money | None:
    """The amount in ``text`` in ``currency``, or None when it is not a plain non-negative amount."""
    cleaned = re.sub(r"[^\d.,]", "", text.replace("\u00a0", "").strip()) if text else ""
    match = _NUMBER.match(cleaned)
    if not match:
        return None
    exp = CURRENCY_EXPONENTS[currency]
    units, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exp:
        return None
    minor = int(units) * 10**exp + (int(fraction.ljust(exp, "0")) if exp else 0)
    return Money(minor, currency)

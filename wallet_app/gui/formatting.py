"""Small text helpers for the windows: money, dates and short ids."""

from __future__ import annotations

import time

from netpay.money import Money

__all__ = ["money", "short_id", "when", "when_day"]


def money(value: Money) -> str:
    """Money in its human form (``€0.05``); always through :meth:`Money.format`."""
    return value.format()


def when(ts: int) -> str:
    """A local date and time, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def when_day(ts: int) -> str:
    """A local date."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def short_id(value: str, keep: int = 8) -> str:
    """The first characters of a long hex id, enough to tell ids apart on screen."""
    return value if len(value) <= keep + 1 else value[:keep] + "…"

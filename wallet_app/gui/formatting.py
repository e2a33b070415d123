"""Small text helpers for the windows: money, dates and short ids."""

from __future__ import annotations

import time

from netpay.money import Money

__all__ = ["money", "plural", "short_id", "when", "when_day"]


def money(value: Money) -> str:
    """Money in its human form (``€0.05``); always through :meth:`Money.format`."""
    return value.format()


def when(ts: int) -> str:
    """A local date and time, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def when_day(ts: int) -> str:
    """A local date."""
    return time.strftime("%Y-%m-%d", time.localtime(ts))


def plural(n: int, one: str, many: str) -> str:
    """``one`` when ``n`` is 1, else ``many``, with ``%n`` replaced by ``n`` ("1 chain", "2 chains"; never
    "chain(s)"). Both texts come through ``tr()``, so a translation can word each form."""
    return (one if n == 1 else many).replace("%n", f"{n:,}")


def short_id(value: str, keep: int = 8) -> str:
    """The first characters of a long hex id, enough to tell ids apart on screen."""
    return value if len(value) <= keep + 1 else value[:keep] + "…"

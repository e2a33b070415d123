"""Spending rules for programs that pay: at most so much per request, per host per day and per day (UTC days; the
budgets renew at midnight UTC). :class:`Budget` enforces them under concurrency: a payment reserves its price before
it is sent, so two threads can never spend more than a budget between them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netpay.errors import Forbidden
from netpay.money import Money

__all__ = ["Budget", "OverBudget", "Reservation", "SpendingRules"]

DAY_S = 86400


class OverBudget(Forbidden):
    """Paying would break a spending rule: nothing was paid."""


@dataclass(frozen=True, slots=True)
class SpendingRules:
    """Limits in one currency's minor units; None means no limit of that kind."""

    currency: str
    per_request: int | None = None
    per_host_daily: int | None = None
    daily: int | None = None

    @classmethod
    def parse(cls, currency: str, per_request: int | None = None, per_host_daily: int | None = None,
              daily: int | None = None) -> SpendingRules:  # fmt: skip
        for name, v in (("per_request", per_request), ("per_host_daily", per_host_daily), ("daily", daily)):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be a whole number of minor units >= 0")
        return cls(currency.upper(), per_request, per_host_daily, daily)


@dataclass(slots=True)
class Reservation:
    """A price held against the budgets until the payment settles (kept) or fails before paying (released)."""

    host: str
    amount: int
    day: int
    done: bool = False


@dataclass
class Budget:
    """What was spent today, per host and in all, under :class:`SpendingRules`. Thread-safe."""

    rules: SpendingRules
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _day: int = -1
    _total: int = 0
    _hosts: dict[str, int] = field(default_factory=dict)

    def _roll(self) -> int:
        day = int(self.clock()) // DAY_S
        if day != self._day:
            self._day, self._total, self._hosts = day, 0, {}
        return day

    def seed(self, spent_by_host: dict[str, int]) -> None:
        """Count what was already spent today (e.g. read from the wallet's history)."""
        with self._lock:
            self._roll()
            for host, amount in spent_by_host.items():
                self._hosts[host] = self._hosts.get(host, 0) + amount
                self._total += amount

    def spent(self, host: str | None = None) -> int:
        """Spent (and reserved) today, at ``host`` or in all."""
        with self._lock:
            self._roll()
            return self._total if host is None else self._hosts.get(host, 0)

    def reserve(self, host: str, price: Money) -> Reservation:
        """Hold ``price`` for a payment to ``host``, or raise :class:`OverBudget` naming the rule it breaks."""
        r = self.rules
        if price.currency != r.currency:
            raise OverBudget(f"the spending rules are in {r.currency}, the price is {price}", rule="currency")
        amount = price.amount
        with self._lock:
            day = self._roll()
            if r.per_request is not None and amount > r.per_request:
                raise OverBudget(f"{price} is more than the {r.per_request} allowed per request", rule="per_request")
            host_spent = self._hosts.get(host, 0)
            if r.per_host_daily is not None and host_spent + amount > r.per_host_daily:
                raise OverBudget(f"paying {price} would pass today's budget for {host}", rule="per_host_daily",
                                 spent=host_spent)  # fmt: skip
            if r.daily is not None and self._total + amount > r.daily:
                raise OverBudget(f"paying {price} would pass today's budget", rule="daily", spent=self._total)
            self._hosts[host] = host_spent + amount
            self._total += amount
            return Reservation(host, amount, day)

    def release(self, res: Reservation) -> None:
        """Give a reservation back (the payment failed before anything was spent)."""
        with self._lock:
            if res.done:
                return
            res.done = True
            if res.day == self._day:
                self._hosts[res.host] = self._hosts.get(res.host, 0) - res.amount
                self._total -= res.amount

    def keep(self, res: Reservation) -> None:
        """The payment went out (or may have): the reservation stays spent."""
        res.done = True

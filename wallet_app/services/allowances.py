"""Allowances: per vendor, a maximum price per purchase and a budget per (local) day; payments made under an
allowance are spends with ``via = 'allowance'`` (and the units of a metered session opened under it, ``via =
'metered'``), so the day's total is read from the journal itself.

Every allowance purchase asks twice whether the allowance covers it (the page's hand-off decides between paying at
once and a prompt; the payment checks again under the payment lock), so what does not change between purchases is
kept in memory: the allowances themselves (written only through this book: kept until the book writes one or the
vault is opened again) and the bounds of today. The day's spend is summed once per vault version (see
:meth:`~wallet_app.vault.store.Vault.version`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from netpay.errors import MalformedMessage
from netpay.money import Money
from wallet_app.services.types import AllowanceInfo
from wallet_app.vault.store import Vault

__all__ = ["AllowanceBook", "start_of_day"]


def start_of_day(now: float) -> int:
    """Local midnight before ``now`` (allowance budgets renew daily)."""
    lt = time.localtime(now)
    return int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)))


class _Allowance(NamedTuple):
    vendor_id: str
    vendor_name: str
    max_amount: int
    daily_amount: int
    currency: str
    created_at: int


class AllowanceBook:
    """Reads and writes allowances in the vault."""

    def __init__(self, vault: Vault, clock: Callable[[], float]) -> None:
        self.vault = vault
        self.clock = clock
        #: the last sum read, with the vault's version then: valid while nothing has been written since
        self._spent: dict[tuple[str, str, int], tuple[tuple[int, int], int]] = {}
        #: every allowance by vendor, as read at vault generation ``_rows_generation`` (None: read again)
        self._rows: dict[str, _Allowance] | None = None
        self._rows_generation = -1
        self._changes = 0  # writes by this book: a read that saw one happen meanwhile is not kept
        self._rows_lock = threading.Lock()
        #: today: [start, start of tomorrow) in epoch seconds, local time
        self._day = (0, 0)

    def set(self, vendor_id: str, vendor_name: str, max_price: Money, daily_budget: Money) -> None:
        if max_price.currency != daily_budget.currency:
            raise MalformedMessage("price limit and daily budget must be in one currency", field="daily_budget")
        if max_price.amount <= 0 or daily_budget.amount < max_price.amount:
            raise MalformedMessage("need 0 < maximum price <= daily budget", field="max_price")
        try:
            with self.vault.tx() as c:
                c.execute(
                    """INSERT INTO allowances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(vendor_id) DO UPDATE SET
                       vendor_name = excluded.vendor_name, max_amount = excluded.max_amount,
                       daily_amount = excluded.daily_amount, currency = excluded.currency""",
                    (vendor_id, vendor_name, max_price.amount, daily_budget.amount, max_price.currency,
                     int(self.clock())),
                )  # fmt: skip
        finally:
            self._forget_rows()

    def revoke(self, vendor_id: str) -> None:
        try:
            with self.vault.tx() as c:
                c.execute("DELETE FROM allowances WHERE vendor_id = ?", (vendor_id,))
        finally:
            self._forget_rows()

    def _forget_rows(self) -> None:
        with self._rows_lock:
            self._rows = None
            self._changes += 1

    def _allowances(self) -> dict[str, _Allowance]:
        """Every allowance by vendor id: read from the vault once per change (by this book) and per open."""
        generation = self.vault.generation
        with self._rows_lock:
            rows = self._rows
            if rows is not None and self._rows_generation == generation:
                return rows
            changes = self._changes
        fresh = {
            r["vendor_id"]: _Allowance(
                r["vendor_id"], r["vendor_name"], r["max_amount"], r["daily_amount"], r["currency"], r["created_at"]
            )
            for r in self.vault.query("SELECT * FROM allowances")
        }
        with self._rows_lock:
            # kept only if nothing was written or opened while it was read
            if self._changes == changes and self.vault.generation == generation:
                self._rows, self._rows_generation = fresh, generation
        return fresh

    def _today(self) -> int:
        """Local midnight before now; the bounds of today are kept (``localtime``/``mktime`` once a day)."""
        now = self.clock()
        start, end = self._day
        if not start <= now < end:
            start = start_of_day(now)
            end = start_of_day(start + 36 * 3600)  # 36 h after midnight is always tomorrow (days of 23 to 25 h)
            self._day = (start, end)
        return start

    def spent_today(self, vendor_id: str, currency: str) -> Money:
        day = self._today()
        key = (vendor_id, currency, day)
        version = self.vault.version()
        cached = self._spent.get(key)
        if version is not None and cached is not None and cached[0] == version:
            return Money(cached[1], currency)  # nothing written since it was summed (a hand-off asks twice)
        amount = self._sum_spent(vendor_id, currency, day)
        if version is not None and self.vault.version() == version:
            self._spent = {key: (version, amount)}
        return Money(amount, currency)

    def _sum_spent(self, vendor_id: str, currency: str, day: int) -> int:
        row = self.vault.one(
            # Two sums, so the allowance's own payments are read from the covering index alone (an OR of the two
            # read every row of the day); the units of a metered session opened under the allowance count too.
            """SELECT (SELECT COALESCE(SUM(amount), 0) FROM spends WHERE vendor_id = ?1 AND via = 'allowance'
                       AND created_at >= ?3 AND status IN ('pending', 'settled') AND currency = ?2)
                    + (SELECT COALESCE(SUM(amount), 0) FROM spends WHERE vendor_id = ?1 AND via = 'metered'
                       AND created_at >= ?3 AND status IN ('pending', 'settled') AND currency = ?2
                       AND EXISTS (SELECT 1 FROM metered_sessions m WHERE m.approved_via = 'allowance'
                           AND m.vendor_id = spends.vendor_id
                           AND substr(spends.quote_id, 1, length(m.session_id) + 1) = m.session_id || '.'))""",
            (vendor_id, currency, day),
        )
        return int(row[0])

    def list(self) -> list[AllowanceInfo]:
        out = []
        for a in sorted(self._allowances().values(), key=lambda a: (a.vendor_name, a.vendor_id)):
            out.append(
                AllowanceInfo(
                    vendor_id=a.vendor_id,
                    vendor_name=a.vendor_name,
                    max_price=Money(a.max_amount, a.currency),
                    daily_budget=Money(a.daily_amount, a.currency),
                    spent_today=self.spent_today(a.vendor_id, a.currency),
                    created_at=a.created_at,
                )
            )
        return out

    def covers(self, vendor_id: str, price: Money) -> bool:
        a = self._allowances().get(vendor_id)
        if a is None or a.currency != price.currency or price.amount > a.max_amount:
            return False
        return bool(self.spent_today(vendor_id, price.currency).amount + price.amount <= a.daily_amount)

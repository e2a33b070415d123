"""Allowances: per vendor, a maximum price per purchase and a budget per (local) day; payments made under an
allowance are spends with ``via = 'allowance'`` (and the units of a metered session opened under it, ``via =
'metered'``), so the day's total is read from the journal itself."""

from __future__ import annotations

import time
from collections.abc import Callable

from netpay.errors import MalformedMessage
from netpay.money import Money
from wallet_app.services.types import AllowanceInfo
from wallet_app.vault.store import Vault

__all__ = ["AllowanceBook", "start_of_day"]


def start_of_day(now: float) -> int:
    """Local midnight before ``now`` (allowance budgets renew daily)."""
    lt = time.localtime(now)
    return int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)))


class AllowanceBook:
    """Reads and writes allowances in the vault."""

    def __init__(self, vault: Vault, clock: Callable[[], float]) -> None:
        self.vault = vault
        self.clock = clock
        #: the last sum read, with the vault's version then: valid while nothing has been written since
        self._spent: dict[tuple[str, str, int], tuple[tuple[int, int], int]] = {}

    def set(self, vendor_id: str, vendor_name: str, max_price: Money, daily_budget: Money) -> None:
        if max_price.currency != daily_budget.currency:
            raise MalformedMessage("price limit and daily budget must be in one currency", field="daily_budget")
        if max_price.amount <= 0 or daily_budget.amount < max_price.amount:
            raise MalformedMessage("need 0 < maximum price <= daily budget", field="max_price")
        with self.vault.tx() as c:
            c.execute(
                """INSERT INTO allowances VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(vendor_id) DO UPDATE SET
                   vendor_name = excluded.vendor_name, max_amount = excluded.max_amount,
                   daily_amount = excluded.daily_amount, currency = excluded.currency""",
                (vendor_id, vendor_name, max_price.amount, daily_budget.amount, max_price.currency, int(self.clock())),
            )

    def revoke(self, vendor_id: str) -> None:
        with self.vault.tx() as c:
            c.execute("DELETE FROM allowances WHERE vendor_id = ?", (vendor_id,))

    def spent_today(self, vendor_id: str, currency: str) -> Money:
        day = start_of_day(self.clock())
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
        for r in self.vault.query("SELECT * FROM allowances ORDER BY vendor_name"):
            out.append(
                AllowanceInfo(
                    vendor_id=r["vendor_id"],
                    vendor_name=r["vendor_name"],
                    max_price=Money(r["max_amount"], r["currency"]),
                    daily_budget=Money(r["daily_amount"], r["currency"]),
                    spent_today=self.spent_today(r["vendor_id"], r["currency"]),
                    created_at=r["created_at"],
                )
            )
        return out

    def covers(self, vendor_id: str, price: Money) -> bool:
        r = self.vault.one("SELECT * FROM allowances WHERE vendor_id = ?", (vendor_id,))
        if r is None or r["currency"] != price.currency or price.amount > r["max_amount"]:
            return False
        return bool(self.spent_today(vendor_id, price.currency).amount + price.amount <= r["daily_amount"])

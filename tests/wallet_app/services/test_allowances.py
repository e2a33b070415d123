"""The allowance book keeps the allowances and today's bounds in memory: every change must still be seen at once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from netpay.money import Money
from wallet_app.services import WalletService
from wallet_app.services.allowances import AllowanceBook, start_of_day


def _eur(cents: int) -> Money:
    return Money(cents, "EUR")


def test_a_changed_or_revoked_allowance_counts_at_once(wallet: WalletService) -> None:
    book = wallet.allowance_book
    assert not book.covers("v1", _eur(5))  # (read and kept: no allowance)
    book.set("v1", "Shop One", _eur(5), _eur(20))
    assert book.covers("v1", _eur(5)) and not book.covers("v1", _eur(6))
    book.set("v1", "Shop One", _eur(3), _eur(20))  # lowered
    assert not book.covers("v1", _eur(5)) and book.covers("v1", _eur(3))
    with pytest.raises(Exception, match="maximum price"):
        book.set("v1", "Shop One", _eur(0), _eur(20))  # refused: the allowance stays as it was
    assert book.covers("v1", _eur(3))
    book.revoke("v1")
    assert not book.covers("v1", _eur(3))
    assert [a.vendor_id for a in book.list()] == []


def test_another_open_reads_the_allowances_again(wallet: WalletService) -> None:
    """The rows are kept only while the vault stays open as it was: a restored backup is opened again, and an
    allowance it holds (written there without this book) counts from then on."""
    book = wallet.allowance_book
    assert not book.covers("v2", _eur(5))
    with wallet.vault.tx() as c:  # the restored file's row: not written through the book
        c.execute("INSERT INTO allowances VALUES ('v2', 'Shop Two', 5, 50, 'EUR', 0)")
    wallet.lock()
    wallet.unlock()
    assert wallet.allowance_book.covers("v2", _eur(5))


def test_a_change_made_while_the_rows_are_read_is_not_lost(wallet: WalletService) -> None:
    book = wallet.allowance_book
    real_query = wallet.vault.query
    calls: list[str] = []

    def query(sql: str, params: Any = ()) -> Any:
        rows = real_query(sql, params)
        if "FROM allowances" in sql and not calls:
            calls.append(sql)
            book.set("v3", "Shop Three", _eur(5), _eur(50))  # written after the read, before it is kept
        return rows

    wallet.vault.query = query  # type: ignore[method-assign]
    try:
        assert not book.covers("v3", _eur(5))  # this read predates the allowance...
    finally:
        wallet.vault.query = real_query  # type: ignore[method-assign]
    assert calls
    assert book.covers("v3", _eur(5))  # ... and was not kept over it


@pytest.fixture
def berlin() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("berlin")
def test_the_budget_renews_at_each_local_midnight_across_a_23_hour_day(wallet: WalletService) -> None:
    """29 March 2026 has 23 hours in Berlin (clocks go forward): the kept bounds of today must end at the real
    midnight, not 24 hours after the last one."""
    now = [float(time.mktime((2026, 3, 28, 23, 59, 0, 0, 0, -1)))]
    book = AllowanceBook(wallet.vault, clock=lambda: now[0])
    march_29 = int(time.mktime((2026, 3, 29, 0, 0, 0, 0, 0, -1)))
    march_30 = int(time.mktime((2026, 3, 30, 0, 0, 0, 0, 0, -1)))
    assert march_30 - march_29 == 23 * 3600
    expected = [
        (march_29 - 60, start_of_day(march_29 - 60)),
        (march_29, march_29),
        (march_30 - 1, march_29),  # the last second of the short day
        (march_30, march_30),  # midnight: a new day, one hour earlier than 24 h after the last
        (march_30 + 86_399, march_30),
        (march_29 + 3600, march_29),  # a clock set back is read again too
    ]
    for at, day in expected:
        now[0] = at
        assert book._today() == day, time.ctime(at)

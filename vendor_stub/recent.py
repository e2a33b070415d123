"""An in-memory index of the payments of the last few quote lifetimes, so the hot path needs no database read.

A payment can only be for a quote this vendor issued, and a quote is payable only until it expires. Every payment
recorded since ``now - window`` is in this index (loaded from the database at start, added at each commit), so for a
quote issued inside the window the index alone answers "already paid?" and "same payment again?". Older quotes
(expired, or from before a long outage) fall back to the database.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from vendor_stub.storage import Store

__all__ = ["RecentPayment", "RecentPayments"]


@dataclass(frozen=True, slots=True)
class RecentPayment:
    """What the hot path needs to know about one recorded payment."""

    payment_id: str
    quote_id: str
    digest: str
    receipt: str  # the receipt wire as JSON text
    created_at: int


class RecentPayments:
    """Payments recorded in the last ``window_s`` seconds, by payment id and by quote id."""

    def __init__(self, store: Store, now: int, window_s: int) -> None:
        self.window_s = window_s
        self.since = now - window_s  # every payment recorded at or after this time is here
        self._by_payment: dict[str, RecentPayment] = {}
        self._by_quote: dict[str, RecentPayment] = {}
        self._order: deque[RecentPayment] = deque()
        self._lock = threading.Lock()
        rows = store.query(
            "SELECT payment_id, quote_id, request_digest, receipt, created_at FROM payments WHERE created_at >= ?"
            " ORDER BY created_at",
            (self.since,),
        )
        for r in rows:
            self._add(RecentPayment(r[0], r[1], r[2], r[3], r[4]))

    def covers(self, issued_at: int) -> bool:
        """True if every payment of a quote issued at ``issued_at`` would be in this index."""
        return issued_at >= self.since

    def by_payment(self, payment_id: str) -> RecentPayment | None:
        return self._by_payment.get(payment_id)

    def by_quote(self, quote_id: str) -> RecentPayment | None:
        return self._by_quote.get(quote_id)

    def add(self, entry: RecentPayment, now: int) -> None:
        """Remember a payment just committed, and forget those older than the window."""
        with self._lock:
            self._add(entry)
            limit = now - self.window_s
            while self._order and self._order[0].created_at < limit:
                old = self._order.popleft()
                self._by_payment.pop(old.payment_id, None)
                self._by_quote.pop(old.quote_id, None)
                self.since = max(self.since, old.created_at + 1)

    def _add(self, entry: RecentPayment) -> None:
        self._by_payment[entry.payment_id] = entry
        self._by_quote[entry.quote_id] = entry
        self._order.append(entry)

"""Metered sessions (volume-based pricing, seed 000): an item sold by the unit, e.g. 30 seconds of audio.

Paying a metered quote (``model.kind == "metered"``, unit 1) opens a session whose id is that payment's receipt id
and whose token is that receipt's access token. Every later unit is an ordinary payment of a quote for exactly that
unit (``quote_id = <session>.<n>``, ``model.session_id``, ``model.unit_no = n``), which this desk issues only to the
holder of the session's token, one unit at a time. The desk's rules, each enforced by the database in the payment's
own transaction (so two processes of one shop agree):

- unit ``n`` is recorded only when the session is open and has ``n - 1`` units paid (never twice, never out of
  order), and never beyond ``cap_units``; a session at its cap is ended;
- a unit is delivered (:meth:`MeteredDesk.unit_paid`) only when it is paid, to the holder of the session's token.
"""

from __future__ import annotations

import functools
import io
import json
import math
import sqlite3
import wave
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from netpay.errors import Forbidden, MeteredSessionEnded, MeteredUnitOutOfOrder, NotFound
from netpay.messages import Quote
from netpay.money import Money
from vendor_stub.access import AccessTokens
from vendor_stub.catalog import Catalog
from vendor_stub.storage import Store

__all__ = ["MeteredDesk", "SessionState", "tone_wav"]


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session as the shop keeps it."""

    session_id: str
    item_id: str
    units_paid: int
    cap_units: int
    unit_amount: int
    currency: str
    status: str  # open | ended

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "item_id": self.item_id,
            "units_paid": self.units_paid,
            "cap_units": self.cap_units,
            "total": {"amount": self.unit_amount * self.units_paid, "currency": self.currency},
            "status": self.status,
        }


class MeteredDesk:
    """Opens sessions, issues each next unit's quote, records units in the payment's transaction, ends sessions."""

    def __init__(self, store: Store, catalog: Catalog, tokens: AccessTokens, clock: Callable[[], int]) -> None:
        self._store = store
        self._catalog = catalog
        self._tokens = tokens
        self._now = clock

    # -- inside a payment's transaction -------------------------------------------------------------------------
    def record(self, c: sqlite3.Connection, quote: Quote, receipt_id: str, now: int) -> None:
        """Open the session (unit 1) or count unit ``n`` of it; raise (so nothing is recorded) when the unit is
        not the session's next one, the session has ended, or the unit is beyond the cap."""
        model = quote.model
        if model.session_id is None:
            c.execute(
                "INSERT INTO metered_sessions (session_id, item_id, unit_amount, currency, cap_units, units_paid,"
                " status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (receipt_id, quote.item_id, quote.price.amount, quote.price.currency, model.cap_units,
                 "ended" if model.cap_units == 1 else "open", now, now),
            )  # fmt: skip
            return
        n = model.unit_no
        updated = c.execute(
            "UPDATE metered_sessions SET units_paid = ?, updated_at = ?,"
            " status = CASE WHEN ? >= cap_units THEN 'ended' ELSE status END"
            " WHERE session_id = ? AND item_id = ? AND status = 'open' AND units_paid = ? AND ? <= cap_units"
            " AND unit_amount = ? AND currency = ?",
            (n, now, n, model.session_id, quote.item_id, n - 1, n, quote.price.amount, quote.price.currency),
        ).rowcount
        if updated == 1:
            return
        row = c.execute(
            "SELECT status, units_paid, cap_units FROM metered_sessions WHERE session_id = ?", (model.session_id,)
        ).fetchone()
        if row is None:
            raise NotFound("no such metered session", session_id=model.session_id)
        if row[0] != "open":
            raise MeteredSessionEnded(session_id=model.session_id, units_paid=int(row[1]))
        raise MeteredUnitOutOfOrder(
            f"unit {n} is not the session's next unit ({int(row[1]) + 1} of at most {int(row[2])})",
            session_id=model.session_id, units_paid=int(row[1]),
        )  # fmt: skip

    # -- for the session's holder -------------------------------------------------------------------------------
    def session(self, session_id: str, token: str | None) -> SessionState:
        """The session, for the holder of its token only (a token of another session or customer is refused)."""
        row = self._store.one("SELECT * FROM metered_sessions WHERE session_id = ?", (session_id,))
        if row is None:
            raise NotFound("no such metered session", session_id=session_id)
        grant = self._tokens.check(token, row["item_id"], self._now())
        if grant is None or grant.receipt_id != session_id:
            raise Forbidden("this token does not hold that metered session", session_id=session_id)
        return SessionState(session_id, row["item_id"], int(row["units_paid"]), int(row["cap_units"]),
                            int(row["unit_amount"]), row["currency"], row["status"])  # fmt: skip

    def next_quote(self, session_id: str, token: str | None, vendor_id: str, base_url: str, ttl_s: int) -> Quote:
        """The (unsigned) quote for the session's next unit, ``quote_id = <session>.<n>``: asking again before it
        is paid gives the same unit again, never a later one."""
        st = self.session(session_id, token)
        if st.status != "open" or st.units_paid >= st.cap_units:
            raise MeteredSessionEnded(session_id=session_id, units_paid=st.units_paid)
        item = self._catalog.get(st.item_id)
        if item is None or not item.model.is_metered:
            raise NotFound("the session's item is no longer sold", item_id=st.item_id)
        n = st.units_paid + 1
        now = self._now()
        return Quote(
            quote_id=f"{session_id}.{n}",
            vendor_id=vendor_id,
            item_id=item.item_id,
            title=item.title,
            price=Money(st.unit_amount, st.currency),
            model=replace(item.model, cap_units=st.cap_units, session_id=session_id, unit_no=n),
            payment_url=f"{base_url}/v1/payments",
            item_url=f"{base_url}/items/{item.item_id}",
            issued_at=now,
            expires_at=now + ttl_s,
        )

    def end(self, session_id: str, token: str | None) -> SessionState:
        """End the session (the customer or the page stopped): no further unit is sold. Idempotent."""
        st = self.session(session_id, token)
        now = self._now()

        def write(c: sqlite3.Connection) -> None:
            c.execute("UPDATE metered_sessions SET status = 'ended', updated_at = ? WHERE session_id = ?",
                      (now, session_id))  # fmt: skip

        self._store.write(write)
        return replace(st, status="ended")

    def unit_paid(self, session_id: str, token: str | None, unit_no: int) -> SessionState:
        """The session if ``unit_no`` is paid (delivered only then), else a refusal naming what is paid."""
        st = self.session(session_id, token)
        if not 1 <= unit_no <= st.units_paid:
            raise MeteredUnitOutOfOrder(f"unit {unit_no} is not paid ({st.units_paid} paid)",
                                        session_id=session_id, units_paid=st.units_paid)  # fmt: skip
        return st

    def unit_receipt_id(self, session_id: str, unit_no: int) -> str | None:
        """The receipt id of a paid unit (unit 1's is the session id): delivering the unit marks it opened, so a
        refund of a unit the customer received is the publisher's decision, and one never delivered is automatic."""
        if unit_no == 1:
            return session_id
        row = self._store.one("SELECT receipt FROM payments WHERE quote_id = ?", (f"{session_id}.{unit_no}",))
        if row is None:
            return None
        return str(json.loads(row["receipt"])["body"]["receipt_id"])


@functools.lru_cache(maxsize=32)
def tone_wav(unit_no: int, seconds: int, rate: int = 8000) -> bytes:
    """A generated unit of audio: ``seconds`` of a soft tone whose pitch steps with the unit (8-bit mono WAV)."""
    freq = 220.0 * 2 ** ((unit_no % 12) / 12)
    frames = bytearray(rate * seconds)
    step = 2 * math.pi * freq / rate
    for i in range(len(frames)):
        frames[i] = 128 + int(24 * math.sin(step * i))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return buf.getvalue()

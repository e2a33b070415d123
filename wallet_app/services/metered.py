"""Metered sessions (seed 000, volume-based use): approve once, then pay each unit as it is used, with no prompt.

The customer approves the session's first unit like any purchase (the prompt, or an allowance); its receipt opens
the session at the shop (session id = receipt id, session token = its access token). The page then asks for each
next unit by number (:meth:`MeteredSessions.pay_unit`); the wallet asks the shop for that unit's quote, checks that
it is exactly the next unit of the approved session (same shop, item, unit price and cap), and pays it through the
ordinary payment engine (``via = "metered"``): the spend is journalled in the vault before its payword leaves, the
vendor's receipt settles it. Rules:

- a unit is paid once: asking again for a unit already paid answers from the vault without paying; a unit whose
  payment is still pending (the shop was unreachable) is re-sent, never paid anew;
- units are paid in order and never beyond the cap; a session opened under an allowance also stops when the
  allowance's day budget is spent;
- the session ends when the page says so, the cap is reached, the user ends it (tray), the wallet locks, or no unit
  was asked for in :data:`IDLE_END_S`; an ended session pays nothing more.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from netpay.errors import (
    Forbidden,
    MeteredSessionEnded,
    MeteredUnitOutOfOrder,
    NetPayError,
    NotFound,
    PeerUnavailable,
)
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.clients.vendor import VendorClient
from wallet_app.services.types import ActivityEntry, PaidQuote, PayVia
from wallet_app.vault.store import Vault

__all__ = ["IDLE_END_S", "MeteredSession", "MeteredSessions", "UnitPaid"]

#: An open session in which no unit was asked for this long is ended (the page went away without saying so).
IDLE_END_S = 300


@dataclass(frozen=True, slots=True)
class MeteredSession:
    """A session as the wallet keeps it."""

    session_id: str
    vendor_id: str
    vendor_name: str
    origin: str
    item_id: str
    title: str
    unit: str
    unit_s: int | None
    unit_price: Money
    cap_units: int
    units_paid: int
    status: str  # open | ended
    end_reason: str  # "" while open; page | cap | user | locked | idle | budget | vendor
    approved_via: str
    created_at: int
    updated_at: int

    @property
    def total(self) -> Money:
        return self.unit_price * self.units_paid

    @property
    def cap_total(self) -> Money:
        return self.unit_price * self.cap_units


@dataclass(frozen=True, slots=True)
class UnitPaid:
    """The answer to a page that asked for a unit: the session's token opens it at the shop."""

    session_id: str
    unit_no: int
    access_token: str
    units_paid: int
    cap_units: int
    total: Money
    ended: bool


class MeteredSessions:
    """The metered sessions in the vault, each unit paid through ``pay`` (the wallet's ordinary payment path)."""

    def __init__(self, vault: Vault, clock: Callable[[], float], lock: threading.RLock,
                 vendor_client: Callable[[str], VendorClient],
                 check: Callable[[Any, Any, str | None], tuple[Signed[Quote], Signed[VendorCertificate]]],
                 pay: Callable[[Signed[Quote], Signed[VendorCertificate], str | None, PayVia], PaidQuote],
                 recover: Callable[[], int], covers: Callable[[str, Money], bool],
                 emit: Callable[..., None]) -> None:  # fmt: skip
        self.vault = vault
        self.clock = clock
        self.lock = lock
        self._client = vendor_client
        self._check = check  # (quote wire, certificate wire, origin) -> checked quote and certificate
        self._pay = pay
        self._recover = recover
        self._covers = covers
        self._emit = emit
        self._busy: dict[str, threading.Lock] = {}

    # -- opening -------------------------------------------------------------------------------------------------
    def opened(self, paid: PaidQuote, quote: Signed[Quote], cert: Signed[VendorCertificate], origin: str,
               api_url: str) -> MeteredSession:  # fmt: skip
        """Record the session that the approved payment of a metered quote's first unit opened."""
        q, m = quote.body, quote.body.model
        if not m.is_metered or m.session_id is not None:
            raise Forbidden("only the first unit of a metered item opens a session")
        session_id = paid.receipt.body.receipt_id
        now = int(self.clock())
        status, reason = ("ended", "cap") if m.cap_units == 1 else ("open", "")
        with self.lock, self.vault.tx() as c:
            c.execute(
                "INSERT INTO metered_sessions (session_id, vendor_id, vendor_name, api_url_json, origin, item_id,"
                " title, unit, unit_s, unit_amount, currency, cap_units, units_paid, status, end_reason, access_token,"
                " approved_via, opening_payment_id, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (session_id, q.vendor_id, cert.body.display_name, json.dumps(api_url), origin, q.item_id, q.title,
                 m.unit, m.unit_s, q.price.amount, q.price.currency, m.cap_units, status, reason, paid.access_token,
                 paid.via, paid.payment_id, now, now),
            )  # fmt: skip
        session = self.get(session_id)
        if session.vendor_id != q.vendor_id:
            raise Forbidden("another shop already named a session so", session_id=session_id)
        self._emit("metered_changed", session)
        return session

    # -- each unit -----------------------------------------------------------------------------------------------
    def pay_unit(self, session_id: str, unit_no: int, origin: str | None) -> UnitPaid:
        """Pay unit ``unit_no`` of an open session (or answer from the vault if it is paid already)."""
        with self.lock:
            busy = self._busy.setdefault(session_id, threading.Lock())
        with busy:  # one unit of one session at a time: a twin request waits, then finds its unit paid
            s = self._caught_up(self._row(session_id))
            if origin is not None and origin != s.origin:
                raise Forbidden("this session belongs to another site", session_id=session_id)
            if 1 <= unit_no <= s.units_paid:
                return self._answer(s, unit_no)
            if s.status != "open":
                raise MeteredSessionEnded(f"the session has ended ({s.end_reason})", session_id=session_id,
                                          reason=s.end_reason, units_paid=s.units_paid)  # fmt: skip
            if unit_no != s.units_paid + 1 or unit_no > s.cap_units:
                raise MeteredUnitOutOfOrder(f"unit {unit_no} is not the next unit ({s.units_paid + 1})",
                                            session_id=session_id, units_paid=s.units_paid)  # fmt: skip
            quote_id = f"{session_id}.{unit_no}"
            pending = self.vault.one("SELECT status FROM spends WHERE vendor_id = ? AND quote_id = ? AND status IN"
                                     " ('pending', 'settled')", (s.vendor_id, quote_id))  # fmt: skip
            if pending is not None:  # paid before, or sent while the shop was unreachable: finish that payment
                if pending["status"] == "pending":
                    self._recover()
                return self._settled_unit(s, unit_no, quote_id)
            if s.approved_via == "allowance" and not self._covers(s.vendor_id, s.unit_price):
                self._end(s, "budget")
                raise MeteredSessionEnded("the allowance's budget for today is spent", session_id=session_id,
                                          reason="budget")  # fmt: skip
            api_url = self._api_url(s)
            answer = self._client(api_url).metered_quote(session_id, self._token(session_id))
            try:
                quote, cert = self._check(answer.get("quote"), answer.get("vendor_certificate"), None)
            except NetPayError:
                self._end(s, "vendor")
                raise
            self._require_next_unit(s, quote, cert, unit_no)
            paid = self._pay(quote, cert, None, "metered")
            return self._count(s, unit_no, paid.access_token)

    def _require_next_unit(self, s: MeteredSession, quote: Signed[Quote], cert: Signed[VendorCertificate],
                           unit_no: int) -> None:  # fmt: skip
        """The shop's quote must be exactly the approved session's next unit; anything else ends the session."""
        q, m = quote.body, quote.body.model
        same = (
            cert.body.vendor_id == s.vendor_id and q.item_id == s.item_id and m.is_metered
            and m.session_id == s.session_id and m.unit_no == unit_no and m.cap_units == s.cap_units
            and q.price == s.unit_price and q.quote_id == f"{s.session_id}.{unit_no}"
        )  # fmt: skip
        if not same:
            self._end(s, "vendor")
            raise Forbidden("the shop quoted something else than the session's next unit: the session is ended",
                            session_id=s.session_id)  # fmt: skip

    def _settled_unit(self, s: MeteredSession, unit_no: int, quote_id: str) -> UnitPaid:
        row = self.vault.one("SELECT status, access_token FROM spends WHERE vendor_id = ? AND quote_id = ? AND"
                             " status = 'settled'", (s.vendor_id, quote_id))  # fmt: skip
        if row is None:
            raise PeerUnavailable("the unit's payment is still on its way to the shop; try again",
                                  session_id=s.session_id, unit_no=unit_no)  # fmt: skip
        return self._count(s, unit_no, row["access_token"])

    def _count(self, s: MeteredSession, unit_no: int, token: str) -> UnitPaid:
        """Count a unit whose payment settled. The count is derived data (the settled spend of quote
        ``<session>.<n>`` is the record), so it is written without a flush of its own; a count lost in a crash is
        caught up from the spends (:meth:`_caught_up`)."""
        now = int(self.clock())
        ended = unit_no >= s.cap_units
        key = (unit_no, now, ended, ended, s.vendor_id, s.session_id, unit_no - 1)

        def write(c: Any) -> None:
            c.execute(
                "UPDATE metered_sessions SET units_paid = ?, updated_at = ?,"
                " status = CASE WHEN ? THEN 'ended' ELSE status END,"
                " end_reason = CASE WHEN ? AND status = 'open' THEN 'cap' ELSE end_reason END"
                " WHERE vendor_id = ? AND session_id = ? AND units_paid = ?",
                key,
            )

        self.vault.defer(write)
        session = replace(s, units_paid=unit_no, updated_at=now, status="ended" if ended else s.status,
                          end_reason="cap" if ended and s.status == "open" else s.end_reason)  # fmt: skip
        self._emit("metered_changed", session)
        self._emit("balance_changed")
        return self._answer(session, unit_no, token)

    def _caught_up(self, s: MeteredSession) -> MeteredSession:
        """The session with every unit whose payment settled counted (after a crash, or a unit recovered late)."""
        while s.units_paid < s.cap_units and self.vault.one(
            "SELECT 1 FROM spends WHERE vendor_id = ? AND quote_id = ? AND status = 'settled'",
            (s.vendor_id, f"{s.session_id}.{s.units_paid + 1}"),
        ):
            n = s.units_paid + 1
            with self.lock, self.vault.tx() as c:
                c.execute("UPDATE metered_sessions SET units_paid = ? WHERE session_id = ? AND units_paid = ?",
                          (n, s.session_id, n - 1))  # fmt: skip
            s = replace(s, units_paid=n)
        return s

    def _answer(self, s: MeteredSession, unit_no: int, token: str | None = None) -> UnitPaid:
        return UnitPaid(s.session_id, unit_no, token or self._token(s.session_id), s.units_paid, s.cap_units,
                        s.total, s.status != "open")  # fmt: skip

    # -- ending --------------------------------------------------------------------------------------------------
    def end(self, session_id: str, reason: str) -> MeteredSession:
        """End the session here first (nothing more is paid), then tell the shop (best effort)."""
        s = self._row(session_id)
        self._end(s, reason)
        if s.status == "open":
            self._tell_shop(s)
        return self.get(session_id)

    def _end(self, s: MeteredSession, reason: str) -> None:
        with self.lock, self.vault.tx() as c:
            changed = c.execute(
                "UPDATE metered_sessions SET status = 'ended', end_reason = ?, updated_at = ?"
                " WHERE vendor_id = ? AND session_id = ? AND status = 'open'",
                (reason, int(self.clock()), s.vendor_id, s.session_id),
            ).rowcount
        if changed:
            self._emit("metered_changed", self.get(s.session_id))

    def end_all(self, reason: str) -> builtins.list[tuple[str, str, str]]:
        """End every open session (the wallet locks); returns ``(api_url, session_id, token)`` to tell the shops."""
        out = []
        for s in self.list(open_only=True):
            self._end(s, reason)
            out.append((self._api_url(s), s.session_id, self._token(s.session_id)))
        return out

    def end_idle(self) -> int:
        """End the open sessions in which no unit was asked for in :data:`IDLE_END_S`."""
        cutoff = int(self.clock()) - IDLE_END_S
        stale = [s for s in self.list(open_only=True) if s.updated_at < cutoff]
        for s in stale:
            self.end(s.session_id, "idle")
        return len(stale)

    def _tell_shop(self, s: MeteredSession) -> None:
        # the wallet pays nothing more either way; the shop's session ends at its cap or its next refused quote
        with contextlib.suppress(NetPayError):
            self._client(self._api_url(s)).metered_end(s.session_id, self._token(s.session_id))

    # -- reading -------------------------------------------------------------------------------------------------
    def get(self, session_id: str) -> MeteredSession:
        return self._row(session_id)

    def list(self, open_only: bool = False) -> list[MeteredSession]:
        sql = "SELECT * FROM metered_sessions" + (" WHERE status = 'open'" if open_only else "")
        return [_view(r) for r in self.vault.query(sql + " ORDER BY created_at DESC")]

    def activity(self) -> builtins.list[ActivityEntry]:
        """One line per session: its units and total (the units' own spends are folded into it)."""
        out = []
        for s in self.list():
            units = f"{s.units_paid} unit{'s' if s.units_paid != 1 else ''} of {s.unit}"
            out.append(ActivityEntry(s.created_at, "metered", s.status, s.total, s.vendor_id, s.vendor_name,
                                     f"{s.title} · {units}", s.approved_via, s.session_id))  # fmt: skip
        return out

    def _row(self, session_id: str) -> MeteredSession:
        row = self.vault.one("SELECT * FROM metered_sessions WHERE session_id = ?", (session_id,))
        if row is None:
            raise NotFound("no such metered session", session_id=session_id)
        return _view(row)

    def _token(self, session_id: str) -> str:
        row = self.vault.one("SELECT access_token FROM metered_sessions WHERE session_id = ?", (session_id,))
        return str(row["access_token"])

    def _api_url(self, s: MeteredSession) -> str:
        row = self.vault.one("SELECT api_url_json FROM metered_sessions WHERE session_id = ?", (s.session_id,))
        return str(json.loads(row["api_url_json"]))


def _view(r: Any) -> MeteredSession:
    return MeteredSession(
        r["session_id"], r["vendor_id"], r["vendor_name"], r["origin"], r["item_id"], r["title"], r["unit"],
        r["unit_s"], Money(r["unit_amount"], r["currency"]), r["cap_units"], r["units_paid"], r["status"],
        r["end_reason"], r["approved_via"], r["created_at"], r["updated_at"],
    )  # fmt: skip

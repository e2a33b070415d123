"""Custody windows: which coins of a chain each custodian may redeem.

The broker keeps, per chain, the sequence of custodians (table ``custody``, one row per window, numbered by
``seq``). A window is the half-open index range ``(lower_index, upper]`` of coins its vendor may be paid for:

- ``lower_index`` is where the vendor took custody: the broker's lower bound of the chain's index when it claimed
  (``lower_source`` ``issued`` for the first custodian, ``reported`` after a hand-off), raised to the previous
  custodian's release index once that release is known (``release``); for a hosted e-wallet's grant, the start of
  the slice (``grant``).
- ``upper_index`` is where it gave custody up: NULL while it holds the chain; the broker's lower bound at the moment
  the next vendor claimed (``upper_source = 'handed'``) when no release is known; the ``last_index`` of the release
  it signed (``release``); or the final index of a closed chain (``closed``). A hosted e-wallet's grant opens its window
  with the top of the slice (``grant``): the vendor holds only the payword there, so it can take no coin above; when
  the grant ends with the vendor's release to the broker, the release's index (``release``).

A ``handed`` upper bound is not a limit: the vendor did not answer the release request, so it may honestly have
accepted coins above the index the broker handed on. Such a window reaches up to where the next window ends (the
next custodian's release, or the chain's end while the next custodian holds it). Where it overlaps the next window
and both vendors were paid for the same coins, the customer spent them twice (the overlap rule, in
:mod:`broker_stub.redemption`). ``release``, ``closed`` and ``grant`` upper bounds are hard: the vendor signed that it
stopped, or could not go on.

A hosted chain's custody is its grants (:mod:`broker_stub.hosted`): one window per grant, opened by
:func:`open_grant_window` and ended by :func:`end_grant_window`, and the same rules pay its coins as any chain's
(redemption inside the claimant's windows, the overlap rule, spend reports inside the reporter's windows).
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass

__all__ = [
    "HARD",
    "Window",
    "close_window",
    "covered",
    "effective_uppers",
    "end_grant_window",
    "load",
    "open_grant_window",
    "open_window",
    "outside",
    "record_release",
]

#: Upper bounds a window cannot reach over: the vendor released there, the chain closed there, or (a hosted grant)
#: the vendor was never given a payword above it.
HARD = ("release", "closed", "grant")

Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Window:
    """One custody window of a chain."""

    seq: int
    vendor_id: str
    lower: int
    lower_source: str
    upper: int | None
    upper_source: str | None

    def to_json(self, effective_upper: int) -> dict[str, object]:
        return {
            "window": self.seq,
            "vendor_id": self.vendor_id,
            "lower_index": self.lower,
            "lower_source": self.lower_source,
            "upper_index": self.upper,
            "upper_source": self.upper_source,
            "reaches": effective_upper,
        }


def load(c: sqlite3.Connection, cid: str) -> list[Window]:
    """The chain's windows, oldest first."""
    return [
        Window(int(r[0]), str(r[1]), int(r[2]), str(r[3]), None if r[4] is None else int(r[4]), r[5])
        for r in c.execute(
            "SELECT seq, vendor_id, lower_index, lower_source, upper_index, upper_source FROM custody "
            "WHERE chain_id = ? ORDER BY seq",
            (cid,),
        )
    ]


def effective_uppers(windows: list[Window], end: int) -> list[int]:
    """The highest index each window reaches (``end``: the chain's length, or its final index once closed)."""
    reach = [end] * len(windows)
    for i in range(len(windows) - 1, -1, -1):
        w = windows[i]
        if w.upper is None:
            reach[i] = end
        elif w.upper_source in HARD:
            reach[i] = min(w.upper, end)
        else:  # handed without a release: up to where the next window reaches
            reach[i] = max(min(w.upper, end), reach[i + 1] if i + 1 < len(windows) else end)
    return reach


def covered(windows: list[Window], reach: list[int], vendor_id: str, lo: int, hi: int) -> list[Range]:
    """The parts of coins ``(lo, hi]`` inside ``vendor_id``'s windows, merged, in order."""
    parts = sorted(
        (max(lo, w.lower), min(hi, r))
        for w, r in zip(windows, reach, strict=True)
        if w.vendor_id == vendor_id and max(lo, w.lower) < min(hi, r)
    )
    merged: list[Range] = []
    for a, b in parts:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def subtract(lo: int, hi: int, parts: list[Range]) -> list[Range]:
    """``(lo, hi]`` minus ``parts`` (sorted, disjoint, inside it)."""
    out: list[Range] = []
    at = lo
    for a, b in parts:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < hi:
        out.append((at, hi))
    return out


def outside(c: sqlite3.Connection, cid: str, end: int, vendor_id: str, lo: int, hi: int) -> list[Range]:
    """The parts of coins ``(lo, hi]`` outside ``vendor_id``'s windows of chain ``cid`` (``end`` as for
    :func:`effective_uppers`); empty when they are all its own."""
    wins = load(c, cid)
    return subtract(lo, hi, covered(wins, effective_uppers(wins, end), vendor_id, lo, hi))


def open_window(c: sqlite3.Connection, cid: str, vendor_id: str, lower: int, at: int) -> int:
    """Close the current window as handed on at ``lower`` and open one for ``vendor_id``; returns its number."""
    seq = int(c.execute("SELECT COALESCE(MAX(seq), 0) FROM custody WHERE chain_id = ?", (cid,)).fetchone()[0])
    if seq:
        c.execute(
            "UPDATE custody SET upper_index = ?, upper_source = 'handed' WHERE chain_id = ? AND seq = ? "
            "AND upper_index IS NULL",
            (lower, cid, seq),
        )
    c.execute(
        "INSERT INTO custody (chain_id, seq, vendor_id, claimed_at, lower_index, lower_source) VALUES (?,?,?,?,?,?)",
        (cid, seq + 1, vendor_id, at, lower, "reported" if seq else "issued"),
    )
    return seq + 1


def open_grant_window(c: sqlite3.Connection, cid: str, vendor_id: str, lower: int, upper: int, at: int) -> int:
    """A hosted grant of coins ``(lower, upper]`` to ``vendor_id``: a window with both bounds hard from the start (the
    previous grant of the chain has ended: with its vendor's release, or at its own top). Returns its number."""
    seq = int(c.execute("SELECT COALESCE(MAX(seq), 0) FROM custody WHERE chain_id = ?", (cid,)).fetchone()[0])
    c.execute(
        "INSERT INTO custody (chain_id, seq, vendor_id, claimed_at, lower_index, lower_source, upper_index, "
        "upper_source) VALUES (?,?,?,?,?,'grant',?,'grant')",
        (cid, seq + 1, vendor_id, at, lower, upper),
    )
    return seq + 1


def end_grant_window(c: sqlite3.Connection, cid: str, vendor_id: str, grant: Range, last_index: int) -> None:
    """The vendor of the grant of coins ``grant`` = (from, to] released the chain to the broker at ``last_index``
    (inside the slice, checked): the grant's window ends there, and the coins above are the hosted e-wallet's again."""
    lo, hi = grant
    if not lo <= last_index <= hi:
        raise ValueError("a release outside the grant's slice")
    changed = c.execute(
        "UPDATE custody SET upper_index = ?, upper_source = 'release' WHERE chain_id = ? AND vendor_id = ? "
        "AND lower_index = ? AND lower_source = 'grant' AND upper_index = ? AND upper_source = 'grant'",
        (last_index, cid, vendor_id, lo, hi),
    ).rowcount
    if changed != 1:  # the grant's window must end here, else its vendor could be paid above its release
        raise RuntimeError(f"chain {cid}: no open window of {vendor_id}'s grant ({lo}, {hi}]")


def close_window(c: sqlite3.Connection, cid: str, final_index: int) -> None:
    """The chain was closed at ``final_index``: the open window ends there."""
    c.execute(
        "UPDATE custody SET upper_index = ?, upper_source = 'closed' WHERE chain_id = ? AND upper_index IS NULL",
        (final_index, cid),
    )


def record_release(c: sqlite3.Connection, cid: str, released_by: str, released_to: str, last_index: int) -> str:
    """Bound the hand-off ``released_by`` → ``released_to`` by a release at ``last_index`` (its signature and
    payword already checked). Returns ``recorded``, ``known`` (the same release again) or the reason it does not fit:
    ``no_handoff`` (no such hand-off at or below that index), ``below_handed`` (below the index the broker handed
    on, which the releasing vendor's own reports had reached), ``conflicting`` (another release for that hand-off).
    """
    windows = load(c, cid)
    pairs = [
        (prev, nxt)
        for prev, nxt in itertools.pairwise(windows)
        if prev.vendor_id == released_by and nxt.vendor_id == released_to and prev.lower <= last_index
    ]
    if any(prev.upper_source == "release" and prev.upper == last_index for prev, _ in pairs):
        return "known"  # (a hand-off with no coin in between can share its index with a later one)
    open_pairs = [(prev, nxt) for prev, nxt in pairs if prev.upper_source not in HARD]
    if not open_pairs:
        return "conflicting" if pairs else "no_handoff"
    prev, nxt = open_pairs[-1]
    if prev.upper is not None and last_index < prev.upper:
        return "below_handed"
    c.execute(
        "UPDATE custody SET upper_index = ?, upper_source = 'release' WHERE chain_id = ? AND seq = ?",
        (last_index, cid, prev.seq),
    )
    c.execute(
        "UPDATE custody SET lower_index = ?, lower_source = 'release' WHERE chain_id = ? AND seq = ?",
        (last_index, cid, nxt.seq),
    )
    return "recorded"

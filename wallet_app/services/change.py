"""Exact change: which coins of which chains make a price exactly, or the proof that none do.

A chain of coin value ``v`` with ``r`` coins left can pay any multiple of ``v`` from ``v`` to ``r * v``. A payment
takes at most ``MAX_SEGMENTS`` chains. Among all exact combinations the wallet takes the cheapest, compared in this
order (the *selection rule*, docs/protocol.md §6):

1. the fewest chains another vendor holds (each one is a custody hand-off: a broker call and a release),
2. then the fewest chains nobody holds yet (each one is a custody claim at the broker),
3. then the fewest chains in all (fewer segments, a smaller payment);

and among equally cheap ones the first in the candidates' order (group, larger coin value first, more coins left
first, chain id): earlier chains are used before later ones, and an earlier chain carries as many coins as it can.

How: one chain the vendor holds that can pay alone is the best possible answer and is found without any search (the
payment hot path). Otherwise a dynamic programme over (chains used, amount) in units of the coin values' greatest
common divisor finds the cheapest combination; for each chain it keeps, per number of chains used and amount, the
least (hand-offs, claims). Per (group, coin value) only the chains with the most coins left are kept, as many as
together reach the price (never more than ``MAX_SEGMENTS``): any other combination can swap to those at no cost.
Cost: ``O(chains kept x MAX_SEGMENTS x price/gcd)`` steps, a few milliseconds for prices of a few euros in cents.
Prices above :data:`DP_LIMIT` units (EUR 200 in 1-cent units) are only paid from one chain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from math import gcd

from netpay.messages import MAX_SEGMENTS

__all__ = ["DP_LIMIT", "HELD", "OTHER", "UNHELD", "Candidate", "make_change", "suggest_coin_value"]

HELD, UNHELD, OTHER = 0, 1, 2  # who holds a chain: this vendor, nobody, another vendor
_COST = (0, 1, 9)  # (hand-offs, claims) as 9*hand-offs + claims: additive, ordered, claims <= 8 never carry
DP_LIMIT = 20_000
_INF = 1 << 30


@dataclass(frozen=True, slots=True)
class Candidate:
    """A chain that may pay: its id, coin value (minor units), coins left and who holds it (HELD/UNHELD/OTHER)."""

    key: str
    value: int
    left: int
    group: int

    def order(self) -> tuple[int, int, int, str]:
        return (self.group, -self.value, -self.left, self.key)


def make_change(
    candidates: Sequence[Candidate], price: int, max_segments: int = MAX_SEGMENTS
) -> list[tuple[Candidate, int]] | None:
    """The cheapest exact combination ``[(chain, coins), ...]`` (in candidate order) or ``None`` if none exists."""
    cands = sorted((c for c in candidates if c.left > 0 and c.value > 0), key=Candidate.order)
    if price <= 0 or not cands or max_segments <= 0:
        return None
    best_group = cands[0].group
    for c in cands:  # hot path: one chain of the best group present pays alone (nothing can be cheaper)
        if c.group != best_group:
            break
        if price % c.value == 0 and price // c.value <= c.left:
            return [(c, price // c.value)]
    g = 0
    for c in cands:
        g = gcd(g, c.value)
    if price % g:
        return None
    units = price // g
    if units > DP_LIMIT:
        return None
    return _search(_prune(cands, units, g, max_segments), units, g, max_segments)


def _prune(cands: list[Candidate], units: int, g: int, max_segments: int) -> list[Candidate]:
    """Per (group, value) the chains with most coins left until together they reach the price (order kept)."""
    kept: list[Candidate] = []
    reach: dict[tuple[int, int], tuple[int, int]] = {}  # (group, value) -> (coins so far, chains so far)
    for c in sorted(cands, key=lambda c: (c.group, -c.value, -c.left, c.key)):
        k = (c.group, c.value)
        coins, n = reach.get(k, (0, 0))
        if coins >= units // (c.value // g) or n >= max_segments:
            continue
        reach[k] = (coins + c.left, n + 1)
        kept.append(c)
    return kept


def _search(cands: list[Candidate], units: int, g: int, max_segments: int) -> list[tuple[Candidate, int]] | None:
    """best[n][s]: least cost of paying ``s`` units with exactly ``n`` chains among those seen so far."""
    best = [[_INF] * (units + 1) for _ in range(max_segments + 1)]
    best[0][0] = 0
    history: list[list[list[int]]] = []
    for i, c in enumerate(cands):
        v, w = c.value // g, _COST[c.group]
        cap = min(c.left, units // v)
        history.append(best)
        new = [row[:] for row in best]
        for n in range(min(i, max_segments - 1), -1, -1):
            _extend(best[n], new[n + 1], v, cap, w, units)
        best = new
    found = min(((best[n][units], n) for n in range(1, max_segments + 1)), default=(_INF, 0))
    if found[0] >= _INF:
        return None
    cost, n = found
    s = units
    picked: list[tuple[Candidate, int]] = []
    for i in range(len(cands) - 1, -1, -1):  # walk back: leave later chains out whenever that stays optimal
        prev, c = history[i], cands[i]
        if prev[n][s] == cost:
            continue
        v, w = c.value // g, _COST[c.group]
        for a in range(1, min(c.left, s // v) + 1):  # a later chain carries as few coins as it can
            if prev[n - 1][s - a * v] == cost - w:
                picked.append((c, a))
                n, s, cost = n - 1, s - a * v, cost - w
                break
        else:  # pragma: no cover - the tables say otherwise
            raise AssertionError("exact change: inconsistent tables")
    picked.reverse()
    return picked


def _extend(src: list[int], dst: list[int], v: int, cap: int, w: int, units: int) -> None:
    """dst[s] = min(dst[s], min(src[s - a*v] for 1 <= a <= cap) + w): a sliding minimum along each residue."""
    if cap <= 0:
        return
    for rho in range(v):
        if cap * v >= units:  # the chain covers the whole stride: a running minimum
            low = _INF
            prev = src[rho]
            for s in range(rho + v, units + 1, v):
                if prev < low:
                    low = prev
                if low + w < dst[s]:
                    dst[s] = low + w
                prev = src[s]
            continue
        window: deque[tuple[int, int]] = deque()  # (t, value), values increasing
        for t, s in enumerate(range(rho + v, units + 1, v), start=1):
            val = src[s - v]
            while window and window[-1][1] >= val:
                window.pop()
            window.append((t - 1, val))
            while window[0][0] < t - cap:
                window.popleft()
            low = window[0][1]
            if low + w < dst[s]:
                dst[s] = low + w


def suggest_coin_value(
    candidates: Sequence[Candidate], price: int, offered: Sequence[int], max_segments: int = MAX_SEGMENTS
) -> int | None:
    """The smallest coin value among ``offered`` whose new chain (long enough, held by nobody) would make the price
    payable together with ``candidates``; ``None`` if none would."""
    for value in sorted(set(v for v in offered if v > 0)):
        extra = Candidate("\uffff-new", value, max(1, price // value), UNHELD)
        if make_change([*candidates, extra], price, max_segments) is not None:
            return value
    return None

"""Protocol-core benchmarks: chain creation, traversal bounds, and payment verification.

- ``chain_create_ratio``: creating a 2^20 chain ÷ a bare ``hashlib.sha256`` loop of 2^20 steps (the median of
  the ratios of adjacent pairs, interleaved).
- ``traversal_max_hashes`` / ``traversal_max_stored``: counted (not timed) over every step of a 2^20 chain.
- ``verify_10_coins_ratio``: verifying a 10-coin payment ÷ ten bare hashes plus one constant-time compare.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import time
from collections.abc import Callable

from netpay.chain import new_chain_id, verify_paywords
from netpay.traversal import create_chain

N = 2**20


def _median_time(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bare_loop(steps: int) -> bytes:
    sha, x = hashlib.sha256, b"\x00" * 32
    for _ in range(steps):
        x = sha(x).digest()
    return x


def chain_create_ratio(reps: int = 7) -> tuple[float, float]:
    """Median over ``reps`` adjacent pairs of (our 2^20 chain ÷ the bare loop right beside it), the pair's order
    alternating: a burst of load on this shared machine (it slowed single runs by 40%) then lands in one pair's
    ratio, not in the median of one side only (five runs per side, each side's median taken apart, missed the
    target in two of fifteen full runs on a quiet code path)."""
    ratios, ours = [], []
    for i in range(reps):
        if i % 2:
            o = _median_time(lambda: create_chain(new_chain_id(), N), 1)
            b = _median_time(lambda: _bare_loop(N), 1)
        else:
            b = _median_time(lambda: _bare_loop(N), 1)
            o = _median_time(lambda: create_chain(new_chain_id(), N), 1)
        ratios.append(o / b)
        ours.append(o)
    return statistics.median(ratios), statistics.median(ours)


def traversal_bounds() -> tuple[int, int, float]:
    _, walker = create_chain(new_chain_id(), N)
    max_hashes = max_stored = 0
    t0 = time.perf_counter()
    for _ in range(N):
        max_stored = max(max_stored, walker.stored_values)
        walker.next()
        max_hashes = max(max_hashes, walker.last_step_hashes)
    per_step_us = (time.perf_counter() - t0) / N * 1e6
    return max_hashes, max_stored, per_step_us


def verify_ratio(calls: int = 20000, reps: int = 7) -> float:
    chain_id = new_chain_id()
    touchstone, walker = create_chain(chain_id, 1000)
    index, payword = walker.advance(10)

    def bare() -> None:
        sha, cmp = hashlib.sha256, hmac.compare_digest
        for _ in range(calls):
            x = payword
            for _ in range(10):
                x = sha(x).digest()
            cmp(x, touchstone)

    def ours() -> None:
        for _ in range(calls):
            verify_paywords(chain_id, 0, touchstone, index, payword)

    b, o = [], []
    for _ in range(reps):
        b.append(_median_time(bare, 1))
        o.append(_median_time(ours, 1))
    return statistics.median(o) / statistics.median(b)


def run() -> dict[str, float | int]:
    ratio, seconds = chain_create_ratio()
    max_hashes, max_stored, step_us = traversal_bounds()
    return {
        "chain_create_ratio": round(ratio, 3),
        "chain_create_2_20_seconds": round(seconds, 3),
        "traversal_max_hashes": max_hashes,
        "traversal_max_stored": max_stored,
        "traversal_step_us": round(step_us, 2),
        "verify_10_coins_ratio": round(verify_ratio(), 3),
    }

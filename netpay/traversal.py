"""In-order payword traversal with O(log n) storage and O(log n) hashes per step.

Yields W_1, W_2, ..., W_n of a chain while keeping only a logarithmic set of pebbles. This is binary pebbling
with the work spread out (in the spirit of Jakobsson's fractal traversal): view positions 1..n as nested blocks of
2^j positions. At the start of every block B of level j >= 1 a *job* starts at the right end of the block after
B and walks 2^(j-1) hashes down to the right end of that block's left half, one hash per output. It finishes
exactly when the output reaches the middle of B, which is when the level j-1 job that needs its result starts.

For n = 2^k this costs at most k-1 hashes for any single step and stores at most 2k values; the benchmark counts
both over a whole 2^20 chain. The state serialises to bytes after any step and resumes exactly.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES, ChainHasher, new_seed
from netpay.errors import MalformedMessage, NetPayError

__all__ = ["ChainExhausted", "PaywordTraversal", "create_chain"]

_MAGIC = b"NPT1"
_HEAD = struct.Struct(">4s16sIIHH")
_PEBBLE = struct.Struct(">I32s")
_JOB = struct.Struct(">I32sI")


class ChainExhausted(NetPayError):
    """Every payword of the chain has been produced."""

    code = "chain_exhausted"
    http_status = 409
    default_message = "chain has no coins left"


@dataclass(slots=True)
class _Job:
    pos: int  # position of ``value``
    value: bytes
    target: int  # stop when pos reaches this


def _levels(n: int) -> int:
    return max(1, (n - 1).bit_length())


class PaywordTraversal:
    """Produces the paywords of one chain in order, W_1 first. ``position`` is the index of the last one given."""

    __slots__ = ("_hasher", "_jobs", "_k", "_pebbles", "chain_id", "last_step_hashes", "length", "position")

    def __init__(self, chain_id: bytes, length: int, position: int, pebbles: dict[int, bytes], jobs: list[_Job]):
        self.chain_id = chain_id
        self.length = length
        self.position = position  # coins produced so far; the next payword is W_{position+1}
        self._pebbles = pebbles
        self._jobs = jobs
        self._hasher = ChainHasher(chain_id)
        self._k = _levels(length)
        self.last_step_hashes = 0

    @classmethod
    def _fresh(cls, chain_id: bytes, length: int, pebbles: dict[int, bytes]) -> PaywordTraversal:
        t = cls(chain_id, length, 0, pebbles, [])
        t._start_jobs(1)
        return t

    @property
    def remaining(self) -> int:
        return self.length - self.position

    @property
    def stored_values(self) -> int:
        """How many 32-byte values the state holds right now (pebbles plus jobs in progress)."""
        return len(self._pebbles) + len(self._jobs)

    def _start_jobs(self, p: int) -> None:
        """Start the jobs of every block of level >= 1 that begins at position ``p``."""
        s = p - 1
        n = self.length
        top = (s & -s).bit_length() - 1 if s else self._k
        for j in range(1, min(top, self._k - 1) + 1):
            if s + (1 << j) + 1 > n:  # no block after this one
                continue
            src = min(s + (2 << j), n)
            tgt = min(s + 3 * (1 << (j - 1)), n)
            if tgt < src:
                self._jobs.append(_Job(src, self._pebbles[src], tgt))

    def next(self) -> tuple[int, bytes]:
        """Return ``(index, W_index)`` for the next coin and advance. Raises :class:`ChainExhausted` at the end."""
        p = self.position + 1
        if p > self.length:
            raise ChainExhausted()
        value = self._pebbles.pop(p)
        step = self._hasher.step
        done = False
        for job in self._jobs:
            job.pos -= 1
            job.value = step(job.pos, job.value)
            if job.pos == job.target:
                self._pebbles[job.pos] = job.value
                done = True
        self.last_step_hashes = len(self._jobs)
        if done:
            self._jobs = [j for j in self._jobs if j.pos != j.target]
        self.position = p
        if p < self.length:
            self._start_jobs(p + 1)
        return p, value

    def advance(self, coins: int) -> tuple[int, bytes]:
        """Skip ``coins`` paywords and return the last, ``(position + coins, W_{position + coins})``."""
        if coins < 1:
            raise ValueError("advance needs at least one coin")
        if coins > self.remaining:
            raise ChainExhausted(f"only {self.remaining} coins left, {coins} asked")
        result = self.next()
        for _ in range(coins - 1):
            result = self.next()
        return result

    def to_bytes(self) -> bytes:
        """Serialise the exact state; :meth:`from_bytes` resumes it identically."""
        parts = [_HEAD.pack(_MAGIC, self.chain_id, self.length, self.position, len(self._pebbles), len(self._jobs))]
        parts.extend(_PEBBLE.pack(pos, val) for pos, val in sorted(self._pebbles.items()))
        parts.extend(_JOB.pack(j.pos, j.value, j.target) for j in self._jobs)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> PaywordTraversal:
        """Rebuild a traversal from :meth:`to_bytes`; damaged input raises :class:`MalformedMessage`."""
        try:
            magic, chain_id, length, position, npeb, njob = _HEAD.unpack_from(data, 0)
        except struct.error:
            raise MalformedMessage("traversal state is truncated") from None
        expected = _HEAD.size + npeb * _PEBBLE.size + njob * _JOB.size
        if magic != _MAGIC or len(data) != expected:
            raise MalformedMessage("traversal state is damaged")
        if not 1 <= length <= MAX_CHAIN_LENGTH or position > length or npeb > 64 or njob > 64:
            raise MalformedMessage("traversal state is out of range")
        off = _HEAD.size
        pebbles: dict[int, bytes] = {}
        for _ in range(npeb):
            pos, val = _PEBBLE.unpack_from(data, off)
            off += _PEBBLE.size
            if not position < pos <= length:
                raise MalformedMessage("traversal state has a pebble out of range")
            pebbles[pos] = val
        jobs: list[_Job] = []
        for _ in range(njob):
            pos, val, target = _JOB.unpack_from(data, off)
            off += _JOB.size
            if not position < target < pos <= length:
                raise MalformedMessage("traversal state has a job out of range")
            jobs.append(_Job(pos, val, target))
        if position < length and position + 1 not in pebbles:
            raise MalformedMessage("traversal state is inconsistent")
        return cls(chain_id, length, position, pebbles, jobs)


def create_chain(chain_id: bytes, length: int, seed: bytes | None = None) -> tuple[bytes, PaywordTraversal]:
    """Make a chain: return its touchstone W_0 and a traversal positioned before W_1.

    Costs ``length`` hashes; pebbles are recorded at positions 1, 2, 4, ... and ``length`` on the way down.
    """
    if type(length) is not int or not 1 <= length <= MAX_CHAIN_LENGTH:
        raise MalformedMessage(f"chain length must be from 1 to {MAX_CHAIN_LENGTH}")
    if len(chain_id) != CHAIN_ID_BYTES:
        raise MalformedMessage(f"a chain id is {CHAIN_ID_BYTES} bytes")
    seed = new_seed() if seed is None else seed
    if len(seed) != PAYWORD_BYTES:
        raise MalformedMessage(f"a seed is {PAYWORD_BYTES} bytes")
    hasher = ChainHasher(chain_id)
    marks = sorted({min(1 << j, length) for j in range(_levels(length) + 1)}, reverse=True)
    pebbles = {length: seed}
    value, pos = seed, length
    for mark in [*marks, 0]:
        if mark < pos:
            value = hasher.walk(value, pos, mark)
            pos = mark
        if mark:
            pebbles[mark] = value
    return value, PaywordTraversal._fresh(chain_id, length, pebbles)

"""Payword hash chains.

A chain of length n is W_n (the random seed) ... W_1, W_0 with::

    W_i = SHA-256("NPW" || chain_id || u32be(i) || W_{i+1})        for i = n-1 .. 0

so a value of one chain, or of one position, is useless at another. W_0 is the touchstone the broker certifies;
coin k is W_k; paying coins I+1 .. I+c reveals W_{I+c}, which anyone holding W_I checks with c hashes. The whole hash
input is 55 bytes, one SHA-256 block, so a step costs one compression like a bare hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from functools import lru_cache

from netpay.errors import InvalidPayword, MalformedMessage

__all__ = [
    "CHAIN_ID_BYTES",
    "DEFAULT_CHAIN_LENGTH",
    "MAX_CHAIN_LENGTH",
    "PAYWORD_BYTES",
    "ChainHasher",
    "new_chain_id",
    "new_seed",
    "verify_paywords",
]

CHAIN_ID_BYTES = 16
PAYWORD_BYTES = 32
MAX_CHAIN_LENGTH = 2**20
DEFAULT_CHAIN_LENGTH = 10_000
DOMAIN = b"NPW"

_pack_index = struct.Struct(">I").pack
_sha256 = hashlib.sha256
_compare = hmac.compare_digest


@lru_cache(maxsize=8192)
def _prefix_state(chain_id: bytes) -> hashlib._Hash:
    """SHA-256 state after absorbing ``"NPW" || chain_id``; copied for every step of that chain."""
    return _sha256(DOMAIN + chain_id)


def new_chain_id() -> bytes:
    """A fresh random 128-bit chain id."""
    return secrets.token_bytes(CHAIN_ID_BYTES)


def new_seed() -> bytes:
    """A fresh random 32-byte seed W_n."""
    return secrets.token_bytes(PAYWORD_BYTES)


class ChainHasher:
    """The hash function of one chain: ``W_i`` from ``W_{i+1}``, and walks over many positions."""

    __slots__ = ("_base", "chain_id")

    def __init__(self, chain_id: bytes) -> None:
        if not isinstance(chain_id, bytes) or len(chain_id) != CHAIN_ID_BYTES:
            raise MalformedMessage(f"a chain id is {CHAIN_ID_BYTES} bytes")
        self.chain_id = chain_id
        self._base = _prefix_state(chain_id)

    def step(self, index: int, upper: bytes) -> bytes:
        """W_index, computed from W_{index+1} = ``upper``."""
        h = self._base.copy()
        h.update(_pack_index(index) + upper)
        return h.digest()

    def walk(self, value: bytes, high: int, low: int) -> bytes:
        """W_low from W_high = ``value`` (``high - low`` hashes; ``low <= high``)."""
        copy = self._base.copy
        pack = _pack_index
        for i in range(high - 1, low - 1, -1):
            h = copy()
            h.update(pack(i) + value)
            value = h.digest()
        return value


def verify_paywords(chain_id: bytes, known_index: int, known_value: bytes, new_index: int, new_value: bytes) -> None:
    """Check that ``new_value`` is W_new_index of the chain whose W_known_index is ``known_value``.

    Costs ``new_index - known_index`` hashes and one constant-time compare. Raises :class:`InvalidPayword`.
    """
    if not known_index < new_index <= MAX_CHAIN_LENGTH:
        raise InvalidPayword(f"index {new_index} is not above the known index {known_index}")
    if len(new_value) != PAYWORD_BYTES or len(chain_id) != CHAIN_ID_BYTES:
        raise InvalidPayword("a payword is 32 bytes and a chain id 16")
    copy = _prefix_state(chain_id).copy
    pack = _pack_index
    value = new_value
    for i in range(new_index - 1, known_index - 1, -1):
        h = copy()
        h.update(pack(i) + value)
        value = h.digest()
    if not _compare(value, known_value):
        raise InvalidPayword(f"payword at index {new_index} does not hash back to index {known_index}")

"""Payword chains: hashing, verification of any split, and rejection of anything altered."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpay.chain import ChainHasher, new_chain_id, new_seed, verify_paywords
from netpay.errors import InvalidPayword, MalformedMessage
from netpay.traversal import create_chain


def naive_chain(chain_id: bytes, seed: bytes, n: int) -> list[bytes]:
    """W_0 .. W_n computed straight from the definition with hashlib, independently of ChainHasher."""
    values = [b""] * (n + 1)
    values[n] = seed
    for i in range(n - 1, -1, -1):
        values[i] = hashlib.sha256(b"NPW" + chain_id + struct.pack(">I", i) + values[i + 1]).digest()
    return values


def test_step_matches_the_definition() -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, 5)
    hasher = ChainHasher(chain_id)
    assert hasher.step(4, seed) == values[4]
    assert hasher.walk(seed, 5, 0) == values[0]


def test_create_chain_returns_the_touchstone() -> None:
    chain_id, seed = new_chain_id(), new_seed()
    touchstone, _ = create_chain(chain_id, 300, seed)
    assert touchstone == naive_chain(chain_id, seed, 300)[0]


def test_chain_id_and_position_are_bound_into_every_hash() -> None:
    seed = new_seed()
    a, b = new_chain_id(), new_chain_id()
    assert ChainHasher(a).step(3, seed) != ChainHasher(b).step(3, seed)
    assert ChainHasher(a).step(3, seed) != ChainHasher(a).step(4, seed)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), cuts=st.lists(st.integers(1, 300), max_size=12))
def test_any_split_of_a_chain_verifies_in_order(n: int, cuts: list[int]) -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, n)
    points = sorted({c for c in cuts if c < n} | {n})
    known_index, known = 0, values[0]
    for point in points:
        verify_paywords(chain_id, known_index, known, point, values[point])
        known_index, known = point, values[point]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 200), data=st.data())
def test_a_flipped_byte_in_a_payword_fails(n: int, data: st.DataObject) -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, n)
    index = data.draw(st.integers(1, n))
    byte = data.draw(st.integers(0, 31))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(values[index])
    bad[byte] ^= 1 << bit
    with pytest.raises(InvalidPayword):
        verify_paywords(chain_id, 0, values[0], index, bytes(bad))


def test_a_payword_of_another_chain_or_position_fails() -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, 20)
    with pytest.raises(InvalidPayword):
        verify_paywords(new_chain_id(), 0, values[0], 5, values[5])
    with pytest.raises(InvalidPayword):
        verify_paywords(chain_id, 0, values[0], 6, values[5])


@pytest.mark.parametrize(("known", "new"), [(5, 5), (5, 4), (0, 2**20 + 1)])
def test_indexes_must_move_forward_within_bounds(known: int, new: int) -> None:
    with pytest.raises(InvalidPayword):
        verify_paywords(new_chain_id(), known, new_seed(), new, new_seed())


@pytest.mark.parametrize("chain_id", [b"", b"x" * 15, b"x" * 17])
def test_chain_ids_are_sixteen_bytes(chain_id: bytes) -> None:
    with pytest.raises(MalformedMessage):
        ChainHasher(chain_id)


@pytest.mark.parametrize("length", [0, -1, 2**20 + 1])
def test_chain_length_is_bounded(length: int) -> None:
    with pytest.raises(MalformedMessage):
        create_chain(new_chain_id(), length)

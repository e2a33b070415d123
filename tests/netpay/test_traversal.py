"""The pebbled traversal yields exactly the naive chain, within its hash and storage bounds, and resumes exactly."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpay.chain import new_chain_id, new_seed
from netpay.errors import MalformedMessage
from netpay.traversal import ChainExhausted, PaywordTraversal, create_chain
from tests.netpay.test_chain import naive_chain


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 4096))
def test_traversal_equals_the_naive_chain(n: int) -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, n)
    touchstone, walker = create_chain(chain_id, n, seed)
    assert touchstone == values[0]
    for i in range(1, n + 1):
        assert walker.next() == (i, values[i])
    with pytest.raises(ChainExhausted):
        walker.next()


def test_small_chains_exhaustively() -> None:
    for n in range(1, 130):
        chain_id, seed = new_chain_id(), new_seed()
        values = naive_chain(chain_id, seed, n)
        _, walker = create_chain(chain_id, n, seed)
        assert [walker.next()[1] for _ in range(n)] == values[1:]


@pytest.mark.slow
def test_full_length_chain_at_sampled_positions_within_bounds() -> None:
    n = 2**20
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, n)
    samples = {1, 2, 3, n // 2, n // 2 + 1, n - 1, n, *random.Random(7).sample(range(1, n + 1), 200)}
    _, walker = create_chain(chain_id, n, seed)
    max_hashes = max_stored = 0
    for i in range(1, n + 1):
        max_stored = max(max_stored, walker.stored_values)
        index, value = walker.next()
        max_hashes = max(max_hashes, walker.last_step_hashes)
        if i in samples:
            assert (index, value) == (i, values[i])
    assert max_hashes <= 20
    assert max_stored <= 40


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 3000), data=st.data())
def test_saved_state_resumes_identically(n: int, data: st.DataObject) -> None:
    chain_id = new_chain_id()
    _, walker = create_chain(chain_id, n)
    stop = data.draw(st.integers(0, n - 1))
    if stop:
        walker.advance(stop)
    saved = walker.to_bytes()
    restored = PaywordTraversal.from_bytes(saved)
    assert restored.to_bytes() == saved
    assert [restored.next() for _ in range(n - stop)] == [walker.next() for _ in range(n - stop)]


def test_advance_returns_the_last_payword_and_refuses_overdraw() -> None:
    chain_id, seed = new_chain_id(), new_seed()
    values = naive_chain(chain_id, seed, 50)
    _, walker = create_chain(chain_id, 50, seed)
    assert walker.advance(10) == (10, values[10])
    assert walker.remaining == 40
    with pytest.raises(ChainExhausted):
        walker.advance(41)
    assert walker.position == 10  # a refused advance moves nothing
    with pytest.raises(ValueError):
        walker.advance(0)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_damaged_state_is_refused(data: st.DataObject) -> None:
    _, walker = create_chain(new_chain_id(), 500)
    walker.advance(37)
    blob = bytearray(walker.to_bytes())
    kind = data.draw(st.sampled_from(["truncate", "extend", "magic", "counts", "position"]))
    if kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "extend":
        blob += b"\x00"
    elif kind == "magic":
        blob[0] ^= 0xFF
    elif kind == "counts":
        blob[28] ^= 0x01  # pebble count
    else:
        blob[24:28] = (10**6).to_bytes(4, "big")  # position beyond the length
    with pytest.raises(MalformedMessage):
        PaywordTraversal.from_bytes(bytes(blob))

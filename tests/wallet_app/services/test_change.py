"""Exact change (wallet_app/services/change.py) against brute force on small instances, plus the issue's cases."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wallet_app.services.change import HELD, OTHER, UNHELD, Candidate, make_change, suggest_coin_value


def _cost(used: list[tuple[Candidate, int]]) -> tuple[int, int, int]:
    return (
        sum(1 for c, _ in used if c.group == OTHER),
        sum(1 for c, _ in used if c.group == UNHELD),
        len(used),
    )


def _brute(cands: list[Candidate], price: int, max_segments: int) -> tuple[int, int, int] | None:
    """The least cost of any exact combination, by trying every count on every chain."""
    best = None
    for counts in itertools.product(*(range(c.left + 1) for c in cands)):
        used = [(c, a) for c, a in zip(cands, counts, strict=True) if a]
        if not used or len(used) > max_segments or sum(c.value * a for c, a in used) != price:
            continue
        cost = _cost(used)
        if best is None or cost < best:
            best = cost
    return best


chains = st.lists(
    st.builds(
        Candidate,
        key=st.text("abcdef", min_size=1, max_size=3),
        value=st.sampled_from([1, 2, 3, 5, 10]),
        left=st.integers(0, 4),
        group=st.sampled_from([HELD, UNHELD, OTHER]),
    ),
    max_size=5,
    unique_by=lambda c: c.key,
)


@settings(max_examples=400, deadline=None)
@given(chains, st.integers(1, 40), st.integers(1, 4))
def test_found_whenever_brute_force_finds_one(cands: list[Candidate], price: int, max_segments: int) -> None:
    got = make_change(cands, price, max_segments)
    want = _brute(cands, price, max_segments)
    if want is None:
        assert got is None
        return
    assert got is not None, f"missed {want} for {price} from {cands}"
    assert sum(c.value * a for c, a in got) == price  # exact
    assert len(got) <= max_segments and len({c.key for c, _ in got}) == len(got)
    assert all(1 <= a <= c.left for c, a in got)  # never overdraws a chain
    assert _cost(got) == want  # as cheap as the best: hand-offs, then claims, then chains
    assert make_change(list(reversed(cands)), price, max_segments) == got  # deterministic, whatever the order


@settings(max_examples=100, deadline=None)
@given(chains, st.integers(1, 40))
def test_suggested_value_makes_the_price_payable(cands: list[Candidate], price: int) -> None:
    value = suggest_coin_value(cands, price, [1, 2, 5, 10])
    assert value is not None  # a 1-cent chain always can
    extra = Candidate("new", value, price // value, UNHELD)
    assert make_change([*cands, extra], price) is not None
    for smaller in (v for v in (1, 2, 5, 10) if v < value):
        assert make_change([*cands, Candidate("new", smaller, price // smaller, UNHELD)], price) is None


def test_the_two_cases_of_issue_15() -> None:
    twos = [Candidate("two", 2, 10, UNHELD)]  # EUR 0.20 in 2-cent coins
    assert make_change(twos, 5) is None  # 5 is odd: no combination
    assert suggest_coin_value(twos, 5, [1, 2, 5, 10]) == 1
    got = make_change([Candidate("five", 5, 10, UNHELD), Candidate("two", 2, 10, UNHELD)], 6)
    assert got is not None and [(c.key, a) for c, a in got] == [("two", 3)]


def test_across_1_2_5_10_cent_chains() -> None:
    cands = [Candidate("ten", 10, 3, UNHELD), Candidate("five", 5, 1, UNHELD), Candidate("two", 2, 2, UNHELD),
             Candidate("one", 1, 1, UNHELD)]  # fmt: skip
    for price in range(1, 45):
        got = make_change(cands, price)
        assert (got is not None) == (_brute(cands, price, 8) is not None)
        if got:
            assert sum(c.value * a for c, a in got) == price


def test_prefers_the_chain_the_vendor_holds_then_fewest_chains() -> None:
    held = Candidate("held", 1, 100, HELD)
    fresh = Candidate("fresh", 5, 100, UNHELD)
    elsewhere = Candidate("elsewhere", 5, 100, OTHER)
    assert [c.key for c, _ in make_change([fresh, held, elsewhere], 10) or []] == ["held"]
    assert [c.key for c, _ in make_change([fresh, elsewhere], 10) or []] == ["fresh"]
    # two chains the vendor holds beat one custody claim
    got = make_change([Candidate("h5", 5, 1, HELD), Candidate("h2", 2, 1, HELD), fresh], 7)
    assert got is not None and {c.key for c, _ in got} == {"h5", "h2"}


def test_long_chains_and_larger_prices_stay_fast() -> None:
    cands = [Candidate(f"c{i}", v, 1_000_000, i % 3) for i, v in enumerate([2, 5, 10, 2, 5, 10])]
    got = make_change([Candidate("odd", 3, 1, HELD), *cands], 9_999)
    assert got is not None and sum(c.value * a for c, a in got) == 9_999
    assert make_change(cands, 9_999) is not None  # 5 + 2 * 4_997
    evens = [c for c in cands if c.value % 2 == 0]
    assert make_change(evens, 9_999) is None  # proven at once: every coin is even


# ----- ChainBook.pick on a real vault ---------------------------------------------------------------------------
def _vault_book(tmp_path: Any) -> Any:
    from tests.support.wallet import new_wallet

    wallet = new_wallet(tmp_path / "w")
    with wallet.vault.tx() as c:
        c.execute("INSERT INTO brokers VALUES ('b', 'http://127.0.0.1:9', 'b', '00', '{}', 1, 0)")
    return wallet


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, 5, 10]),  # coin value
            st.integers(1, 5),  # length
            st.integers(0, 5),  # position
            st.sampled_from([None, "shop", "other"]),  # holder
            st.sampled_from(["ok", "refused", "revoked", "returned", "resync"]),
        ),
        max_size=5,
    ),
    st.integers(1, 30),
)
def test_pick_on_a_vault_skips_what_it_must_and_finds_what_exists(tmp_path_factory: Any, rows: Any, price: int) -> None:
    import secrets

    from netpay.errors import InsufficientCoins
    from netpay.money import Money
    from netpay.traversal import create_chain

    wallet = _vault_book(tmp_path_factory.mktemp("pick"))
    try:
        usable, revoked = [], set()
        with wallet.vault.tx() as c:
            for i, (value, length, position, holder, fate) in enumerate(rows):
                cid = secrets.token_hex(16)
                _, t = create_chain(bytes.fromhex(cid), length, b"\0" * 32)
                c.execute(
                    """INSERT INTO chains (chain_id, broker_id, length, coin_amount, currency, seed, traversal,
                       position, idempotency_key, request_json, status, holder, needs_resync, created_at)
                       VALUES (?, 'b', ?, ?, 'EUR', ?, ?, ?, ?, '{}', ?, ?, ?, ?)""",
                    (cid, length, value, b"\0" * 32, t.to_bytes(), min(position, length), cid,
                     "returned" if fate == "returned" else "active", holder, int(fate == "resync"), i),
                )  # fmt: skip
                if fate == "refused":
                    wallet.chains.refused(c, cid, "shop", "custody_conflict", "p", 0)
                elif fate == "revoked":
                    revoked.add(cid)
                elif fate == "ok" and min(position, length) < length:
                    group = HELD if holder == "shop" else UNHELD if holder is None else OTHER
                    usable.append(Candidate(cid, value, length - min(position, length), group))
        want = _brute(usable, price, 8)
        try:
            picks = wallet.chains.pick("b", Money(price, "EUR"), "shop", 0, revoked)
        except InsufficientCoins as exc:
            assert want is None
            assert exc.details["reason"] in ("short", "no_exact_change")
            return
        assert want is not None
        by_id = {c.key: c for c in usable}
        assert all(p.chain_id in by_id and 1 <= p.coins <= by_id[p.chain_id].left for p in picks)
        assert sum(p.coins * p.coin_value.amount for p in picks) == price
        assert _cost([(by_id[p.chain_id], p.coins) for p in picks]) == want
    finally:
        wallet.close()

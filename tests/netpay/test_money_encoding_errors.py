"""Money arithmetic, strict JSON, and the error hierarchy's round trip through HTTP bodies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from netpay import errors
from netpay.encoding import canonical_json, parse_json
from netpay.errors import CurrencyMismatch, MalformedMessage, NetPayError, error_from_body
from netpay.money import MAX_AMOUNT, Money


def test_money_adds_and_compares_within_one_currency() -> None:
    assert Money(5, "EUR") + Money(7, "EUR") == Money(12, "EUR")
    assert Money(5, "EUR") * 3 == Money(15, "EUR")
    assert Money(5, "EUR") < Money(6, "EUR")
    assert Money(1234567, "EUR").format() == "€12,345.67"
    assert Money(5, "JPY").format() == "¥5"
    assert Money(-5, "CHF").format() == "-0.05 CHF"


@pytest.mark.parametrize("op", ["add", "sub", "lt", "ge"])
def test_mixing_currencies_is_an_error(op: str) -> None:
    a, b = Money(5, "EUR"), Money(5, "USD")
    with pytest.raises(CurrencyMismatch):
        {"add": lambda: a + b, "sub": lambda: a - b, "lt": lambda: a < b, "ge": lambda: a >= b}[op]()


@pytest.mark.parametrize("amount", [1.0, True, "5", MAX_AMOUNT + 1, None])
def test_money_is_integer_minor_units_only(amount: object) -> None:
    with pytest.raises(MalformedMessage):
        Money(amount, "EUR")  # type: ignore[arg-type]


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(MalformedMessage):
        Money(1, "eur")


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=8),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
        max_leaves=20,
    )
)
def test_canonical_json_round_trips(value: object) -> None:
    encoded = canonical_json(value)
    assert parse_json(encoded) == value
    assert canonical_json(parse_json(encoded)) == encoded


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@pytest.mark.parametrize(
    "text", ['{"a": 1.5}', '{"a": NaN}', '{"a": 1, "a": 2}', "{", "", '{"a": Infinity}', "[" * 100 + "]" * 100]
)
def test_parse_json_is_strict(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_json(text)


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(MalformedMessage):
        canonical_json({"x": 0.1})


def _all_error_classes() -> list[type[NetPayError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, NetPayError)]


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.code)
def test_every_error_survives_the_wire(cls: type[NetPayError]) -> None:
    exc = cls("something specific", field="x")
    back = error_from_body(exc.to_body(), exc.http_status)
    assert type(back) is cls
    assert back.message == "something specific"
    assert back.details == {"field": "x"}


def test_codes_are_unique_and_statuses_are_http() -> None:
    classes = _all_error_classes()
    assert len({c.code for c in classes}) == len(classes)
    assert all(400 <= c.http_status < 600 for c in classes)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [("<html>", 404, "not_found"), ({"error": {"code": "nope"}}, 400, "malformed"), (None, 502, "unavailable")],
)
def test_unknown_error_bodies_map_to_a_generic_error(body: object, status: int, code: str) -> None:
    assert error_from_body(body, status).code == code


@pytest.mark.parametrize("data", [b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'["x\xed\xa0\x80"]', '["\\uDC00"]'])
def test_parse_json_refuses_lone_surrogates(data: bytes | str) -> None:
    with pytest.raises(MalformedMessage):
        parse_json(data)


def test_parse_json_keeps_surrogate_pairs_and_escaped_backslashes() -> None:
    assert parse_json(b'["\\ud83d\\ude00", "\\\\ud800"]') == ["\U0001f600", "\\ud800"]


_LEAVES = (
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64) | st.floats() | st.text(max_size=3)
    | st.binary(max_size=2)
)  # fmt: skip


@given(
    st.recursive(
        _LEAVES,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3) | st.integers(-2, 2), inner, max_size=4)
        ),
        max_leaves=40,
    ),
    st.integers(min_value=0, max_value=34),
)
@example({"": ""}, 32)
@example(["", 1], 32)
@example({"": ""}, 31)
@example({"": 2**63}, 0)
def test_the_fast_check_agrees_with_the_plain_rules(value: Any, depth: int) -> None:
    """canonical_json's check takes shortcuts for common leaves; it must accept and refuse exactly what the
    plain rules do, at every depth."""
    from netpay.encoding import _check, _check_general

    def outcome(check: Any) -> str | None:
        try:
            check(value, depth)
        except MalformedMessage as exc:
            return exc.message
        return None

    assert outcome(_check) == outcome(_check_general)

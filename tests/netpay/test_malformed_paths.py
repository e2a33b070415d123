"""parse_json names the offending value of any body it refuses: wherever a float, NaN, a duplicate key or an
out-of-range integer sits, ``details.pointer`` and ``details.field`` lead to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpay.encoding import MAX_DEPTH, json_path, parse_json
from netpay.errors import MalformedMessage

BAD = ["1.5", "-0.0", "1e3", "NaN", "Infinity", "-Infinity", "9223372036854775808", "-9223372036854775808", "9" * 30]
KEYS = st.text(alphabet="abcxyz _./~\u00e9", min_size=1, max_size=6)


def _text(value: Any, path: list[str | int], bad: str) -> str:
    """JSON text of ``value`` with the value at ``path`` written as the raw token ``bad``."""
    if not path:
        return bad
    step, rest = path[0], path[1:]
    if isinstance(value, list):
        assert isinstance(step, int)
        items = [_text(v, rest, bad) if i == step else json.dumps(v) for i, v in enumerate(value)]
        return "[" + ",".join(items) + "]"
    items = [f"{json.dumps(k)}:" + (_text(v, rest, bad) if k == step else json.dumps(v)) for k, v in value.items()]
    return "{" + ",".join(items) + "}"


@st.composite
def bodies(draw: st.DrawFn) -> tuple[Any, list[str | int]]:
    """A JSON object and a path into it (every step exists) at most MAX_DEPTH deep."""
    depth = draw(st.integers(1, 6))
    path: list[str | int] = []
    root: dict[str, Any] = draw(st.dictionaries(KEYS, st.integers(0, 9), max_size=3))
    node: Any = root
    for level in range(depth):
        last = level == depth - 1
        child: Any = 0 if last else draw(st.sampled_from(["list", "dict"]))
        if isinstance(node, dict):
            key = draw(KEYS)
            node[key] = child if last else ([] if child == "list" else {})
            path.append(key)
            node = node[key]
        else:
            node.extend(draw(st.lists(st.integers(0, 9), max_size=2)))
            node.append(child if last else ([] if child == "list" else {}))
            path.append(len(node) - 1)
            node = node[-1]
    return root, path


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@settings(max_examples=300, deadline=None)
@given(bodies(), st.sampled_from(BAD))
def test_a_bad_number_is_named_wherever_it_sits(body: tuple[Any, list[str | int]], bad: str) -> None:
    value, path = body
    with pytest.raises(MalformedMessage) as err:
        parse_json(_text(value, path, bad).encode())
    assert err.value.details["pointer"] == _pointer(path)
    assert err.value.details["field"] == json_path("body", path)


@settings(max_examples=200, deadline=None)
@given(bodies())
def test_a_duplicate_key_is_named(body: tuple[Any, list[str | int]]) -> None:
    value, path = body
    text = _text(value, path, '{"k":1,"k":2}')
    with pytest.raises(MalformedMessage) as err:
        parse_json(text)
    assert err.value.details["pointer"] == _pointer([*path, "k"])


def test_depth_limit_is_exact() -> None:
    ok = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)  # the innermost array sits inside MAX_DEPTH arrays
    assert parse_json(ok) is not None
    with pytest.raises(MalformedMessage) as err:
        parse_json("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))
    assert err.value.details["pointer"] == "/0" * (MAX_DEPTH + 1)


def test_not_json_names_the_body_and_the_position() -> None:
    with pytest.raises(MalformedMessage) as err:
        parse_json(b'{"a": 1,}')
    assert err.value.details["field"] == "body" and err.value.details["position"] == 8
    with pytest.raises(MalformedMessage) as err:
        parse_json(b'{"a": "\xff"}')
    assert err.value.details["field"] == "body"

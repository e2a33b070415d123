"""Canonical JSON and strict field readers.

Canonical form: UTF-8 JSON, keys sorted, no insignificant white space, integers only (no floats), strings,
booleans, null, arrays and objects. Binary values are lowercase hex strings. Signatures are made over this form,
so two parties that agree on the values agree on the bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from netpay.errors import MalformedMessage

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_STRING",
    "FieldReader",
    "canonical_json",
    "from_hex",
    "json_path",
    "might_hold_surrogates",
    "parse_json",
    "to_hex",
]

T = TypeVar("T")

#: Longest string accepted in any field unless a field says otherwise.
MAX_STRING = 2048
_HEX = re.compile(r"\A[0-9a-f]*\Z")
_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
#: Integers in any message lie within ±MAX_INT (a signed 64-bit integer, without its lowest value).
MAX_INT = 2**63 - 1
_MAX_INT = MAX_INT
#: No value is nested inside more than MAX_DEPTH objects or arrays.
MAX_DEPTH = 32
#: What can decode to a lone UTF-16 surrogate (not valid Unicode, cannot be encoded again): a ``\\uD800``-``\\uDFFF``
#: escape, or such a code point sent raw (``json.loads`` of bytes lets it through).
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _check(value: Any, depth: int = 0) -> None:
    """Raise :class:`MalformedMessage` unless ``value`` is encodable canonically (see :func:`_check_general`).

    The exact built-in types come first and the commonest leaves (strings, in-range integers) are checked without
    a call: a payment is checked several times on its way. Anything else gets the general rules."""
    if depth > MAX_DEPTH:
        raise MalformedMessage("message nested too deeply")
    kind = type(value)
    leaf_ok = depth < MAX_DEPTH  # a leaf child sits at depth + 1
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                _check_general({key: None}, depth)
            k = type(item)
            if leaf_ok and (k is str or (k is int and -_MAX_INT <= item <= _MAX_INT)):
                continue
            _check(item, depth + 1)
        return
    if kind is list:
        for item in value:
            k = type(item)
            if leaf_ok and (k is str or (k is int and -_MAX_INT <= item <= _MAX_INT)):
                continue
            _check(item, depth + 1)
        return
    if kind is str or kind is bool or value is None or (kind is int and -_MAX_INT <= value <= _MAX_INT):
        return
    _check_general(value, depth)


def _check_general(value: Any, depth: int = 0) -> None:
    """The rules written plainly: JSON values only, no floats, integers within ±(2^63-1), string keys, at most 32
    levels deep. :func:`_check` must agree with it on every value (a property test holds it to that)."""
    if depth > MAX_DEPTH:
        raise MalformedMessage("message nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -_MAX_INT <= value <= _MAX_INT:
            raise MalformedMessage("integer out of range")
        return
    if isinstance(value, float):
        raise MalformedMessage("floats are not allowed; amounts are integer minor units")
    if isinstance(value, list):
        for item in value:
            _check_general(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedMessage("object keys must be strings")
            _check_general(item, depth + 1)
        return
    raise MalformedMessage(f"value of type {type(value).__name__} cannot be encoded")


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` canonically (sorted keys, compact, UTF-8, no floats)."""
    _check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _reject_float(text: str) -> Any:
    raise MalformedMessage("floats are not allowed; amounts are integer minor units")


def _reject_constant(text: str) -> Any:
    raise MalformedMessage(f"{text} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise MalformedMessage("duplicate key")
    return out


def parse_json(data: bytes | str, where: str = "body") -> Any:
    """Parse JSON strictly: no floats, no NaN, no duplicate keys, integers within ±(2^63-1), at most
    :data:`MAX_DEPTH` levels, valid Unicode. A refusal is :class:`MalformedMessage` whose ``details.field`` names the
    offending value as a dotted path from ``where`` (``body.segments[0].from_index``) and ``details.pointer`` as a
    JSON pointer (``/segments/0/from_index``); a body that is not JSON at all names ``where`` and the position."""
    try:
        value = json.loads(data, parse_float=_reject_float, parse_constant=_reject_constant,
                           object_pairs_hook=_no_duplicates)  # fmt: skip
        _check(value)
        if might_hold_surrogates(data):  # escaped surrogate pairs are fine; lone ones would fail every later encode
            json.dumps(value, ensure_ascii=False).encode()
        return value
    except (MalformedMessage, ValueError, RecursionError):  # rare: parse again, slowly, to name the field
        pass
    raise _diagnose(data, where)


class _Refused:
    """A value the strict rules refuse, left in place by the diagnosing parse so that its path can be named."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def _diagnose_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = _Refused(f"duplicate key {key!r}") if key in out else value
    return out


def _diagnose_int(text: str) -> Any:
    if len(text) > 20:  # also keeps int() clear of Python's limit on digits
        return _Refused("integer out of range")
    return int(text)


def _diagnose(data: bytes | str, where: str) -> MalformedMessage:
    """The error :func:`parse_json` raises for ``data``, naming the first offending value."""
    try:
        value = json.loads(
            data,
            parse_float=lambda _: _Refused("floats are not allowed; amounts are integer minor units"),
            parse_constant=lambda text: _Refused(f"{text} is not valid JSON"),
            parse_int=_diagnose_int,
            object_pairs_hook=_diagnose_pairs,
        )
    except RecursionError:
        return _named(f"nested more than {MAX_DEPTH} levels deep", where, _deep_path(data))
    except json.JSONDecodeError as exc:
        return MalformedMessage(f"{where} is not valid JSON: {exc}", field=where, pointer="", position=exc.pos)
    except ValueError as exc:  # not UTF-8
        return MalformedMessage(f"{where} is not valid JSON: {exc}", field=where, pointer="")
    found = _find(value, [], 0)
    if found is None:  # pragma: no cover - _find agrees with _check
        return MalformedMessage(f"{where} is not valid JSON", field=where, pointer="")
    return _named(found[0], where, found[1])


def _find(value: Any, path: list[str | int], depth: int) -> tuple[str, list[str | int]] | None:
    """The first value (in document order) the strict rules refuse: ``(why, path)``."""
    if depth > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep", path
    if isinstance(value, _Refused):
        return value.why, path
    if isinstance(value, str):
        return None if _encodes(value) else ("strings must be valid Unicode (no lone surrogates)", path)
    if type(value) is int and not -_MAX_INT <= value <= _MAX_INT:
        return "integer out of range", path
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodes(key):
                return "keys must be valid Unicode (no lone surrogates)", [*path, key]
            found = _find(item, [*path, key], depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find(item, [*path, i], depth + 1)
            if found:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _named(why: str, where: str, path: list[str | int]) -> MalformedMessage:
    field = json_path(where, path)
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return MalformedMessage(f"{field}: {why}", field=field, pointer=pointer)


def json_path(where: str, path: list[str | int]) -> str:
    """``where.key[0].other`` (a key that is not a plain name is written ``["key"]``)."""
    out = [where]
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif _NAME.match(step):
            out.append(f".{step}")
        else:
            out.append(f"[{json.dumps(step, ensure_ascii=True)}]")
    return "".join(out)


def _deep_path(data: bytes | str) -> list[str | int]:
    """The path to the first array or object nested deeper than :data:`MAX_DEPTH` in JSON text too deep for the
    parser to build (a small scanner: strings, brackets, commas and keys are all it needs to follow)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    frames: list[list[Any]] = []  # [kind, current key or index]
    expect_key = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if expect_key and frames:
                try:
                    frames[-1][1] = json.loads(text[i : j + 1])
                except ValueError:
                    frames[-1][1] = text[i + 1 : j]
                expect_key = False
            i = j + 1
            continue
        if c in "[{":
            if len(frames) > MAX_DEPTH:
                break
            frames.append([c, 0 if c == "[" else ""])
            expect_key = c == "{"
        elif c in "]}":
            if frames:
                frames.pop()
        elif c == "," and frames:
            if frames[-1][0] == "[":
                frames[-1][1] += 1
            else:
                expect_key = True
        i += 1
    return [f[1] for f in frames]


def might_hold_surrogates(data: bytes | str) -> bool:
    """True if JSON text ``data`` may decode to a string with a UTF-16 surrogate (parse_json then checks them)."""
    if isinstance(data, str):
        return _SURROGATE_TEXT.search(data) is not None
    return _SURROGATE_BYTES.search(data) is not None


def to_hex(data: bytes) -> str:
    return data.hex()


def from_hex(text: Any, nbytes: int | None, field: str) -> bytes:
    """Decode lowercase hex of exactly ``nbytes`` bytes (any length when None)."""
    if not isinstance(text, str) or not _HEX.match(text) or len(text) % 2:
        raise MalformedMessage(f"{field} must be lowercase hex", field=field)
    if nbytes is not None and len(text) != 2 * nbytes:
        raise MalformedMessage(f"{field} must be {nbytes} bytes of hex", field=field)
    return bytes.fromhex(text)


class FieldReader:
    """Reads typed fields out of a decoded JSON object, raising :class:`MalformedMessage` naming the field.

    ``done()`` rejects unknown fields, so a message never carries data its signer did not mean to sign.
    """

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise MalformedMessage(f"{where} must be a JSON object", field=where)
        self._data: dict[str, Any] = data
        self._where = where
        self._seen: set[str] = set()

    def _get(self, name: str, optional: bool = False) -> Any:
        self._seen.add(name)
        if name not in self._data:
            if optional:
                return None
            raise MalformedMessage(f"{self._where}.{name} is missing", field=f"{self._where}.{name}")
        return self._data[name]

    def _bad(self, name: str, what: str) -> MalformedMessage:
        return MalformedMessage(f"{self._where}.{name} must be {what}", field=f"{self._where}.{name}")

    def text(self, name: str, max_len: int = MAX_STRING, min_len: int = 1, optional: bool = False) -> Any:
        value = self._get(name, optional)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not min_len <= len(value) <= max_len:
            raise self._bad(name, f"a string of {min_len} to {max_len} characters")
        return value

    def integer(self, name: str, lo: int = 0, hi: int = _MAX_INT, optional: bool = False) -> Any:
        value = self._get(name, optional)
        if value is None and optional:
            return None
        if type(value) is not int or not lo <= value <= hi:
            raise self._bad(name, f"an integer from {lo} to {hi}")
        return value

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if type(value) is not bool:
            raise self._bad(name, "true or false")
        return value

    def hex(self, name: str, nbytes: int | None = None, optional: bool = False) -> Any:
        value = self._get(name, optional)
        if value is None and optional:
            return None
        return from_hex(value, nbytes, f"{self._where}.{name}")

    def raw(self, name: str, optional: bool = False) -> Any:
        return self._get(name, optional)

    def items(self, name: str, item: Callable[[Any, str], T], max_items: int = 1000, min_items: int = 0) -> list[T]:
        value = self._get(name)
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise self._bad(name, f"a list of {min_items} to {max_items} items")
        return [item(v, f"{self._where}.{name}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        extra = set(self._data) - self._seen
        if extra:
            name = sorted(extra)[0]
            raise MalformedMessage(f"{self._where}.{name} is not a known field", field=f"{self._where}.{name}")

"""Limits and field rules shared by every NetPay message: identifier length, time range, origins and URLs."""

from __future__ import annotations

from typing import Any

from netpay.encoding import FieldReader
from netpay.errors import MalformedMessage

__all__ = ["ID_LEN", "MAX_BATCH", "MAX_SEGMENTS", "TIME_MAX", "check_origin", "check_url", "read_time"]

ID_LEN = 64  # longest identifier
TIME_MAX = 2**40  # seconds since the epoch; far beyond any real date
MAX_SEGMENTS = 8  # segments in one payment
MAX_BATCH = 1000  # entries in one spend report or redemption batch


def read_time(r: FieldReader, name: str, optional: bool = False) -> Any:
    return r.integer(name, 0, TIME_MAX, optional=optional)


def check_origin(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 255 or not value.startswith(("http://", "https://")):
        raise MalformedMessage(f"{where} must be an http(s) origin", field=where)
    rest = value.split("://", 1)[1]
    if "/" in rest or "?" in rest or "#" in rest or "@" in rest or not rest:
        raise MalformedMessage(f"{where} must be scheme://host[:port] with no path", field=where)
    return value


def check_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 2048 or not value.startswith(("http://", "https://")):
        raise MalformedMessage(f"{where} must be an http(s) URL", field=where)
    return value

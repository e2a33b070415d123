"""Helpers for the broker tests: refused requests must answer a 4xx JSON error and leave the database unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from tests.support.broker import RunningBroker


def refused(broker: RunningBroker, call: Callable[[], requests.Response], status: int, code: str) -> dict[str, Any]:
    """Run ``call``; assert it answers ``status`` with error ``code`` and changed nothing in the database."""
    before = broker.broker.core.db.dump()
    resp = call()
    after = broker.broker.core.db.dump()
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert before == after, "a refused request changed the database"
    error: dict[str, Any] = body["error"]
    return error


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}

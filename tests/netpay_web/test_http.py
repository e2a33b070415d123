"""The shared server glue: every error leaves as JSON with a stable code, bodies are capped, JSON only."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from netpay.errors import InvalidPayword
from netpay_web.http import BodyLimitMiddleware, install_error_handlers, read_json


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body=1024)

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return await read_json(request)

    @app.post("/fail")
    async def fail() -> None:
        raise InvalidPayword("coin 7 does not verify", chain="ab")

    @app.get("/typed/{n}")
    async def typed(n: int) -> dict[str, int]:
        return {"n": n}

    return TestClient(app, raise_server_exceptions=False)


def test_json_round_trip(client: TestClient) -> None:
    assert client.post("/echo", json={"a": [1, "x"]}).json() == {"a": [1, "x"]}


def test_netpay_errors_keep_their_code_status_and_details(client: TestClient) -> None:
    r = client.post("/fail", json={})
    assert r.status_code == 400
    assert r.json() == {
        "error": {"code": "invalid_payword", "message": "coin 7 does not verify", "details": {"chain": "ab"}}
    }


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        (
            {"content": b"a=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            415,
            "unsupported_media_type",
        ),
        ({"content": b'{"a":1}', "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "malformed"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400, "malformed"),
        ({"content": b'{"a": 0.5}', "headers": {"content-type": "application/json"}}, 400, "malformed"),
        ({"content": b'{"a":1,"a":2}', "headers": {"content-type": "application/json"}}, 400, "malformed"),
        (
            {"content": b'{"a":"' + b"x" * 2000 + b'"}', "headers": {"content-type": "application/json"}},
            413,
            "payload_too_large",
        ),
    ],
)
def test_bad_bodies_are_refused_with_a_code(client: TestClient, kwargs: dict[str, Any], status: int, code: str) -> None:
    r = client.post("/echo", **kwargs)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_streamed_body_over_the_cap_is_refused(client: TestClient) -> None:
    def chunks():  # no Content-Length: the middleware must count while streaming
        for _ in range(10):
            yield b"x" * 200

    r = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_framework_errors_are_json_too(client: TestClient) -> None:
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"
    r = client.get("/echo")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
    r = client.get("/typed/abc")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed")

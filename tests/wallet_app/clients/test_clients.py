"""The HTTP clients: errors come back as netpay exceptions; only idempotent requests are retried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from netpay.errors import Conflict, InvalidCredentials, MalformedMessage, NotFound, PeerUnavailable
from netpay_web.live import LiveServer, free_port
from tests.support.broker import RunningBroker
from wallet_app.clients import BrokerClient, JsonClient, VendorClient


@pytest.fixture
def flaky() -> Iterator[tuple[str, dict[str, int]]]:
    """A server answering 503 to everything and counting the requests per path."""
    hits: dict[str, int] = {}
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def any_path(path: str, request: Request) -> JSONResponse:
        hits[path] = hits.get(path, 0) + 1
        if path == "float":
            return JSONResponse({"amount": 1.5})
        body = {"error": {"code": "unavailable", "message": "try later", "details": {}}}
        return JSONResponse(body, status_code=503)

    with LiveServer(app) as server:
        yield server.url, hits


def test_broker_errors_map_back(broker: RunningBroker) -> None:
    client = BrokerClient(broker.url)
    client.create_account("alice_c", "correct horse battery")
    with pytest.raises(Conflict):
        client.create_account("alice_c", "correct horse battery")
    with pytest.raises(InvalidCredentials):
        client.login("alice_c", "wrong password!")
    assert client.login("alice_c", "correct horse battery")["token"]
    with pytest.raises(NotFound):
        client.vendor_certificate("no-such-vendor")


def test_only_idempotent_requests_are_retried(flaky: tuple[str, dict[str, int]]) -> None:
    url, hits = flaky
    client = JsonClient(url, retries=2)
    with pytest.raises(PeerUnavailable):
        client.request("GET", "/get")
    with pytest.raises(PeerUnavailable):
        client.request("POST", "/post", {"a": 1})
    with pytest.raises(PeerUnavailable):
        VendorClient(url, retries=2).pay({"payment_id": "p"}, f"{url}/pay")  # idempotent at the vendor
    assert hits == {"get": 3, "post": 1, "pay": 3}


def test_unreachable_peer_and_non_strict_json(flaky: tuple[str, dict[str, int]]) -> None:
    url, _ = flaky
    with pytest.raises(PeerUnavailable, match="could not be reached"):
        JsonClient(f"http://127.0.0.1:{free_port()}", retries=0).request("GET", "/x")
    with pytest.raises(MalformedMessage):
        JsonClient(url).request("GET", "/float")

"""The callback over real HTTP on loopback: every defence refuses with a stable JSON code and changes nothing."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from netpay_web.live import LiveServer
from tests.support.callback import Shop, TestWallet, make_shop
from wallet_app.callback.limits import Limits
from wallet_app.callback.server import MAX_BODY, CallbackServer, PortInUse

ORIGIN = "http://127.0.0.1:8201"
Start = Callable[..., CallbackServer]


def code(resp: requests.Response) -> str:
    return str(resp.json()["error"]["code"])


@pytest.fixture
def server(callback_for: Start, test_wallet: TestWallet, shop: Shop) -> CallbackServer:
    srv = callback_for(test_wallet, discover=False)
    srv.coordinator.registry.add_certificate(shop.certificate)
    return srv


def post(srv: CallbackServer, body: Any, origin: str | None = ORIGIN, ctype: str = "application/json") -> Any:
    headers = {"Content-Type": ctype}
    if origin is not None:
        headers["Origin"] = origin
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{srv.url}/v1/purchase", data=data, headers=headers, timeout=10)


def test_hello_says_only_version_and_protocols(server: CallbackServer) -> None:
    resp = requests.get(f"{server.url}/v1/hello", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"wallet": "NetPay Wallet", "version": "0.1.0", "protocols": [1]}
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "rebind.attacker.test", "[::1]:{port}", ""])
def test_rebinding_host_is_refused(server: CallbackServer, host: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("GET", "/v1/hello", skip_host=True)
    if host:
        conn.putheader("Host", host.format(port=server.port))
    conn.endheaders()
    resp = conn.getresponse()
    raw = resp.read()
    if not host:  # HTTP/1.1 without Host is refused by the HTTP parser itself, before the app
        assert resp.status == 400 and b"NetPay" not in raw
        return
    body = json.loads(raw)
    assert resp.status == 403 and body["error"]["code"] == "forbidden" and body["error"]["details"]["reason"] == "host"


def test_localhost_host_is_accepted(server: CallbackServer) -> None:
    resp = requests.get(f"http://localhost:{server.port}/v1/hello", timeout=5)
    assert resp.status_code == 200


def test_port_taken_fails_closed(server: CallbackServer, test_wallet: TestWallet, callback_for: Start) -> None:
    with pytest.raises(PortInUse, match=str(server.port)):
        callback_for(test_wallet, port=server.port)
    assert requests.get(f"{server.url}/v1/hello", timeout=5).status_code == 200


def test_only_loopback_binding(server: CallbackServer) -> None:
    with pytest.raises(ValueError):
        CallbackServer(server.coordinator, host="0.0.0.0")
    with socket.socket() as s:  # nothing listens on the machine's other addresses for this port
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.2", server.port)) != 0


def preflight(srv: CallbackServer, origin: str | None, pna: bool = True, path: str = "/v1/purchase") -> Any:
    headers = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    if origin is not None:
        headers["Origin"] = origin
    if pna:
        headers["Access-Control-Request-Private-Network"] = "true"
    return requests.options(f"{srv.url}{path}", headers=headers, timeout=5)


def test_preflight_for_certified_origin_includes_private_network(server: CallbackServer) -> None:
    resp = preflight(server, ORIGIN)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Private-Network"] == "true"
    assert "content-type" in resp.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Private-Network" not in preflight(server, ORIGIN, pna=False).headers


@pytest.mark.parametrize("origin", ["http://127.0.0.1:9999", "null", None, "http://127.0.0.1:8201.evil.test"])
def test_preflight_refused_for_other_origins(server: CallbackServer, origin: str | None) -> None:
    resp = preflight(server, origin)
    assert resp.status_code == 403 and code(resp) == "forbidden"
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Private-Network" not in resp.headers


def test_purchase_answers_pending_with_cors_then_poll(server: CallbackServer, shop: Shop) -> None:
    resp = post(server, shop.offer())
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    answer = resp.json()
    assert answer["status"] == "pending"
    url = f"{server.url}/v1/purchase/{answer['prompt_id']}"
    assert requests.get(url, params={"token": answer["poll_token"]}, timeout=5).json()["status"] == "pending"
    by_header = requests.get(url, headers={"X-NetPay-Poll-Token": answer["poll_token"], "Origin": ORIGIN}, timeout=5)
    assert by_header.json()["status"] == "pending" and by_header.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert requests.get(url, params={"token": "x"}, timeout=5).status_code == 404
    server.coordinator.approve(answer["prompt_id"]).result(timeout=5)
    paid = requests.get(url, params={"token": answer["poll_token"]}, timeout=5).json()
    assert paid["status"] == "paid" and paid["access_token"] == "tok-1"


@pytest.mark.parametrize(
    ("ctype", "status", "err"),
    [
        ("text/plain", 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("multipart/form-data; boundary=x", 415, "unsupported_media_type"),
        ("", 415, "unsupported_media_type"),
    ],
)
def test_only_json_bodies(server: CallbackServer, shop: Shop, ctype: str, status: int, err: str) -> None:
    resp = post(server, shop.offer(), ctype=ctype)
    assert (resp.status_code, code(resp)) == (status, err)
    assert server.coordinator.pending_prompts() == []


@pytest.mark.parametrize(("origin", "reason"), [(None, "origin"), ("null", "origin"), ("http://x.test", "origin")])
def test_origin_required_and_certified(server: CallbackServer, shop: Shop, origin: str | None, reason: str) -> None:
    resp = post(server, shop.offer(), origin=origin)
    assert resp.status_code == 403 and code(resp) == "forbidden"
    assert resp.json()["error"]["details"]["reason"] == reason
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert server.coordinator.pending_prompts() == []


def test_body_cap(server: CallbackServer, shop: Shop) -> None:
    resp = post(server, b"{" + b" " * MAX_BODY + b"}")
    assert resp.status_code == 413 and code(resp) == "payload_too_large"
    # Chunked (no Content-Length) is counted as it streams.
    resp = requests.post(
        f"{server.url}/v1/purchase",
        data=iter([b"{", b" " * (MAX_BODY + 10), b"}"]),
        headers={"Content-Type": "application/json", "Origin": ORIGIN},
        timeout=10,
    )
    assert resp.status_code == 413 and code(resp) == "payload_too_large"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"quote": 1.5}', b"{}", b'{"a":1,"a":2}', b""])
def test_malformed_bodies(server: CallbackServer, body: bytes) -> None:
    resp = post(server, body)
    assert resp.status_code == 400 and code(resp) == "malformed"


def test_locked_answers_423_readable_by_the_page(server: CallbackServer, shop: Shop, test_wallet: TestWallet) -> None:
    asked: list[int] = []
    server.coordinator.on_unlock_requested = lambda: asked.append(1)
    test_wallet.locked = True
    resp = post(server, shop.offer())
    assert resp.status_code == 423 and code(resp) == "locked"
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN and asked == [1]


def test_unknown_paths_and_methods_are_json(server: CallbackServer) -> None:
    resp = requests.get(f"{server.url}/v1/balance", timeout=5)
    assert resp.status_code == 404 and code(resp) == "not_found"
    resp = requests.delete(f"{server.url}/v1/purchase", timeout=5)
    assert resp.status_code == 405 and code(resp) == "method_not_allowed"


def test_navigation_fallback_with_inline_offer_prompts_and_redirects(
    server: CallbackServer, shop: Shop, test_wallet: TestWallet
) -> None:
    test_wallet.allowances["shop-1"] = test_wallet.balance  # even so, a navigation never auto-pays
    offer = base64.urlsafe_b64encode(json.dumps(shop.offer()).encode()).decode().rstrip("=")
    ret = f"{ORIGIN}/items/article-1"
    s = requests.Session()
    resp = s.get(f"{server.url}/v1/pay", params={"offer": offer, "origin": ORIGIN, "return": ret},
                 allow_redirects=False, timeout=5)  # fmt: skip
    assert resp.status_code == 303
    waiting = s.get(server.url + resp.headers["location"], allow_redirects=False, timeout=5)
    assert waiting.status_code == 200 and 'data-state="pending"' in waiting.text
    # it reloads at once a URL the wallet holds until the purchase moves on (not a blind reload every second)
    assert f'content="0; url={resp.headers["location"].replace("&", "&amp;")}&amp;held=1"' in waiting.text
    assert "frame-ancestors 'none'" in waiting.headers["Content-Security-Policy"]
    assert test_wallet.paid == []
    (prompt,) = server.coordinator.pending_prompts()
    assert prompt.navigation
    server.coordinator.approve(prompt.prompt_id).result(timeout=5)
    done = s.get(server.url + resp.headers["location"], allow_redirects=False, timeout=5)
    assert done.status_code == 303 and done.headers["location"] == ret


def test_navigation_fallback_refuses_foreign_return(server: CallbackServer, shop: Shop) -> None:
    offer = base64.urlsafe_b64encode(json.dumps(shop.offer()).encode()).decode()
    params = {"offer": offer, "origin": ORIGIN, "return": "http://evil.test/steal"}
    resp = requests.get(f"{server.url}/v1/pay", params=params, allow_redirects=False, timeout=5)
    assert resp.status_code == 403 and 'data-code="forbidden"' in resp.text
    assert server.coordinator.pending_prompts() == []


def vendor_app(shop: Shop, with_cert: bool = True) -> Starlette:
    async def info(_: Request) -> JSONResponse:
        if not with_cert:
            return JSONResponse({"error": {"code": "not_found"}}, status_code=404)
        return JSONResponse({"vendor_id": shop.vendor_id, "certificate": shop.certificate.to_wire()})

    async def quotes(request: Request) -> JSONResponse:
        item = (await request.json())["item_id"]
        return JSONResponse(shop.offer(item_id=item))

    return Starlette(routes=[Route("/v1/info", info), Route("/v1/quotes", quotes, methods=["POST"])])


def test_discovery_learns_certified_origin_from_its_own_info(callback_for: Start) -> None:
    with LiveServer(Starlette()) as placeholder:
        origin = placeholder.url
    broker_shop = make_shop(origin)
    wallet = TestWallet([broker_shop.broker.public])
    srv = callback_for(wallet, limits=Limits())
    with LiveServer(vendor_app(broker_shop), port=int(origin.rsplit(":", 1)[1])):
        assert preflight(srv, origin).status_code == 204
        # netpay: link / navigation with a quote URL: the wallet fetches the quote from the certified vendor.
        resp = requests.get(f"{srv.url}/v1/pay", params={"quote_url": f"{origin}/v1/quotes", "item": "a1"},
                            allow_redirects=False, timeout=5)  # fmt: skip
        assert resp.status_code == 303
        (prompt,) = srv.coordinator.pending_prompts()
        assert prompt.item_id == "a1" and prompt.origin == origin
    # An uncertified server on loopback learns nothing and is remembered as refused.
    other = make_shop("http://127.0.0.1:1")  # signed by a broker the wallet does not trust
    with LiveServer(vendor_app(other)) as evil:
        assert preflight(srv, evil.url).status_code == 403
        resp = requests.get(f"{srv.url}/v1/pay", params={"quote_url": f"{evil.url}/v1/quotes", "item": "x"},
                            allow_redirects=False, timeout=5)  # fmt: skip
        assert resp.status_code == 403
    assert len(srv.coordinator.pending_prompts()) == 1


def test_discovery_is_capped_and_remembers_failures(test_wallet: TestWallet) -> None:
    from wallet_app.callback.origins import MAX_DISCOVERIES, OriginRegistry

    now = [1000.0]
    reg = OriginRegistry(test_wallet.trusted_broker_keys, clock=lambda: now[0], fetch_timeout=0.5)
    with LiveServer(Starlette()) as nothing:  # answers 404 to /v1/info
        assert not reg.is_allowed(nothing.url)
        fetched = len(reg._fetches)
        assert not reg.is_allowed(nothing.url) and len(reg._fetches) == fetched  # remembered, not fetched again
    reg._fetches = [now[0]] * MAX_DISCOVERIES
    assert not reg.is_allowed("http://127.0.0.1:2") and "http://127.0.0.1:2" not in reg._refused

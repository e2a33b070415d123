"""The wallet's local HTTP callback: a Starlette app served by uvicorn on its own thread, on loopback only.

Every request first passes :class:`Guard` (a raw ASGI layer that runs before any route): the peer must be a loopback
address, the ``Host`` header must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (DNS rebinding), bodies over 64 KiB
are refused before they are read, and CORS preflights are answered here — only for certified vendor origins, with
``Access-Control-Allow-Private-Network: true`` when Chrome asks for it. Routes then refuse any body that is not
``application/json`` and hand the purchase to the :class:`~wallet_app.callback.coordinator.PurchaseCoordinator`.
"""

from __future__ import annotations

import base64
import errno
import logging
import socket
import sys
import threading
import time
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netpay.encoding import parse_json
from netpay.errors import (
    Forbidden,
    MalformedMessage,
    NetPayError,
    NotFound,
    PayloadTooLarge,
    PeerUnavailable,
    UnsupportedMediaType,
)
from wallet_app.callback import pages
from wallet_app.callback.coordinator import Offer, PurchaseCoordinator
from wallet_app.callback.origins import normalize_origin, origin_of_url

__all__ = ["DEFAULT_PORT", "MAX_BODY", "PROTOCOL_VERSIONS", "CallbackServer", "PortInUse", "build_app"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
MAX_BODY = 64 * 1024
PROTOCOL_VERSIONS = (1,)
WALLET_VERSION = "0.1.0"
POLL_HEADER = "x-netpay-poll-token"
_LOOPBACK_PEERS = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
_ALLOWED_METHODS = {"/v1/purchase": "POST", "/v1/hello": "GET", "/v1/metered/unit": "POST", "/v1/metered/end": "POST"}
#: How long a waiting-page request is held while the payment is in flight, or while the prompt is unanswered.
_HOLD_PAYING_S = 10.0
_HOLD_PENDING_S = 15.0
_COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class PortInUse(RuntimeError):
    """The callback port is taken (another wallet, or something else): the callback does not start."""


def _json_error(exc: NetPayError, cors: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.http_status, headers={**_COMMON_HEADERS, **(cors or {})})


def _internal_error(cors: dict[str, str]) -> JSONResponse:
    body = {"error": {"code": "internal_error", "message": "the wallet could not handle this request", "details": {}}}
    return JSONResponse(body, status_code=500, headers={**_COMMON_HEADERS, **cors})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Guard:
    """Loopback peer, Host check, body cap and CORS preflights, before any route runs."""

    def __init__(self, app: ASGIApp, coordinator: PurchaseCoordinator, port_ref: list[int]) -> None:
        self.app = app
        self.coordinator = coordinator
        self._port_ref = port_ref  # filled in once the socket is bound

    def allowed_hosts(self) -> set[str]:
        port = self._port_ref[0]
        return {f"127.0.0.1:{port}", f"localhost:{port}"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if not client or client[0] not in _LOOPBACK_PEERS:
            await _json_error(Forbidden("the wallet only answers this computer", reason="peer"))(scope, receive, send)
            return
        host = (_header(scope, b"host") or "").lower()
        if host not in self.allowed_hosts():
            err = Forbidden("wrong Host header: the wallet only answers as 127.0.0.1 or localhost", reason="host")
            await _json_error(err)(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                too_big = int(length) > MAX_BODY
            except ValueError:
                too_big = True
            if too_big:
                await _json_error(PayloadTooLarge(max_bytes=MAX_BODY))(scope, receive, send)
                return
        # Read the whole (small) body here, counting as it streams, so nothing past the cap is ever buffered.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > MAX_BODY:
                await _json_error(PayloadTooLarge(max_bytes=MAX_BODY))(scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _preflight(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        method = (_header(scope, b"access-control-request-method") or "").upper()
        path = scope["path"]
        wanted = "GET" if path.startswith("/v1/purchase/") else _ALLOWED_METHODS.get(path)
        ok = (
            wanted is not None
            and method == wanted
            and await run_in_threadpool(self.coordinator.registry.is_allowed, origin)
        )
        if not ok:
            err = Forbidden("preflight refused: not a certified vendor origin or not an allowed request", reason="cors")
            await _json_error(err)(scope, receive, send)
            return
        headers = {
            **_COMMON_HEADERS,
            "Access-Control-Allow-Origin": normalize_origin(origin) or "",
            "Access-Control-Allow-Methods": wanted or "",
            "Access-Control-Allow-Headers": f"content-type, {POLL_HEADER}",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        }
        if (_header(scope, b"access-control-request-private-network") or "").lower() == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        await Response(status_code=204, headers=headers)(scope, receive, send)


def build_app(coordinator: PurchaseCoordinator, port_ref: list[int]) -> ASGIApp:
    """The callback as an ASGI app (wrapped in :class:`Guard`). ``port_ref[0]`` is the port it is served on."""

    def cors_for(origin: str | None) -> dict[str, str]:
        norm = normalize_origin(origin)
        if norm is not None and coordinator.registry.is_known(norm):
            return {"Access-Control-Allow-Origin": norm, "Vary": "Origin"}
        return {"Vary": "Origin"}

    async def hello(request: Request) -> Response:
        body = {"wallet": "NetPay Wallet", "version": WALLET_VERSION, "protocols": list(PROTOCOL_VERSIONS)}
        # Nothing here identifies the user, so any page may read it (that is how a page learns a wallet is there).
        return JSONResponse(body, headers={**_COMMON_HEADERS, "Access-Control-Allow-Origin": "*"})

    async def purchase(request: Request) -> Response:
        origin = request.headers.get("origin")
        try:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                raise UnsupportedMediaType("only application/json is accepted")
            if origin is None:
                raise Forbidden("a purchase needs the Origin of a certified vendor page", reason="origin")
            raw = await request.body()
            if not raw:
                raise MalformedMessage("request body is empty")
            answer = await run_in_threadpool(coordinator.purchase_json, raw, origin)
        except NetPayError as exc:
            return _json_error(exc, cors_for(origin))
        except Exception:  # a bug must still answer JSON (and is logged), never a traceback
            log.exception("purchase failed unexpectedly")
            return _internal_error(cors_for(origin))
        return JSONResponse(answer, headers={**_COMMON_HEADERS, **cors_for(origin)})

    async def metered(request: Request) -> Response:
        origin = request.headers.get("origin")
        end = request.url.path.endswith("/end")
        try:
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in ("application/json", "text/plain"):  # text/plain: a beacon sent as the page closes
                raise UnsupportedMediaType("only application/json is accepted")
            raw = await request.body()
            answer = await run_in_threadpool(coordinator.metered_json, raw, origin, end)
        except NetPayError as exc:
            return _json_error(exc, cors_for(origin))
        except Exception:
            log.exception("metered request failed unexpectedly")
            return _internal_error(cors_for(origin))
        return JSONResponse(answer, headers={**_COMMON_HEADERS, **cors_for(origin)})

    async def poll(request: Request) -> Response:
        origin = request.headers.get("origin")
        token = request.headers.get(POLL_HEADER) or request.query_params.get("token")
        try:
            answer = await run_in_threadpool(coordinator.poll, request.path_params["prompt_id"], token, origin)
        except NetPayError as exc:
            return _json_error(exc, cors_for(origin))
        except Exception:
            log.exception("poll failed unexpectedly")
            return _internal_error(cors_for(origin))
        return JSONResponse(answer, headers={**_COMMON_HEADERS, **cors_for(origin)})

    async def pay_navigation(request: Request) -> Response:
        q = request.query_params
        try:
            if q.get("offer"):
                offer = Offer.from_json(parse_json(_b64decode(q["offer"])))
                origin = normalize_origin(q.get("origin"))
                if origin is None:
                    raise MalformedMessage("origin is required with an inline offer", field="origin")
            else:
                quote_url, item = q.get("quote_url"), q.get("item")
                if not quote_url or not item or len(item) > 64:
                    raise MalformedMessage("quote_url and item are required", field="quote_url")
                offer = await run_in_threadpool(coordinator.fetch_offer, quote_url, item)
                origin = origin_of_url(quote_url)
            return_url = q.get("return") or offer.quote.body.item_url
            answer = await run_in_threadpool(
                lambda: coordinator.purchase(offer, origin, navigation=True, return_url=return_url)
            )
        except NetPayError as exc:
            return pages.error_page(exc)
        except Exception:
            log.exception("navigation purchase failed unexpectedly")
            return pages.error_page(PeerUnavailable("the wallet could not handle this request"))
        return RedirectResponse(f"/v1/pay/{answer['prompt_id']}?token={answer['poll_token']}", status_code=303)

    async def pay_wait(request: Request) -> Response:
        prompt_id, token = request.path_params["prompt_id"], request.query_params.get("token", "")
        # A payment in flight is waited for (it takes milliseconds); an unanswered prompt only on the waiting
        # page's own reloads (``held=1``), so the page is shown first and then moves on the moment it is paid.
        held = request.query_params.get("held") == "1"
        try:
            prompt, status, target = await run_in_threadpool(
                lambda: coordinator.navigation_state(
                    prompt_id, token, hold_paying_s=_HOLD_PAYING_S, hold_pending_s=_HOLD_PENDING_S if held else 0.0
                )
            )
        except NetPayError as exc:
            return pages.error_page(exc)
        if target is not None:
            return RedirectResponse(target, status_code=303, headers=_COMMON_HEADERS)
        return pages.waiting_page(prompt, status, reload_url=f"/v1/pay/{quote(prompt_id)}?token={quote(token)}&held=1")

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json_error(NotFound("no such resource"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        body = {"error": {"code": "method_not_allowed", "message": "method not allowed", "details": {}}}
        return JSONResponse(body, status_code=405, headers=_COMMON_HEADERS)

    routes = [
        Route("/v1/hello", hello, methods=["GET"]),
        Route("/v1/purchase", purchase, methods=["POST"]),
        Route("/v1/purchase/{prompt_id}", poll, methods=["GET"]),
        Route("/v1/metered/unit", metered, methods=["POST"]),
        Route("/v1/metered/end", metered, methods=["POST"]),
        Route("/v1/pay", pay_navigation, methods=["GET"]),
        Route("/v1/pay/{prompt_id}", pay_wait, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    return Guard(app, coordinator, port_ref)


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise MalformedMessage("offer must be base64url JSON", field="offer") from None


class CallbackServer:
    """The callback on ``host:port`` (loopback only) in a daemon thread. Fails closed: :class:`PortInUse`."""

    def __init__(self, coordinator: PurchaseCoordinator, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("the callback only listens on the loopback address")
        self.coordinator = coordinator
        self.host = host
        self._port_ref = [port]
        self.app = build_app(coordinator, self._port_ref)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int:
        return self._port_ref[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> CallbackServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on connections of sockets whose proto says TCP, and
        # without it keep-alive answers stall ~40 ms (Nagle against delayed ACKs).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        if sys.platform.startswith("linux"):
            # A browser that kept a connection open when the last wallet quit leaves that wallet's end in
            # FIN-WAIT-2/TIME-WAIT for up to a minute; SO_REUSEADDR lets a new wallet bind past those. On Linux it
            # does not let two listeners share the port (a bind fails while any socket listens on it, wildcard
            # address included; sharing would take SO_REUSEPORT). Elsewhere it means more (Windows: stealing a
            # port; BSD/macOS: a specific address beside a wildcard listener), so it is left off there.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(
                    f"port {self.port} on {self.host} is already in use: another wallet may be running, "
                    "or choose another port (the page script must be told it)"
                ) from None
            raise
        sock.listen(128)
        self._port_ref[0] = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name=f"netpay-callback:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"callback on {self.url} did not start")
            time.sleep(0.01)
        log.info("wallet callback listening on %s", self.url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The peer's HTTP side: the FastAPI app (the shop's payment API for the shared files, and ``/files/{item_id}``
downloads with ranges) and the uvicorn thread that serves it.

Imported only when sharing starts (:meth:`wallet_app.peer.server.PeerServer.start`): the web framework and the
shop's code cost about half a second to import, which a wallet that does not share should not pay at every start.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import h11
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from netpay.errors import AuthenticationRequired, Forbidden, NetPayError, NotFound, RateLimited
from netpay_web.http import BodyLimitMiddleware, error_response, install_error_handlers
from netpay_web.live import LiveServer
from vendor_stub.api import build_api
from vendor_stub.service import Vendor
from wallet_app.peer.shares import Share

if TYPE_CHECKING:
    from wallet_app.peer.server import PeerServer

__all__ = ["build_peer_app", "peer_server"]

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_ITEM = re.compile(r"\A[0-9a-f]{32}\Z")
_RANGE = re.compile(r"\Abytes=(\d*)-(\d*)\Z")


def build_peer_app(peer: PeerServer, vendor: Vendor) -> FastAPI:
    """The app ``peer`` serves while sharing: ``vendor``'s payment API and the downloads."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        vendor.start()
        yield

    app = FastAPI(title=f"NetPay peer: {peer.settings.display_name}", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    install_error_handlers(app)
    app.include_router(build_api(vendor))

    @app.get("/files/{item_id}")
    async def download(item_id: str, request: Request, token: str = "") -> Response:
        return await _download(peer, vendor, item_id, request, token)

    app.add_middleware(BodyLimitMiddleware, max_body=256 * 1024)
    return app


async def _download(peer: PeerServer, vendor: Vendor, item_id: str, request: Request, token: str) -> Response:
    if not peer.running:
        return error_response(Forbidden("sharing is off", reason="sharing_off"))
    if not _ITEM.match(item_id):
        return error_response(NotFound("no such shared file"))
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else token
    if not token:
        return error_response(AuthenticationRequired("send the receipt's access token (Authorization: Bearer)"))
    if vendor.tokens.check(token, item_id, vendor.now()) is None:
        return error_response(Forbidden("this access token does not open this file", reason="not_paid"))
    try:
        share, f = await run_in_threadpool(peer.shares.open, item_id)
    except NetPayError as exc:
        return error_response(exc)
    start, end, status = 0, share.size - 1, 200
    rng = request.headers.get("range")
    if rng is not None and (m := _RANGE.match(rng.replace(" ", ""))) is not None:
        a, b = m.group(1), m.group(2)
        if a == "" and b == "":
            f.close()
            return _unsatisfiable(share)
        if a == "":
            start = max(0, share.size - int(b[:20]))
        else:
            start = int(a[:20]) if len(a) <= 20 else share.size
            if b != "":
                end = min(end, int(b[:20]) if len(b) <= 20 else end)
        if start >= share.size or start > end:
            f.close()
            return _unsatisfiable(share)
        status = 206
    if not peer.download_slots.acquire(blocking=False):
        f.close()
        return error_response(RateLimited("too many downloads at once; try again shortly"),
                              headers={"Retry-After": "2"})  # fmt: skip
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "X-Content-SHA256": share.sha256,
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(share.sha256)).decode()}:",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(Path(share.path).name, safe='')}",
        "Cache-Control": "no-store",
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{share.size}"
    return StreamingResponse(_chunks(peer, f, start, end), status_code=status, headers=headers,
                             media_type="application/octet-stream")  # fmt: skip


async def _chunks(peer: PeerServer, f: IO[bytes], start: int, end: int) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(f.seek, start)
        left = end - start + 1
        while left > 0 and peer.running:
            chunk = await run_in_threadpool(f.read, min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        f.close()
        peer.download_slots.release()


def _unsatisfiable(share: Share) -> Response:
    return JSONResponse({"error": {"code": "malformed", "message": "the requested range is outside the file",
                                   "details": {"size": share.size}}},
                        status_code=416, headers={"Content-Range": f"bytes */{share.size}"})  # fmt: skip


class _Server(uvicorn.Server):
    """uvicorn, but a download cut short by switching sharing off (its connection is in h11's ERROR state, as it
    promised more bytes) does not crash the shutdown."""

    async def shutdown(self, sockets: Any = None) -> None:
        try:
            await super().shutdown(sockets)
        except h11.LocalProtocolError:
            log.info("a download was cut short by switching sharing off")


def peer_server(app: FastAPI, host: str, port: int, max_downloads: int, tls: dict[str, Any]) -> LiveServer:
    """The peer's uvicorn, to run in a daemon thread serving ``app`` (not started yet)."""
    return LiveServer(app, host, port, server_class=_Server, timeout_keep_alive=5, timeout_graceful_shutdown=1,
                      limit_concurrency=128 + 4 * max_downloads, **tls)  # fmt: skip

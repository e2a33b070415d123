"""Error mapping and strict request bodies for the FastAPI reference servers.

Every error leaves as ``{"error": {"code", "message", "details"}}`` with the status of its :class:`NetPayError`;
nothing ever answers 500 with a traceback. Bodies must be ``application/json``, at most ``max_body`` bytes, and are
parsed strictly (no floats, no duplicate keys).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netpay.encoding import parse_json
from netpay.errors import MalformedMessage, NetPayError, NotFound, PayloadTooLarge, UnsupportedMediaType

__all__ = ["BodyLimitMiddleware", "error_response", "install_error_handlers", "read_json", "read_json_bytes"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 256 * 1024


def error_response(exc: NetPayError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.to_body(), status_code=exc.http_status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map NetPay errors, validation errors, 404/405 and anything unexpected to JSON error bodies."""

    @app.exception_handler(NetPayError)
    async def _netpay(_: Request, exc: NetPayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0].get("loc", ())) if errors else "request"
        msg = errors[0].get("msg", "invalid") if errors else "invalid request"
        return error_response(MalformedMessage(f"{where}: {msg}", field=where))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("no such resource"))
        code = {405: "method_not_allowed", 401: "auth_required"}.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": {}}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - last resort
        log.exception("unexpected error")
        body = {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
        return JSONResponse(body, status_code=500)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_body`` bytes with 413 before the endpoint runs (Content-Length or streamed)."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    too_big = True
                if too_big:
                    await error_response(PayloadTooLarge(max_bytes=self.max_body))(scope, receive, send)
                    return
        seen = 0
        limit = self.max_body

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await error_response(PayloadTooLarge(max_bytes=self.max_body))(scope, receive, send)


class _TooLarge(Exception):
    pass


async def read_json_bytes(request: Request) -> bytes:
    """The raw body of a JSON request; refuses other media types and an empty body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType()
    body = await request.body()
    if not body:
        raise MalformedMessage("request body is empty")
    return body


async def read_json(request: Request) -> Any:
    """The request body as strict JSON; refuses other media types."""
    return parse_json(await read_json_bytes(request))

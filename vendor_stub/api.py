"""JSON endpoints of the vendor (``/v1/...``). Request bodies are read strictly and declared in the OpenAPI."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from netpay.encoding import FieldReader
from netpay.errors import NetPayError, NotFound
from netpay.messages import Quote
from netpay_web.http import read_json, read_json_bytes
from vendor_stub.access import bearer_token
from vendor_stub.service import Vendor
from vendor_stub.taking import PaymentTaker

__all__ = ["ERROR_RESPONSES", "build_api"]

_ERROR = {"description": "refusal: `{error: {code, message, details}}`"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {400: _ERROR, 404: _ERROR, 409: _ERROR, 413: _ERROR, 415: _ERROR}

_SIGNED = {
    "type": "object",
    "required": ["type", "version", "body", "signer", "signature"],
    "properties": {
        "type": {"type": "string"},
        "version": {"type": "integer"},
        "body": {"type": "object"},
        "signer": {"type": "string"},
        "signature": {"type": "string"},
    },
}
_MONEY = {"type": "object", "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}}}


def _body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


_QUOTE_REQUEST = {
    "type": "object",
    "required": ["item_id"],
    "properties": {"item_id": {"type": "string"}},
    "additionalProperties": False,
}
_RECEIPT_REQUEST = {
    "type": "object",
    "required": ["receipt"],
    "properties": {"receipt": _SIGNED, "reason": {"type": "string", "maxLength": 500}},
    "additionalProperties": False,
}
_TOKEN_REQUEST = {
    "type": "object",
    "required": ["token"],
    "properties": {"token": {"type": "string", "maxLength": 512}},
    "additionalProperties": False,
}
_PAYMENT = {
    "type": "object",
    "required": ["type", "version", "payment_id", "quote", "segments"],
    "properties": {
        "type": {"type": "string", "enum": ["payment"]},
        "version": {"type": "integer"},
        "payment_id": {"type": "string"},
        "quote": _SIGNED,
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["chain_id", "certificate", "from_index", "to_index", "payword"],
                "properties": {
                    "chain_id": {"type": "string"},
                    "certificate": _SIGNED,
                    "from_index": {"type": "integer"},
                    "to_index": {"type": "integer"},
                    "payword": {"type": "string"},
                },
            },
        },
    },
}


def build_api(vendor: Vendor, taker: PaymentTaker | None = None) -> APIRouter:
    """The ``/v1`` routes of one vendor (``taker``: shared with the paid API, else one of its own)."""
    router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    taker = taker or PaymentTaker(vendor)
    base = vendor.settings.base_url

    @router.get("/info", summary="Who this vendor is")
    def info() -> dict[str, Any]:
        cert = vendor.trust.certificate()
        return {
            "vendor_id": vendor.vendor_id,
            "display_name": vendor.settings.name,
            "public_key": vendor.key.public.hex,
            "certificate": cert.to_wire(),
        }

    @router.get("/catalog", summary="Items for sale with prices")
    def catalog() -> dict[str, Any]:
        return {"items": [item.to_json(base) for item in vendor.catalog.items]}

    @router.post("/quotes", summary="A signed quote for one item", openapi_extra=_body(_QUOTE_REQUEST))
    async def quotes(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        r = FieldReader(data, "quote_request")
        item_id = r.text("item_id", 64)
        r.done()
        item = vendor.catalog.get(item_id)
        if item is None:
            raise NotFound("no such item", item_id=item_id)
        cert = await run_in_threadpool(vendor.trust.certificate)
        now = vendor.now()
        quote = Quote(
            quote_id=secrets.token_hex(16),
            vendor_id=vendor.vendor_id,
            item_id=item.item_id,
            title=item.title,
            price=item.price,
            model=item.model,
            payment_url=f"{base}/v1/payments",
            item_url=f"{base}/items/{item.item_id}",
            issued_at=now,
            expires_at=now + vendor.settings.quote_ttl_s,
        )
        return {"quote": vendor.desk.issue_quote(quote), "vendor_certificate": cert.to_wire()}

    @router.post("/payments", summary="Pay a quote with payword segments", openapi_extra=_body(_PAYMENT))
    async def payments(request: Request) -> Response:
        try:
            body = await read_json_bytes(request)
        except NetPayError as exc:
            raise taker.unread(exc) from None
        data, parsed = taker.read(body)
        return Response(await taker.take(data, parsed), media_type="application/json")

    @router.get("/payments/{payment_id}", summary="The receipt of a payment (for a wallet settling after a crash)")
    def payment(payment_id: str) -> dict[str, Any]:
        return vendor.desk.receipt(payment_id)

    @router.post("/custody/release", summary="Another vendor takes over a chain", openapi_extra=_body(_SIGNED))
    async def release(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        signed = await run_in_threadpool(vendor.book.release_to_vendor, data)
        return signed.to_wire()

    @router.post("/custody/close", summary="The broker closes a chain", openapi_extra=_body(_SIGNED))
    async def close(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        signed = await run_in_threadpool(vendor.book.close_for_broker, data)
        return signed.to_wire()

    @router.post("/echo", summary="Plain JSON echo (diagnostics, benchmark baseline)",
                 openapi_extra=_body({"type": "object"}, {"hello": "world"}))  # fmt: skip
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(await read_json(request))

    @router.post("/refunds", summary="Ask for a refund with the shop's receipt (answer: granted, refused or pending)",
                 openapi_extra=_body(_RECEIPT_REQUEST))  # fmt: skip
    async def refund(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        answer: dict[str, Any] = await run_in_threadpool(vendor.refunds.request, data)
        return answer

    @router.get("/refunds/{refund_id}", summary="A refund request's state and the shop's signed decision")
    def refund_status(refund_id: str) -> dict[str, Any]:
        return vendor.refunds.status(refund_id)

    @router.post("/redeliveries", summary="A new access token for a receipt (new device, token lost or expired)",
                 openapi_extra=_body(_RECEIPT_REQUEST))  # fmt: skip
    async def redeliver(request: Request) -> dict[str, Any]:
        data = await read_json(request)
        answer: dict[str, Any] = await run_in_threadpool(vendor.refunds.redeliver, data)
        return answer

    def _session_token(request: Request) -> str | None:
        return bearer_token(request.headers.get("authorization"))

    @router.get("/metered/{session_id}", summary="A metered session: units paid, cap, total, open or ended "
                "(`Authorization: NetPay <session token>`)")  # fmt: skip
    def metered_session(session_id: str, request: Request) -> dict[str, Any]:
        return vendor.metered.session(session_id, _session_token(request)).to_json()

    @router.post("/metered/{session_id}/quote", summary="The signed quote for a metered session's next unit "
                 "(`Authorization: NetPay <session token>`)")  # fmt: skip
    async def metered_quote(session_id: str, request: Request) -> dict[str, Any]:
        token = _session_token(request)
        cert = await run_in_threadpool(vendor.trust.certificate)
        quote = await run_in_threadpool(vendor.metered.next_quote, session_id, token, vendor.vendor_id, base,
                                        vendor.settings.quote_ttl_s)  # fmt: skip
        return {"quote": vendor.desk.issue_quote(quote), "vendor_certificate": cert.to_wire()}

    @router.post("/metered/{session_id}/end", summary="End a metered session: no further unit is sold "
                 "(`Authorization: NetPay <session token>`)")  # fmt: skip
    async def metered_end(session_id: str, request: Request) -> dict[str, Any]:
        token = _session_token(request)
        state = await run_in_threadpool(vendor.metered.end, session_id, token)
        return state.to_json()

    @router.post("/access/codes", summary="A one-time code that opens an item page once, for an access token "
                 "(`{token}` -> `{code, expires_at}`; `/items/{id}?code=` sets the item's cookie)",
                 openapi_extra=_body(_TOKEN_REQUEST))  # fmt: skip
    async def access_code(request: Request) -> dict[str, Any]:
        r = FieldReader(await read_json(request), "body")
        token = r.text("token", 512)
        r.done()
        code, expires_at = await run_in_threadpool(vendor.handover.issue, token)
        return {"code": code, "expires_at": expires_at}

    @router.get("/access/{item_id}", summary="Whether an access token opens an item")
    def access(item_id: str, token: str = "") -> dict[str, Any]:
        grant = vendor.tokens.check(token, item_id, vendor.now())
        return {"valid": grant is not None, "valid_until": grant.valid_until if grant else None}

    return router

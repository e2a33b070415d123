"""Vendors: registration (operator), certificates, vendor account and payouts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from broker_stub.openapi import ERRORS, HEX, body, obj, signed
from broker_stub.routers.deps import broker_of, json_body, reply, require_operator, run
from netpay.encoding import parse_json
from netpay.errors import AuthenticationRequired, MalformedMessage

router = APIRouter(tags=["vendors"], responses=ERRORS)

_VENDOR_ID = Path(..., pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REGISTER = obj(
    {
        "vendor_id": {"type": "string", "example": "news-daily"},
        "display_name": {"type": "string", "example": "The Daily News"},
        "public_key": HEX,
        "origins": {"type": "array", "items": {"type": "string"}, "example": ["http://127.0.0.1:8201"]},
        "api_url": {"type": "string", "example": "http://127.0.0.1:8201"},
        "payment_url": {"type": "string", "example": "http://127.0.0.1:8201/v1/payments"},
    }
)


@router.post(
    "/v1/vendors",
    status_code=201,
    summary="Register a vendor and issue its certificate (operator)",
    openapi_extra=body(_REGISTER),
)
async def register(request: Request, x_operator_token: str | None = Header(None)) -> JSONResponse:
    require_operator(request, x_operator_token)
    data = await json_body(request)
    return reply(await run(broker_of(request).vendors.register, data))


@router.post(
    "/v1/vendors/{vendor_id}/revoke",
    summary="Revoke a vendor (operator)",
    openapi_extra=body({"type": "object", "additionalProperties": False}),
)
async def revoke(
    request: Request, vendor_id: str = _VENDOR_ID, x_operator_token: str | None = Header(None)
) -> dict[str, Any]:
    require_operator(request, x_operator_token)
    if await request.body() and await json_body(request) != {}:
        raise MalformedMessage("the revoke request body must be {} (or empty)", field="body")
    result: dict[str, Any] = await run(broker_of(request).vendors.revoke, vendor_id)
    return result


@router.get("/v1/vendors/{vendor_id}/certificate", summary="A vendor's broker-signed certificate")
async def certificate(request: Request, vendor_id: str = _VENDOR_ID) -> dict[str, Any]:
    result: dict[str, Any] = await run(broker_of(request).vendors.certificate, vendor_id)
    return result


@router.get("/v1/vendors/{vendor_id}/account", summary="A vendor's payable balance (vendor-signed or operator)")
async def account(
    request: Request,
    vendor_id: str = _VENDOR_ID,
    x_netpay_signed: str | None = Header(None),
    x_operator_token: str | None = Header(None),
) -> dict[str, Any]:
    broker = broker_of(request)
    if x_operator_token is not None:
        require_operator(request, x_operator_token)
    elif x_netpay_signed is not None:
        signed = parse_json(x_netpay_signed, where="X-NetPay-Signed")
        await run(broker.payouts.authorize, vendor_id, signed, "account")
    else:
        raise AuthenticationRequired("send X-NetPay-Signed (a signed vendor_request) or X-Operator-Token")
    result: dict[str, Any] = await run(broker.payouts.account, vendor_id)
    return result


@router.post(
    "/v1/vendors/{vendor_id}/payouts",
    status_code=201,
    summary="Pay a vendor's balance to its test bank",
    openapi_extra=body(signed("vendor_request")),
)
async def payout(request: Request, vendor_id: str = _VENDOR_ID) -> JSONResponse:
    data = await json_body(request)
    return reply(await run(broker_of(request).payouts.payout, vendor_id, data))

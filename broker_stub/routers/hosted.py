"""Hosted e-wallet API: the account's hosted chains and grants (session), and a vendor redeeming a code (signed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from broker_stub.openapi import ERRORS, MONEY, body, obj, signed
from broker_stub.routers.deps import broker_of, idempotent_account_write, json_body, require_session, run

router = APIRouter(tags=["hosted"], responses=ERRORS)


@router.get("/v1/account/hosted", summary="The hosted e-wallet: balance, grants with reported purchases, chains")
async def summary(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).hosted.summary, account_id)
    return result


@router.post(
    "/v1/account/hosted/chains",
    status_code=201,
    summary="Buy a hosted chain from the account balance (the broker generates and keeps it)",
    openapi_extra=body(obj({"length": {"type": "integer", "example": 500}, "coin_value": MONEY})),
)
async def buy(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    return await idempotent_account_write(request, authorization, idempotency_key, lambda b: b.hosted.buy)


@router.post("/v1/account/hosted/chains/{chain_id}/return", summary="Return a hosted chain to the account")
async def return_chain(request: Request, chain_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).hosted.return_chain, account_id, chain_id)
    return result


@router.post("/v1/account/hosted/grants/{grant_id}/revoke", summary="End a vendor's grant (unspent coins return)")
async def revoke(request: Request, grant_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).hosted.revoke, account_id, grant_id)
    return result


@router.post(
    "/v1/hosted/grants",
    summary="A vendor redeems an authorization code for a grant (a slice of a hosted chain)",
    openapi_extra=body(signed("grant_request")),
)
async def redeem(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).hosted.redeem_code, data)
    return result

"""Coin chains: ``POST /v1/chains`` (buy) and ``POST /v1/chains/{chain_id}/close`` (return unspent coins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from broker_stub.openapi import CARD, ERRORS, HEX, MONEY, body, obj
from broker_stub.routers.deps import broker_of, idempotent_account_write, json_body, require_session, run
from netpay.errors import MalformedMessage

router = APIRouter(tags=["chains"], responses=ERRORS)

_PURCHASE = obj(
    {"chain_id": HEX, "touchstone": HEX, "length": {"type": "integer"}, "coin_value": MONEY},
    {"card": CARD},
)


@router.post(
    "/v1/chains",
    status_code=201,
    summary="Buy a chain: charge and sign its coin certificate",
    openapi_extra=body(_PURCHASE),
)
async def purchase(
    request: Request,
    authorization: str | None = Header(None),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> JSONResponse:
    return await idempotent_account_write(request, authorization, idempotency_key, lambda b: b.issuing.purchase)


@router.post(
    "/v1/chains/{chain_id}/close",
    summary="Return a chain: refund its unspent coins and revoke it",
    openapi_extra=body({"type": "object", "additionalProperties": False}),
)
async def close(
    request: Request, chain_id: str = Path(..., pattern="^[0-9a-f]{32}$"), authorization: str | None = Header(None)
) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    if await request.body():
        data = await json_body(request)
        if data != {}:
            raise MalformedMessage("the close request body must be {} (or empty)", field="body")
    broker = broker_of(request)
    await run(broker.hosted.refuse_hosted, chain_id)  # hosted chains return through their grants
    result: dict[str, Any] = await run(broker.closing.close, account_id, chain_id)
    return result

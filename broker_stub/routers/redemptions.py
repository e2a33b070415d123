"""``POST /v1/redemptions``: a vendor's signed batch of claims; answers a signed per-claim result. ``POST
/v1/refunds``: a refund the vendor granted, paid from its payable to the account that bought the coins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from broker_stub.openapi import ERRORS, body, signed
from broker_stub.routers.deps import broker_of, json_body, reply, run

router = APIRouter(tags=["redemptions"], responses=ERRORS)


@router.post("/v1/redemptions", summary="Redeem a batch of claims", openapi_extra=body(signed("redemption_batch")))
async def redeem(request: Request) -> JSONResponse:
    data = await json_body(request)
    return reply(await run(broker_of(request).redemption.redeem, data))


@router.post("/v1/refunds", status_code=201, summary="Pay a refund a shop granted (from its payable)",
             openapi_extra=body(signed("refund_decision")))  # fmt: skip
async def refund(request: Request) -> JSONResponse:
    data = await json_body(request)
    return reply(await run(broker_of(request).refunds.refund, data))

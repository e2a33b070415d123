"""Vendor-signed custody: ``POST /v1/custody/claims`` and ``POST /v1/spend-reports``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from broker_stub.openapi import ERRORS, body, signed
from broker_stub.routers.deps import broker_of, json_body, run

router = APIRouter(tags=["custody"], responses=ERRORS)


@router.post(
    "/v1/custody/claims", summary="A vendor takes custody of a chain", openapi_extra=body(signed("custody_claim"))
)
async def claim(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).custody.claim, data)
    return result


@router.post(
    "/v1/custody/releases",
    summary="Record a custodian's signed release (bounds the custody windows of a hand-off)",
    openapi_extra=body(signed("custody_release")),
)
async def release(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).custody.release, data)
    return result


@router.post(
    "/v1/spend-reports",
    summary="A vendor reports accepted spends (raises lower bounds)",
    openapi_extra=body(signed("spend_report")),
)
async def spend_report(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).custody.spend_report, data)
    return result

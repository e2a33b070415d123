"""``GET /v1/revocations``: the signed revocation list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from broker_stub.openapi import ERRORS
from broker_stub.routers.deps import broker_of, run

router = APIRouter(tags=["revocations"], responses=ERRORS)


@router.get("/v1/revocations", summary="Signed list of revoked chains and vendors")
async def revocations(request: Request) -> dict[str, Any]:
    result: dict[str, Any] = await run(broker_of(request).revocations.current)
    return result

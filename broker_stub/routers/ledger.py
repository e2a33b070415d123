"""``GET /v1/ledger/trial-balance`` (operator): the double-entry ledger's totals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request

from broker_stub.audit import audit_report
from broker_stub.openapi import ERRORS
from broker_stub.routers.deps import broker_of, require_operator, run

router = APIRouter(tags=["ledger"], responses=ERRORS)


@router.get("/v1/ledger/trial-balance", summary="Trial balance of the ledger (operator)")
async def trial_balance(request: Request, x_operator_token: str | None = Header(None)) -> dict[str, Any]:
    require_operator(request, x_operator_token)
    return await run(audit_report, broker_of(request).core)

"""``GET /v1/info``: who this broker is and what it sells."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from broker_stub.openapi import ERRORS
from broker_stub.routers.deps import broker_of

router = APIRouter(tags=["info"], responses=ERRORS)


@router.get("/v1/info", summary="Broker identity, offer and fees")
def info(request: Request) -> dict[str, Any]:
    core = broker_of(request).core
    s = core.settings
    return {
        "broker_id": core.broker_id,
        "name": s.name,
        "public_key": core.key.public.hex,
        "fingerprint": core.key.public.fingerprint,
        "currencies": [s.currency],
        "coin_values": [core.money(v).to_json() for v in s.coin_values],
        "chain_length": {"min": s.chain_length_min, "max": s.chain_length_max, "default": s.chain_length_default},
        "fees": {"issue": core.money(0).to_json(), "redemption_bps": s.redemption_fee_bps},
        "revocation_url": s.base_url + "/v1/revocations",
    }

"""A minimal real custodian endpoint (``POST /v1/custody/close``) for close tests, served by a LiveServer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from netpay.messages import CloseRequest, CustodyRelease
from netpay.signed import Signed
from tests.support.broker import TestVendor


def custodian_app(vendor: TestVendor, held: dict[bytes, tuple[int, bytes]], broker_key: Any) -> FastAPI:
    """Answer close requests signed by ``broker_key`` with a release at the index held for the chain."""
    app = FastAPI()
    app.state.requests = []

    @app.post("/v1/custody/close")
    async def close(request: Request) -> JSONResponse:
        signed = Signed.from_wire(await request.json(), CloseRequest)
        signed.require_signer(broker_key)
        app.state.requests.append(signed.body)
        index, payword = held[signed.body.chain_id]
        release = CustodyRelease(signed.body.chain_id, vendor.vendor_id, "broker", index, payword, vendor.now())
        return JSONResponse(Signed.sign(release, vendor.key).to_wire())

    return app

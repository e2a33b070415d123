"""``create_app(settings)``: the broker's FastAPI application, one router per resource, OpenAPI docs at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from broker_stub import home, hosted_pages
from broker_stub.routers import accounts, chains, cis, custody, hosted, info, ledger, redemptions, revocations, vendors
from broker_stub.services import Broker
from broker_stub.settings import BrokerSettings
from netpay_web.http import BodyLimitMiddleware, install_error_handlers

__all__ = ["create_app"]


def create_app(settings: BrokerSettings, broker: Broker | None = None) -> FastAPI:
    """Build the broker app. Opens (creating on first start) the key, database and operator token at once."""
    broker = broker or Broker(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPIOffline(  # /docs and /redoc served from the package: they work without internet
        title="NetPay broker",
        version="1.0.0",
        description="Reference broker: accounts, coin chains, vendor certificates, custody, redemption, ledger.",
        lifespan=lifespan,
    )
    app.state.broker = broker
    install_error_handlers(app)
    for module in (info, accounts, chains, vendors, custody, redemptions, revocations, ledger, hosted, cis):
        app.include_router(module.router)
    app.include_router(home.router)
    app.include_router(hosted_pages.router)
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body)
    return app

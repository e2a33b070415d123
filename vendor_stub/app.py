"""``create_app(settings)``: the vendor's FastAPI application (shop pages, JSON API, static files, OpenAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from netpay.errors import NotFound
from netpay_web.http import BodyLimitMiddleware, error_response, install_error_handlers
from vendor_stub.api import build_api
from vendor_stub.catalog import Catalog
from vendor_stub.hosted import GrantBook, build_hosted
from vendor_stub.pages import build_pages
from vendor_stub.paid_api import build_paid_api
from vendor_stub.service import Vendor
from vendor_stub.settings import VendorSettings
from vendor_stub.taking import PaymentTaker

__all__ = ["create_app"]

STATIC = Path(__file__).parent / "static"


def create_app(settings: VendorSettings, catalog: Catalog | None = None) -> FastAPI:
    """Build the app; the vendor (database, key) opens now, background workers start with the server."""
    vendor = Vendor(settings, catalog)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        vendor.start()
        try:
            yield
        finally:
            vendor.close()

    app = FastAPIOffline(  # /docs and /redoc served from the package: they work without internet
        title=f"NetPay vendor: {settings.name}",
        version="1",
        description="A NetPay reference vendor: a small shop that takes payword e-coins.",
        lifespan=lifespan,
    )
    app.state.vendor = vendor
    install_error_handlers(app)

    @app.get("/static/netpay.js", include_in_schema=False)
    def netpay_js() -> Response:
        try:
            text = Path(settings.netpay_js).read_bytes()
        except OSError:
            return error_response(NotFound("netpay.js is not installed"))
        return Response(text, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((STATIC / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})  # fmt: skip

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        writer = vendor.store.writer
        return JSONResponse({"ok": True, "vendor_id": vendor.vendor_id, "commits": writer.commits,
                             "committed_jobs": writer.jobs, "inline_commits": writer.inline_commits})  # fmt: skip

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    taker = PaymentTaker(vendor)  # one group-commit batcher for every route that takes payments
    app.include_router(build_api(vendor, taker))
    app.include_router(build_paid_api(vendor, taker))
    app.include_router(build_hosted(vendor, GrantBook(vendor)))
    app.include_router(build_pages(vendor))
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body)
    return app

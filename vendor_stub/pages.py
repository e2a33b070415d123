"""The shop's HTML pages: front page, item pages (teaser and Buy button, or the paid content), earnings.

``/earnings`` is the publisher's page: it needs the publisher login (:mod:`vendor_stub.publisher`), made at
``/earnings/login``; anyone else gets the login form with 401.

An item page opens with the access token in its cookie, set by ``POST /v1/access/cookie`` (the page script) or by
exchanging a one-time ``?code=`` (the wallet's links; :mod:`vendor_stub.handover`); an older link's ``?access=``
is turned into the cookie the same way, and the browser is sent on to the plain URL. The
Buy button is the contract with ``/static/netpay.js``: ``button.np-buy`` with ``data-netpay-item`` and
``data-netpay-quote-url``; the hidden ``[data-netpay-hint]`` element is shown by the script when no wallet answers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from netpay.encoding import FieldReader
from netpay.errors import NotFound
from netpay.money import Money
from netpay_web.http import read_json
from vendor_stub.access import AccessGrant, bearer_token
from vendor_stub.catalog import Item
from vendor_stub.chart import SERIES, earnings_by_day, render_chart
from vendor_stub.metered import tone_wav
from vendor_stub.publisher import COOKIE, PublisherLogin, load_or_create_publisher_token
from vendor_stub.service import Vendor

__all__ = ["build_pages"]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _model_text(item: Item) -> str:
    """``"24-hour pass"`` for a pass, ``"yours to keep"`` for anything else."""
    if item.is_pass and item.model.duration_s:
        hours = item.model.duration_s // 3600
        return f"{hours}-hour pass" if hours else f"{item.model.duration_s // 60}-minute pass"
    return "yours to keep"


def _duration_text(item: Item) -> str:
    """How long a pass lasts, as a phrase: ``"24 hours"``, ``"1 hour"``, ``"30 minutes"``."""
    seconds = item.model.duration_s or 0
    n, unit = (seconds // 3600, "hour") if seconds >= 3600 else (seconds // 60, "minute")
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _cookie_name(item: Item) -> str:
    return "np_pass" if item.is_pass else f"np_item_{item.item_id}"


def build_pages(vendor: Vendor) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    catalog = vendor.catalog
    login = PublisherLogin(vendor.settings.publisher_token or load_or_create_publisher_token(vendor.settings.data_dir))
    secure_cookie = vendor.settings.base_url.startswith("https://")

    def login_page(request: Request, failed: bool, status: int) -> Response:
        ctx = {**common(request), "failed": failed}
        return TEMPLATES.TemplateResponse(request, "login.html", ctx, status_code=status,
                                          headers={"Cache-Control": "no-store"})  # fmt: skip

    @router.post("/earnings/login", response_class=HTMLResponse)
    async def earnings_login(request: Request) -> Response:
        body = await request.body()
        try:
            typed = parse_qs(body.decode("utf-8"), max_num_fields=4).get("token", [""])[0]
        except (UnicodeDecodeError, ValueError):
            typed = ""
        if not login.check_token(typed):
            return login_page(request, failed=True, status=401)
        resp = RedirectResponse("/earnings", status_code=303)
        resp.set_cookie(COOKIE, login.cookie_value(), httponly=True, samesite="strict", secure=secure_cookie,
                        path="/earnings", max_age=12 * 3600)  # fmt: skip
        return resp

    @router.post("/earnings/refunds/{refund_id}", response_class=HTMLResponse)
    async def earnings_refund(request: Request, refund_id: str) -> Response:
        """The publisher grants or refuses a pending refund (form: ``decision`` = grant | refuse, ``reason``)."""
        if not login.check_cookie(request.cookies.get(COOKIE)):
            return login_page(request, failed=False, status=401)
        try:
            form = parse_qs((await request.body()).decode("utf-8"), max_num_fields=4)
        except (UnicodeDecodeError, ValueError):
            form = {}
        choice = form.get("decision", [""])[0]
        if choice in ("grant", "refuse"):
            reason = form.get("reason", [""])[0][:500]
            await run_in_threadpool(vendor.refunds.decide, refund_id, choice == "grant", reason)
        return RedirectResponse("/earnings#refunds", status_code=303)

    @router.post("/earnings/logout", response_class=HTMLResponse)
    def earnings_logout() -> Response:
        resp = RedirectResponse("/earnings", status_code=303)
        resp.delete_cookie(COOKIE, path="/earnings")
        return resp

    def common(request: Request) -> dict[str, object]:
        return {
            "request": request,
            "shop": vendor.settings.name or catalog.name,
            "catalog": catalog,
            "today": dt.datetime.fromtimestamp(vendor.now(), dt.UTC).strftime("%A, %d %B %Y"),
            "model_text": _model_text,
            "duration_text": _duration_text,
        }

    @router.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        items = list(catalog.articles)
        return TEMPLATES.TemplateResponse(request, "index.html", {**common(request), "items": items,
                                                                    "passes": catalog.passes})  # fmt: skip

    def set_access_cookie(resp: Response, item: Item, grant: AccessGrant, token: str) -> None:
        """Remember a token in the browser (HttpOnly, this shop only): the item's cookie, or the pass's."""
        now = vendor.now()
        max_age = (grant.valid_until - now) if grant.valid_until else 365 * 86400
        cookie = "np_pass" if grant.is_pass else _cookie_name(item)
        resp.set_cookie(cookie, token, max_age=max_age, httponly=True, samesite="lax", path="/",
                        secure=secure_cookie)  # fmt: skip

    # access tokens never stay in a URL: a one-time code (or, from older links, a token) in the query is turned
    # into the item's cookie and the browser is sent on to the plain URL at once
    def handed_over(item: Item, code: str, access: str) -> Response:
        token = vendor.handover.exchange(code) if code else access or None
        grant = vendor.tokens.check(token, item.item_id, vendor.now()) if token else None
        resp = RedirectResponse(f"/items/{item.item_id}", status_code=303,
                                headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})  # fmt: skip
        if grant is not None and token is not None:
            set_access_cookie(resp, item, grant, token)
        return resp

    @router.get("/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str, access: str = "", code: str = "") -> Response:
        item = catalog.get(item_id)
        if item is None or item.api:
            ctx = {**common(request), "items": list(catalog.articles)[:4]}
            return TEMPLATES.TemplateResponse(request, "missing.html", ctx, status_code=404)
        if code or access:
            return handed_over(item, code, access)
        now = vendor.now()
        grant = vendor.tokens.check(request.cookies.get(_cookie_name(item)), item_id, now)
        if grant is None and not item.is_pass:
            grant = vendor.tokens.check(request.cookies.get("np_pass"), item_id, now)
        for bundle in catalog.bundles_of(item_id) if grant is None else ():
            grant = grant or vendor.tokens.check(request.cookies.get(_cookie_name(bundle)), item_id, now)
        if item.is_metered:
            grant = None  # paid per unit used: a pass or another token opens the player, never the units
        if grant is not None:
            vendor.refunds.mark_opened(grant.receipt_id)
        until = (dt.datetime.fromtimestamp(grant.valid_until, dt.UTC).strftime("%d %b %Y, %H:%M UTC")
                 if grant and grant.valid_until else None)  # fmt: skip
        others = [i for i in catalog.stories if i.item_id != item_id][:3]
        members = [m for m in (catalog.get(i) for i in item.model.items) if m is not None]
        ctx = {**common(request), "item": item, "grant": grant, "until": until, "others": others, "members": members,
               "passes": [p for p in catalog.passes if p.item_id != item_id]}  # fmt: skip
        # no Referer to another site from an item page (the meta tag in base.html says the same to browsers that
        # read only that)
        return TEMPLATES.TemplateResponse(request, "item.html", ctx, headers={"Referrer-Policy": "no-referrer"})

    @router.post("/v1/access/cookie", include_in_schema=False)
    async def access_cookie(request: Request) -> Response:
        """The page script hands over the token the wallet gave it: the item's cookie is set, the page opens the
        item's plain URL (``{"item_url"}``)."""
        r = FieldReader(await read_json(request), "body")
        token = r.text("token", 512)
        r.done()
        grant = vendor.handover.grant(token)
        item = catalog.get(grant.item_id)
        if item is None:
            raise NotFound("the token's item is no longer sold", item_id=grant.item_id)
        resp = JSONResponse({"item_url": f"{vendor.settings.base_url}/items/{item.item_id}"},
                            headers={"Cache-Control": "no-store"})  # fmt: skip
        set_access_cookie(resp, item, grant, token)
        return resp

    @router.get("/metered/{session_id}/units/{unit_no}")
    def metered_unit(request: Request, session_id: str, unit_no: int) -> Response:
        """One unit of a metered item (30 s of the podcast), for the session's token in ``Authorization`` only and
        only once the unit is paid."""
        token = bearer_token(request.headers.get("authorization"))
        state = vendor.metered.unit_paid(session_id, token, unit_no)
        item = catalog.get(state.item_id)
        seconds = (item.model.unit_s if item is not None else None) or 30
        receipt_id = vendor.metered.unit_receipt_id(session_id, unit_no)
        if receipt_id is not None:
            vendor.refunds.mark_opened(receipt_id)
        return Response(tone_wav(unit_no, seconds), media_type="audio/wav",
                        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})  # fmt: skip

    @router.get("/earnings", response_class=HTMLResponse)
    def earnings(request: Request, days: int = 14) -> Response:
        if not login.check_cookie(request.cookies.get(COOKIE)):
            return login_page(request, failed=False, status=401)
        days = min(max(days, 1), 60)
        today = dt.datetime.fromtimestamp(vendor.now(), dt.UTC).date()
        series = earnings_by_day(vendor.store, days, today)
        totals = {key: sum(getattr(d, key) for d in series) for key, _, _ in SERIES}
        amount = Money(sum(d.amount for d in series), catalog.currency)
        redeemed_row = vendor.store.one("SELECT COALESCE(SUM(amount), 0) AS a FROM spends WHERE status = 'redeemed'")
        chains = vendor.store.one(
            "SELECT COUNT(*) AS n, SUM(CASE WHEN status = 'held' THEN 1 ELSE 0 END) AS held FROM chains"
        )
        ctx = {**common(request), "chart": render_chart(series), "series": SERIES, "days": list(reversed(series)),
               "totals": totals, "amount": amount,
               "redeemed_amount": Money(int(redeemed_row["a"]) if redeemed_row else 0, catalog.currency),
               "chains": int(chains["n"] or 0) if chains else 0, "held": int(chains["held"] or 0) if chains else 0,
               "vendor_id": vendor.vendor_id, "refunds": vendor.refunds.pending(),
               "money": lambda a, c: Money(int(a), c)}  # fmt: skip
        return TEMPLATES.TemplateResponse(request, "earnings.html", ctx, headers={"Cache-Control": "no-store"})

    return router

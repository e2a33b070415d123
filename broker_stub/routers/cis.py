"""The Central Indexing Server of P2P-NetPay: peer registration, heartbeats, listings, search and a browse page."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from broker_stub.openapi import ERRORS, HEX, MONEY, body, obj
from broker_stub.routers.deps import broker_of, json_body, reply, require_session, run

router = APIRouter(tags=["cis"], responses=ERRORS)

_REGISTER = obj(
    {
        "display_name": {"type": "string", "example": "Alice's files"},
        "public_key": HEX,
        "api_url": {"type": "string", "example": "https://203.0.113.2:8301"},
        "proof": {"type": "string", "description": "the key's signature of the registration text, hex"},
    }
)
_LISTING = obj(
    {
        "item_id": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "size": {"type": "integer"},
        "sha256": HEX,
        "price": MONEY,
    }
)


@router.post("/v1/cis/peers", status_code=201, summary="Certify the account's peer (a wallet that sells)",
             openapi_extra=body(_REGISTER))  # fmt: skip
async def register(request: Request, authorization: str | None = Header(None)) -> JSONResponse:
    account_id = await require_session(request, authorization)
    data = await json_body(request)
    return reply(await run(broker_of(request).cis.register, account_id, data))


@router.put("/v1/cis/listings", summary="Replace the peer's listings (also a heartbeat)",
            openapi_extra=body(obj({"listings": {"type": "array", "items": _LISTING}})))  # fmt: skip
async def listings(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    data = await json_body(request)
    result: dict[str, Any] = await run(broker_of(request).cis.put_listings, account_id, data)
    return result


@router.post("/v1/cis/heartbeat", summary="The peer is online: keep its listings visible")
async def heartbeat(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).cis.heartbeat, account_id)
    return result


@router.post("/v1/cis/offline", summary="The peer stops sharing: its listings disappear at once")
async def offline(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).cis.offline, account_id)
    return result


@router.get("/v1/cis/search", summary="Search the listings of online peers (paged, cheapest first)")
async def search(
    request: Request, q: str = Query("", max_length=200), page: int = Query(1, ge=1, le=10_000),
    per_page: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:  # fmt: skip
    result: dict[str, Any] = await run(broker_of(request).cis.search, q, page, per_page)
    return result


@router.get("/v1/cis/standing", summary="The account's peer-to-peer requests, supply and policy standing")
async def standing(request: Request, authorization: str | None = Header(None)) -> dict[str, Any]:
    account_id = await require_session(request, authorization)
    result: dict[str, Any] = await run(broker_of(request).cis.standing, account_id)
    return result


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n}"


@router.get("/cis", response_class=HTMLResponse, include_in_schema=False)
async def browse(request: Request, q: str = Query("", max_length=200), page: int = Query(1, ge=1, le=10_000)
                 ) -> HTMLResponse:  # fmt: skip
    found = await run(broker_of(request).cis.search, q, page, 20)
    rows = (
        "".join(
            f"<tr><td><b>{escape(r['title'])}</b><br><small>{escape(r['description'])}</small></td>"
            f"<td>{escape(r['seller'])}</td><td>{_size(r['size'])}</td>"
            f"<td>{r['price']['amount'] / 100:.2f} {escape(r['price']['currency'])}</td>"
            f"<td><code>{r['sha256'][:16]}…</code></td></tr>"
            for r in found["results"]
        )
        or '<tr><td colspan="5">No peer is sharing anything that matches.</td></tr>'
    )
    nav = ""
    if page > 1:
        nav += f'<a href="/cis?q={escape(q)}&amp;page={page - 1}">&larr; previous</a> '
    if page < found["pages"]:
        nav += f'<a href="/cis?q={escape(q)}&amp;page={page + 1}">next &rarr;</a>'
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shared files</title>
<style>body{{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1f2937;background:#f8fafc}}
main{{max-width:900px;margin:0 auto;padding:28px 16px}} table{{width:100%;border-collapse:collapse;background:#fff}}
td,th{{padding:8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top;overflow-wrap:anywhere}}
input{{font:inherit;padding:6px;width:60%}} small{{color:#4b5563}}</style></head><body><main>
<h1>Files shared by NetPay wallets</h1>
<form action="/cis"><input name="q" value="{escape(q)}" placeholder="Search titles and descriptions">
<button>Search</button></form>
<p>{found["total"]} listing{"" if found["total"] == 1 else "s"} from peers online now. Buy them with the NetPay
Wallet's Find page.</p>
<table><tr><th>File</th><th>Seller</th><th>Size</th><th>Price</th><th>SHA-256</th></tr>{rows}</table>
<p>{nav}</p></main></body></html>"""
    return HTMLResponse(html)

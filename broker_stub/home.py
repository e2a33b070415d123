"""The broker's ``/``: a small page for a person who opens the broker's address in a browser (the README sends them
there): who the broker is, its key fingerprint to compare with the wallet's, and where the API and its docs are."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from broker_stub.routers.deps import broker_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title><link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
body {{ margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
  background: #f8fafc; }}
main {{ max-width: 720px; margin: 0 auto; padding: 40px 20px; }}
h1 {{ font-size: 28px; margin: 0 0 6px; }} p {{ margin: 0 0 14px; }}
.lead {{ color: #4b5563; font-size: 18px; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 8px 18px; background: #fff; border: 1px solid #e5e7eb;
  border-radius: 10px; padding: 18px 20px; margin: 22px 0; }}
dt {{ font-weight: 600; }}
dd {{ margin: 0; overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: 14px; }}
ul {{ padding-left: 20px; }} a {{ color: #1d4ed8; }}
@media (max-width: 600px) {{ dl {{ grid-template-columns: 1fr; }} dd {{ margin-bottom: 6px; }} }}
</style></head>
<body><main>
<h1>{name}</h1>
<p class="lead">A NetPay broker: it sells e-coins to wallets, certifies shops and redeems what they earn.
Customers use the NetPay Wallet, or <a href="/wallet">their account's hosted e-wallet</a> on a phone; shops use the
API.</p>
<dl>
<dt>Broker id</dt><dd>{broker_id}</dd>
<dt>Key fingerprint</dt><dd>{fingerprint}</dd>
<dt>Currency</dt><dd>{currency}</dd>
</dl>
<p>Compare the fingerprint with the one the wallet shows under <em>Brokers</em> before you trust this broker.</p>
<ul>
<li><a href="/docs">API documentation</a> (every endpoint, try it out)</li>
<li><a href="/v1/info">/v1/info</a> &mdash; identity, coin values and fees as JSON</li>
<li><a href="/v1/revocations">/v1/revocations</a> &mdash; the signed revocation list</li>
</ul>
</main></body></html>
"""

_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect x="4" y="4" width="56" height="56" rx="14" '
    'fill="#1d4ed8"/><circle cx="32" cy="32" r="17" fill="none" stroke="#fff" stroke-width="3.5"/></svg>'
)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    core = broker_of(request).core
    page = _PAGE.format(
        name=escape(core.settings.name),
        broker_id=escape(core.broker_id),
        fingerprint=escape(core.key.public.fingerprint),
        currency=escape(core.settings.currency),
    )
    return HTMLResponse(page)


@router.get("/favicon.ico")
def favicon() -> HTMLResponse:
    return HTMLResponse(_ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

"""The small HTML pages of the navigation fallback: waiting for the customer's answer, or why it was refused.

The waiting page needs no script: it reloads itself at once (``<meta http-equiv="refresh">``) with ``held=1``, a
request the wallet holds until the purchase moves on (or for some seconds, then the page is served again), so the
browser leaves the moment the purchase is paid; that reload is a redirect back to the vendor's return URL with the
access token.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.responses import HTMLResponse

from netpay.errors import NetPayError
from wallet_app.callback.prompts import Prompt

__all__ = ["error_page", "waiting_page"]

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.3rem}.muted{color:#666}"
)


def _page(title: str, body: str, status: int = 200, refresh: str | None = None) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{escape(refresh)}">' if refresh else ""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def waiting_page(prompt: Prompt, status: dict[str, Any], reload_url: str | None = None) -> HTMLResponse:
    """Pending: ask the customer to answer in the wallet, and reload ``reload_url`` at once (the wallet holds that
    request until the purchase moves on, or for some seconds). Finished without payment: say so."""
    state = status["status"]
    what = f"{escape(prompt.item_title)} from {escape(prompt.vendor_name)} for {escape(prompt.price.format())}"
    if state == "pending":
        body = (
            f'<h1 id="np-state" data-state="pending">Waiting for your wallet…</h1><p>{what}</p>'
            '<p class="muted">Answer the NetPay Wallet window. This page moves on by itself.</p>'
        )
        # without a URL that the wallet holds, a plain reload every second
        refresh = f"0; url={reload_url}" if reload_url else "1"
        return _page("Waiting for NetPay Wallet", body, refresh=refresh)
    messages = {
        "declined": "You declined this purchase. Nothing was paid.",
        "expired": "The offer expired before it was answered. Nothing was paid.",
        "failed": "The payment did not go through: " + escape(str(status.get("error", {}).get("message", ""))),
    }
    body = f'<h1 id="np-state" data-state="{escape(state)}">{messages.get(state, escape(state))}</h1><p>{what}</p>'
    return _page("NetPay Wallet", body)


def error_page(exc: NetPayError) -> HTMLResponse:
    """A refused navigation: the stable code and a sentence, nothing else."""
    body = (
        f'<h1 id="np-state" data-state="refused" data-code="{escape(exc.code)}">The wallet refused this purchase</h1>'
        f"<p>{escape(exc.message)}</p><p class='muted'>code: {escape(exc.code)}</p>"
    )
    return _page("NetPay Wallet", body, status=exc.http_status)

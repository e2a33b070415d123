"""The small HTML pages of the navigation fallback: waiting for the customer's answer, or why it was refused.

The waiting page needs no script: it reloads itself every second (``<meta http-equiv="refresh">``) until the wallet
answers; once paid, the reload is a redirect back to the vendor's return URL with the access token.
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


def _page(title: str, body: str, status: int = 200, refresh: bool = False) -> HTMLResponse:
    meta = '<meta http-equiv="refresh" content="1">' if refresh else ""
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def waiting_page(prompt: Prompt, status: dict[str, Any]) -> HTMLResponse:
    """Pending: ask the customer to answer in the wallet. Finished without payment: say so."""
    state = status["status"]
    what = f"{escape(prompt.item_title)} from {escape(prompt.vendor_name)} for {escape(prompt.price.format())}"
    if state == "pending":
        body = (
            f'<h1 id="np-state" data-state="pending">Waiting for your wallet…</h1><p>{what}</p>'
            '<p class="muted">Answer the NetPay Wallet window. This page moves on by itself.</p>'
        )
        return _page("Waiting for NetPay Wallet", body, refresh=True)
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

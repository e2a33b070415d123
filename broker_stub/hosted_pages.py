"""The broker's customer pages for the hosted e-wallet (mobile first, 375 px): log in, approve a vendor's grant
(the authorization-code redirect), and the wallet page (hosted balance, grants, reported purchases, revoke, buy).

The login cookie ``np_broker`` holds a session token (HttpOnly, SameSite=Lax, Secure over HTTPS). Every form post
carries a CSRF token (an HMAC of the session token under a broker secret) and is refused when the browser says it
comes from another site (``Origin`` not this broker, or ``Sec-Fetch-Site: cross-site``): error code ``forbidden``.
The pages send ``Referrer-Policy: same-origin`` (under ``no-referrer`` Chromium posts ``Origin: null``, refused).
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from broker_stub.hosted import DURATIONS
from broker_stub.routers.deps import broker_of, run
from broker_stub.services import Broker
from netpay.errors import Forbidden, MalformedMessage, NetPayError
from netpay.messages.hosted import check_pkce_text
from netpay.money import Money

__all__ = ["COOKIE", "router"]

router = APIRouter(include_in_schema=False)
COOKIE = "np_broker"

_CSS = """
*{box-sizing:border-box} body{margin:0;font:17px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2937;
background:#f1f5f9} main{max-width:560px;margin:0 auto;padding:18px 16px 40px}
h1{font-size:22px;margin:4px 0 14px} h2{font-size:18px;margin:22px 0 8px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:14px;padding:16px;margin:0 0 12px}
.big{font-size:30px;font-weight:700} .muted{color:#64748b;font-size:15px} .vendor{font-size:20px;font-weight:700}
label{display:block;font-weight:600;margin:12px 0 4px} input,select{width:100%;font-size:17px;padding:11px;
border:1px solid #cbd5e1;border-radius:10px;background:#fff}
button{width:100%;min-height:48px;font-size:17px;font-weight:600;border:0;border-radius:12px;margin-top:14px;
background:#1d4ed8;color:#fff} button.secondary{background:#e2e8f0;color:#1f2937} button.danger{background:#b91c1c}
.row{display:flex;justify-content:space-between;gap:10px} .error{background:#fee2e2;color:#991b1b;padding:12px;
border-radius:10px} ul{padding-left:18px;margin:6px 0} .top{display:flex;justify-content:space-between;
align-items:center} .top form button{width:auto;min-height:36px;padding:0 14px;margin:0}
"""


def _page(title: str, inner: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>{inner}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                                           "Referrer-Policy": "same-origin"})  # fmt: skip


def _error(message: str, code: str, status: int) -> HTMLResponse:
    return _page("NetPay", f'<h1>NetPay</h1><p class="error" data-code="{escape(code)}">{escape(message)}</p>',
                 status)  # fmt: skip


def _csrf(broker: Broker, token: str) -> str:
    return hmac.new(broker.core.operator_token.encode(), b"csrf|" + token.encode(), hashlib.sha256).hexdigest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    try:
        fields = parse_qs(raw.decode("utf-8"), max_num_fields=20, keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise MalformedMessage("the form could not be read") from None
    return {k: v[0] for k, v in fields.items()}


def _same_site(request: Request) -> None:
    """Refuse a form post the browser marks as coming from another site."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None and origin != own:
        raise Forbidden("this form was posted from another site", reason="cross_site")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden("this form was posted from another site", reason="cross_site")


async def _account(request: Request) -> tuple[str, str] | None:
    """(account id, session token) of the logged-in customer, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        account_id = await run(broker_of(request).accounts.authenticate, "Bearer " + token)
    except NetPayError:
        return None
    return account_id, token


async def _checked_post(request: Request) -> tuple[str, str, dict[str, str]]:
    _same_site(request)
    who = await _account(request)
    if who is None:
        raise Forbidden("log in first", reason="no_session")
    form = await _form(request)
    if not hmac.compare_digest(form.get("csrf", ""), _csrf(broker_of(request), who[1])):
        raise Forbidden("the form's CSRF token is missing or wrong", reason="csrf")
    return who[0], who[1], form


def _money(amount: dict[str, Any]) -> str:
    return str(Money.from_json(amount, "amount"))


# -- log in ------------------------------------------------------------------------------------------------------
def _login_form(next_url: str, failed: bool = False) -> HTMLResponse:
    err = '<p class="error">Wrong username or password.</p>' if failed else ""
    return _page(
        "Log in — NetPay",
        f"""<h1>Log in to your NetPay account</h1>{err}
<form method="post" action="/hosted/login" class="card">
<input type="hidden" name="next" value="{escape(next_url)}">
<label for="u">Username</label><input id="u" name="username" autocomplete="username" required>
<label for="p">Password</label><input id="p" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button></form>""",
        401 if failed else 200,
    )


@router.get("/hosted/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return _login_form(_local(request.query_params.get("next", "/wallet")))


def _local(next_url: str) -> str:
    """Only paths on this broker may follow a login (no open redirect)."""
    return (
        next_url if next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url else "/wallet"
    )


@router.post("/hosted/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    try:
        _same_site(request)
    except NetPayError as exc:
        return _error(exc.message, exc.code, exc.http_status)
    try:
        form = await _form(request)
        answer = await run(broker_of(request).accounts.login,
                           {"username": form.get("username", ""), "password": form.get("password", "")})  # fmt: skip
    except NetPayError:
        return _login_form(_local(form.get("next", "/wallet")) if "form" in locals() else "/wallet", failed=True)
    resp = RedirectResponse(_local(form.get("next", "/wallet")), status_code=303)
    resp.set_cookie(COOKIE, answer["token"], httponly=True, samesite="lax", secure=_secure(request), path="/",
                    max_age=broker_of(request).core.settings.session_ttl_s)  # fmt: skip
    return resp


@router.post("/hosted/logout", response_class=HTMLResponse)
async def logout(request: Request) -> Response:
    await _checked_post(request)
    resp = RedirectResponse("/wallet", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- authorize (the grant redirect) ------------------------------------------------------------------------------
def _authorize_params(q: Any) -> dict[str, str]:
    params = {k: str(q.get(k, "")) for k in ("client_id", "redirect_uri", "state", "code_challenge",
                                             "code_challenge_method", "budget")}  # fmt: skip
    if params["code_challenge_method"] != "S256":
        raise MalformedMessage("code_challenge_method must be S256", field="code_challenge_method")
    check_pkce_text(params["code_challenge"], "code_challenge")
    if not 1 <= len(params["state"]) <= 256:
        raise MalformedMessage("state is required (1 to 256 characters)", field="state")
    return params


@router.get("/hosted/authorize", response_class=HTMLResponse)
async def authorize(request: Request) -> Response:
    broker = broker_of(request)
    try:
        params = _authorize_params(request.query_params)
        vendor = await run(broker.hosted.check_client, params["client_id"], params["redirect_uri"])
    except NetPayError as exc:  # never redirect to an unchecked URI: show the error here
        return _error(exc.message, exc.code, exc.http_status)
    who = await _account(request)
    if who is None:
        return _login_form(str(request.url.path) + "?" + str(request.url.query))
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in params.items() if k != "budget"
    )
    try:
        budget = int(params["budget"]) if params["budget"] else 100
    except ValueError:
        budget = 100
    summary = await run(broker.hosted.summary, who[0])
    options = "".join(f'<option value="{s}"{" selected" if s == 86400 else ""}>{label}</option>'
                      for s, label in DURATIONS.items())  # fmt: skip
    return _page(
        "Allow a shop — NetPay",
        f"""<h1>Pay from your NetPay account</h1>
<div class="card"><div class="vendor" data-vendor-name>{escape(vendor["display_name"])}</div>
<div class="muted">certified by {escape(broker.core.settings.name)} · {escape(vendor["vendor_id"])}</div>
<p>wants to take payments from your hosted e-wallet (available: <b>{_money(summary["hosted_balance"])}</b>).</p></div>
<form method="post" action="/hosted/authorize" class="card">{hidden}
<input type="hidden" name="csrf" value="{_csrf(broker, who[1])}">
<label for="b">Budget ({escape(broker.core.settings.currency)})</label>
<input id="b" name="budget" inputmode="decimal" value="{budget / 100:.2f}">
<label for="d">For</label><select id="d" name="duration">{options}</select>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Cancel</button></form>""",
    )


@router.post("/hosted/authorize", response_class=HTMLResponse)
async def approve(request: Request) -> Response:
    broker = broker_of(request)
    try:
        account_id, _, form = await _checked_post(request)
        params = _authorize_params(form)
        await run(broker.hosted.check_client, params["client_id"], params["redirect_uri"])
        sep = "&" if "?" in params["redirect_uri"] else "?"
        if form.get("decision") != "allow":
            query = urlencode({"error": "access_denied", "state": params["state"]})
            return RedirectResponse(params["redirect_uri"] + sep + query, status_code=303)
        budget = _parse_euros(form.get("budget", ""))
        duration = int(form.get("duration", "0")) if form.get("duration", "").isdigit() else 0
        code = await run(broker.hosted.issue_code, account_id, params["client_id"], params["redirect_uri"],
                         params["code_challenge"], broker.core.money(budget), duration)  # fmt: skip
    except NetPayError as exc:
        return _error(exc.message, exc.code, exc.http_status)
    query = urlencode({"code": code, "state": params["state"]})
    return RedirectResponse(params["redirect_uri"] + sep + query, status_code=303)


def _parse_euros(text: str) -> int:
    """``"1.50"`` → 150 minor units."""
    text = text.strip().replace(",", ".")
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)) or len(whole) > 7:
        raise MalformedMessage("the budget is an amount like 2.50", field="budget")
    return int(whole) * 100 + int((frac + "00")[:2])


_ENDED = {
    "handed_on": "moved to another shop",
    "renewed": "replaced by a new budget",
    "revoked": "revoked",
    "expired": "expired",
    "returned": "returned",
}


# -- the wallet page ---------------------------------------------------------------------------------------------
@router.get("/wallet", response_class=HTMLResponse)
async def wallet(request: Request) -> Response:
    who = await _account(request)
    if who is None:
        return _login_form("/wallet")
    broker = broker_of(request)
    s = await run(broker.hosted.summary, who[0])
    balance = await run(broker.accounts.balance, who[0])
    csrf = _csrf(broker, who[1])
    grants = []
    for g in s["grants"]:
        buys = "".join(f"<li>{_money(p['amount'])} ({p['coins']} coin{'s' if p['coins'] != 1 else ''})</li>"
                       for p in g["purchases"]) or '<li class="muted">no purchases reported yet</li>'  # fmt: skip
        state = "active" if g["status"] == "active" else _ENDED.get(g["end_reason"] or "", "ended")
        revoke = (f'<form method="post" action="/wallet/grants/{escape(g["grant_id"])}/revoke">'
                  f'<input type="hidden" name="csrf" value="{csrf}"><button class="danger">Revoke</button></form>'
                  if g["status"] == "active" else "")  # fmt: skip
        grants.append(f"""<div class="card" data-grant="{escape(g["grant_id"])}" data-status="{escape(g["status"])}">
<div class="vendor">{escape(g["vendor_name"])}</div><div class="muted">{state}</div>
<div class="row"><span>Budget {_money(g["budget"])}</span><span>Spent <b>{_money(g["spent"])}</b></span></div>
<div>Remaining: <b data-remaining>{_money(g["remaining"])}</b></div><ul>{buys}</ul>{revoke}</div>""")
    return _page(
        "My NetPay account",
        f"""<div class="top"><h1>My NetPay account</h1>
<form method="post" action="/hosted/logout"><input type="hidden" name="csrf" value="{csrf}">
<button class="secondary">Log out</button></form></div>
<div class="card"><div class="muted">Hosted e-wallet</div>
<div class="big" data-hosted>{_money(s["hosted_balance"])}</div>
<div class="muted">granted to shops: {_money(s["granted"])} · account: {balance}</div>
<form method="post" action="/wallet/buy"><input type="hidden" name="csrf" value="{csrf}">
<label for="a">Move from the account to the hosted e-wallet</label>
<input id="a" name="amount" inputmode="decimal" value="5.00"><button>Buy hosted coins</button></form></div>
<h2>Shops you allowed</h2>{"".join(grants) or '<p class="muted">No shop yet.</p>'}""",
    )


@router.post("/wallet/grants/{grant_id}/revoke", response_class=HTMLResponse)
async def revoke(request: Request, grant_id: str) -> Response:
    try:
        account_id, _, _ = await _checked_post(request)
        await run(broker_of(request).hosted.revoke, account_id, grant_id)
    except NetPayError as exc:
        return _error(exc.message, exc.code, exc.http_status)
    return RedirectResponse("/wallet", status_code=303)


@router.post("/wallet/buy", response_class=HTMLResponse)
async def buy(request: Request) -> Response:
    broker = broker_of(request)
    try:
        account_id, token, form = await _checked_post(request)
        amount = _parse_euros(form.get("amount", ""))
        coin = min(broker.core.settings.coin_values)
        key = "web-" + hashlib.sha256(f"{token}|{form.get('csrf')}|{amount}|{broker.core.now()}".encode()).hexdigest()
        await run(broker.hosted.buy, account_id,
                  {"length": amount // coin, "coin_value": broker.core.money(coin).to_json()}, key)  # fmt: skip
    except NetPayError as exc:
        return _error(exc.message, exc.code, exc.http_status)
    return RedirectResponse("/wallet", status_code=303)

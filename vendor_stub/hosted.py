""" "Pay with my NetPay account": the vendor side of the hosted e-wallet (Mobile-NetPay) with grants.

``GET /hosted/start?item=ID`` sends the browser to the broker's authorize page with a fresh ``state`` and a PKCE S256
challenge (the verifier kept in the vendor's database under the state's hash, the state also in an HttpOnly cookie
bound to this browser). ``GET /hosted/callback`` checks the state against that cookie, takes the authorization (once:
of two processes handed the same callback, one goes on), redeems the code with a signed :class:`GrantRequest`, checks
the broker-signed :class:`HostedGrant` (its top payword hashes down to the certified touchstone), stores it (once per
``grant_id``) with the hash of a random session cookie ``np_grant_<vendor id>`` (HttpOnly, SameSite=Lax, Secure over
HTTPS) and pays the item the customer started from. Grants live in the database, not in the process: a restarted
shop, or another of its processes, honours the cookie; a newer grant of the same chain ends the older one.
``POST /hosted/buy/{item}`` pays a fresh quote from the slice: W_{i+c} is computed from the top payword and paid
through the ordinary :class:`PaymentDesk` (same checks, same spend records, reported to the broker like any chain).
A purchase above the slice is refused with ``insufficient_coins`` before anything is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from netpay.chain import ChainHasher
from netpay.errors import (
    CertificateExpired,
    InsufficientCoins,
    NetPayError,
    NotFound,
    ReplayedRequest,
    UntrustedSigner,
)
from netpay.messages import CoinCertificate, GrantRequest, HostedGrant, Payment, Quote, Segment
from netpay.signed import Signed
from netpay_web.db import lock_keys
from vendor_stub.service import Vendor

__all__ = ["GrantBook", "build_hosted"]

GRANT_COOKIE = "np_grant"
STATE_COOKIE = "np_hosted_state"
PENDING_TTL_S = 600


@dataclass(slots=True)
class Grant:
    """A slice this vendor may spend: coins ``from_index + 1`` .. ``to_index`` of the certificate's chain."""

    grant: HostedGrant
    certificate: Signed[CoinCertificate]


class GrantBook:
    """Authorizations under way (state → PKCE verifier) and the grants this shop accepted, kept in the vendor's
    database (migration 6): a restarted shop, or another process of it, finishes what one started, and a grant is
    accepted once only (its ``grant_id``), whichever process is handed it."""

    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor

    @property
    def redirect_uri(self) -> str:
        return self.vendor.settings.base_url + "/hosted/callback"

    def start(self, item_id: str) -> tuple[str, str]:
        """(authorize URL at the broker, state)."""
        now = self.vendor.now()
        state = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = _s256(verifier)

        def write(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM hosted_pending WHERE expires_at <= ?", (now,))
            c.execute("INSERT INTO hosted_pending (state_hash, verifier, item_id, expires_at) VALUES (?,?,?,?)",
                      (_hash(state), verifier, item_id[:200], now + PENDING_TTL_S))  # fmt: skip

        self.vendor.store.write(write)
        query = urlencode({"client_id": self.vendor.vendor_id, "redirect_uri": self.redirect_uri, "state": state,
                           "code_challenge": challenge, "code_challenge_method": "S256"})  # fmt: skip
        return self.vendor.settings.broker_url.rstrip("/") + "/hosted/authorize?" + query, state

    def finish(self, state: str, code: str) -> tuple[str, str]:
        """Redeem the code; returns (session token for the cookie, item id to go back to). The authorization is
        taken (deleted) first, so of two processes handed the same callback one goes on and the other is refused."""
        now = self.vendor.now()

        def take(c: sqlite3.Connection) -> tuple[str, str, int] | None:
            row = c.execute("SELECT verifier, item_id, expires_at FROM hosted_pending WHERE state_hash = ?",
                            (_hash(state),)).fetchone()  # fmt: skip
            if row is None or c.execute("DELETE FROM hosted_pending WHERE state_hash = ?",
                                        (_hash(state),)).rowcount != 1:  # fmt: skip
                return None
            return str(row[0]), str(row[1]), int(row[2])

        pending = self.vendor.store.write(take)
        if pending is None or pending[2] <= now:
            raise NotFound("this payment authorization is unknown or too old; start again")
        verifier, item_id, _ = pending
        v = self.vendor
        req = Signed.sign(
            GrantRequest(v.vendor_id, code, verifier, self.redirect_uri, secrets.token_hex(16), v.now()), v.key
        )
        answer = v.broker.post("/v1/hosted/grants", req.to_wire())
        token = secrets.token_urlsafe(32)
        self.accept(answer, token)
        return token, item_id

    def accept(self, answer: Any, session: str) -> Grant:
        """Check a broker's grant answer and take custody of the slice's chain at its start, for the browser session
        ``session``. A grant is accepted once: the same grant again (a replayed answer, or the same one handed to
        another process of this shop) is refused ``replayed`` and changes nothing."""
        v = self.vendor
        if not isinstance(answer, dict):
            raise UntrustedSigner("the broker's grant answer is not an object")
        signed = Signed.from_wire(answer.get("grant"), HostedGrant, "grant")
        signed.require_signer(v.trust.broker_key())
        g = signed.body
        cert = Signed.from_wire(answer.get("certificate"), CoinCertificate, "certificate")
        body = v.trust.check_coin_certificate(cert, v.now())
        if g.vendor_id != v.vendor_id or g.chain_id != body.chain_id or g.to_index > body.length:
            raise UntrustedSigner("the grant is for another vendor or chain")
        if not g.from_index < g.to_index:
            raise UntrustedSigner("the grant's slice is empty")
        if g.expires_at <= v.now():
            raise CertificateExpired("this grant has already expired")
        hasher = ChainHasher(g.chain_id)
        start = hasher.walk(g.top_payword, g.to_index, g.from_index)
        if not hmac.compare_digest(hasher.walk(start, g.from_index, 0), body.touchstone):
            raise UntrustedSigner("the grant's payword does not hash to the certified touchstone")
        self._hold(cert, signed, start, session)
        return Grant(g, cert)

    def _hold(self, cert: Signed[CoinCertificate], signed: Signed[HostedGrant], start: bytes, session: str) -> None:
        """Record the grant and hold the chain at the slice's start, in one transaction (a chain released earlier is
        held again under the new grant; one held above the slice's start is refused)."""
        g = signed.body
        book = self.vendor.book
        st = book.state(g.chain_id)
        cid = g.chain_id.hex()
        with st.lock:
            now = self.vendor.now()
            source = "touchstone" if g.from_index == 0 else "lower_bound"

            def write(c: sqlite3.Connection) -> None:
                lock_keys(c, f"chain:{cid}")
                if c.execute(
                    "INSERT INTO hosted_grants (grant_id, chain_id, from_index, to_index, expires_at, grant_wire,"
                    " session_hash, status, accepted_at) VALUES (?,?,?,?,?,?,?,'active',?) ON CONFLICT DO NOTHING",
                    (g.grant_id, cid, g.from_index, g.to_index, g.expires_at, json.dumps(signed.to_wire()),
                     _hash(session), now),
                ).rowcount != 1:  # fmt: skip
                    raise ReplayedRequest("this grant was already accepted", grant_id=g.grant_id)
                held = c.execute(
                    "INSERT INTO chains (chain_id, certificate, coin_value, currency, status, base_index, base_payword,"
                    " base_source, last_index, last_payword, exact, acquired_at) VALUES (?,?,?,?,'held',?,?,?,?,?,1,?)"
                    " ON CONFLICT (chain_id) DO UPDATE SET status = 'held', last_index = excluded.last_index,"
                    " last_payword = excluded.last_payword, exact = 1, released_to = NULL, release = NULL,"
                    " released_at = NULL WHERE chains.status <> 'held' OR chains.last_index <= excluded.last_index",
                    (cid, json.dumps(cert.to_wire()), cert.body.coin_value.amount,
                     cert.body.coin_value.currency, g.from_index, start.hex(), source, g.from_index, start.hex(), now),
                ).rowcount  # fmt: skip
                if held != 1:
                    raise UntrustedSigner("the grant starts below coins this vendor already took")
                c.execute("UPDATE hosted_grants SET status = 'ended' WHERE chain_id = ? AND grant_id <> ?",
                          (cid, g.grant_id))  # fmt: skip

            self.vendor.store.write(write)
            st.status, st.last_index, st.last_payword, st.exact = "held", g.from_index, start, True
            st.released_to, st.release, st.loaded = None, None, not self.vendor.store.shared

    def grant_of(self, token: str | None) -> Grant | None:
        """The active grant of a browser session (its cookie), or None (unknown, or ended by a newer grant)."""
        if not token:
            return None
        row = self.vendor.store.one(
            "SELECT g.grant_wire, c.certificate FROM hosted_grants g JOIN chains c ON c.chain_id = g.chain_id"
            " WHERE g.session_hash = ? AND g.status = 'active'",
            (_hash(token),),
        )
        if row is None:
            return None
        grant = Signed.from_wire(json.loads(row[0]), HostedGrant, "grant", verify=False).body
        cert = Signed.from_wire(json.loads(row[1]), CoinCertificate, "certificate", verify=False)
        return Grant(grant, cert)

    def buy(self, grant: Grant, item_id: str) -> dict[str, Any]:
        """Pay a fresh quote for ``item_id`` from the slice; the receipt answer of :meth:`PaymentDesk.pay`."""
        v = self.vendor
        g = grant.grant
        now = v.now()
        if g.expires_at <= now:
            raise CertificateExpired("this shop's permission to use your NetPay account has expired")
        item = v.catalog.get(item_id)
        if item is None:
            raise NotFound("no such item", item_id=item_id)
        value = grant.certificate.body.coin_value.amount
        if item.price.amount % value:
            raise InsufficientCoins("the price cannot be paid in this chain's coins exactly")
        coins = item.price.amount // value
        st = v.book.state(g.chain_id)
        with st.lock:  # (a newer grant of the chain is taken under this lock: it ends this one first)
            v.book.load(st)
            held = st.last_index if st.status == "held" else None
            current = v.store.one("SELECT status FROM hosted_grants WHERE grant_id = ?", (g.grant_id,))
        if held is None or current is None or current[0] != "active":
            raise InsufficientCoins("this grant has ended (the e-wallet moved on): allow this shop again")
        if held + coins > g.to_index:
            raise InsufficientCoins("the grant's budget is spent: allow this shop a new budget",
                                    remaining=(g.to_index - held) * value)  # fmt: skip
        base = v.settings.base_url
        quote = Quote(quote_id=secrets.token_hex(16), vendor_id=v.vendor_id, item_id=item.item_id, title=item.title,
                      price=item.price, model=item.model, payment_url=f"{base}/v1/payments",
                      item_url=f"{base}/items/{item.item_id}", issued_at=now,
                      expires_at=now + v.settings.quote_ttl_s)  # fmt: skip
        quote_wire = v.desk.issue_quote(quote)
        payword = ChainHasher(g.chain_id).walk(g.top_payword, g.to_index, held + coins)
        payment = Payment(
            payment_id=secrets.token_hex(16),
            quote=Signed.from_wire(quote_wire, Quote, "quote"),
            segments=(Segment(grant.certificate, held, held + coins, payword),),
        )
        return v.desk.pay(payment.to_wire())


def _s256(verifier: str) -> str:
    import base64

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def build_hosted(vendor: Vendor, grants: GrantBook) -> APIRouter:
    """The three routes of "Pay with my NetPay account"."""
    router = APIRouter(include_in_schema=False)
    secure = vendor.settings.base_url.startswith("https://")
    # Cookies are not scoped by port: shops on one host (the demo's loopback) would overwrite each other's grant.
    grant_cookie = f"{GRANT_COOKIE}_{vendor.vendor_id}"

    def error(exc: NetPayError) -> HTMLResponse:
        return HTMLResponse(
            f'<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1"><title>NetPay</title>'
            f'<p data-code="{exc.code}" style="font:17px system-ui;padding:16px">{_esc(exc.message)}</p>'
            '<p style="padding:0 16px"><a href="/">Back to the shop</a></p>',
            status_code=exc.http_status,
        )

    @router.get("/hosted/start")
    def start(item: str = "") -> Response:
        url, state = grants.start(item)
        resp = RedirectResponse(url, status_code=303)
        resp.set_cookie(STATE_COOKIE, state, max_age=PENDING_TTL_S, httponly=True, samesite="lax", secure=secure,
                        path="/hosted")  # fmt: skip
        return resp

    @router.get("/hosted/callback")
    async def callback(request: Request, state: str = "", code: str = "", error_code: str = "") -> Response:
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not state or not hmac.compare_digest(cookie.encode(), state.encode()):
            return error(NotFound("this payment authorization did not start in this browser"))
        if not code:
            return RedirectResponse("/", status_code=303)
        try:
            token, item_id = await run_in_threadpool(grants.finish, state, code)
        except NetPayError as exc:
            return error(exc)
        target = f"/items/{item_id}" if vendor.catalog.get(item_id) else "/"
        code = ""
        if vendor.catalog.get(item_id) is not None:  # the purchase that started the flow, paid at once
            grant = grants.grant_of(token)
            assert grant is not None
            try:
                answer = await run_in_threadpool(grants.buy, grant, item_id)
                code, _ = await run_in_threadpool(vendor.handover.issue, answer["receipt"]["body"]["access_token"])
            except NetPayError as exc:
                return error(exc)
        # the access token itself never goes into a URL: a one-time code the item page exchanges for its cookie
        resp = RedirectResponse(target + (f"?code={code}" if code else ""), status_code=303)
        resp.set_cookie(grant_cookie, token, httponly=True, samesite="lax", secure=secure, path="/", max_age=30 * 86400)
        resp.delete_cookie(STATE_COOKIE, path="/hosted")
        return resp

    @router.post("/hosted/buy/{item_id}")
    async def buy(request: Request, item_id: str) -> Response:
        grant = grants.grant_of(request.cookies.get(grant_cookie))
        if grant is None:
            return RedirectResponse(f"/hosted/start?item={item_id}", status_code=303)
        try:
            answer = await run_in_threadpool(grants.buy, grant, item_id)
        except NetPayError as exc:
            return error(exc)
        code, _ = await run_in_threadpool(vendor.handover.issue, answer["receipt"]["body"]["access_token"])
        return RedirectResponse(f"/items/{item_id}?code={code}", status_code=303)

    return router


def _esc(text: str) -> str:
    from html import escape

    return escape(text)

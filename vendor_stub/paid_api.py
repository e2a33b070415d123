"""The shop's paid JSON API over HTTP 402 (``/api/...``): see ``docs/protocol.md`` §5.8.

A request without a valid access token gets ``402 payment_required`` with a challenge: the header
``WWW-Authenticate: NetPay item="…", quote_url="…", payment_url="…"`` says where to get a quote, and the body carries
a fresh signed quote with the vendor certificate (the same object ``POST /v1/quotes`` answers). The client pays it
with the ordinary payment (``POST /v1/payments``) and retries with ``Authorization: NetPay <receipt.access_token>``.

- ``GET /api/items/{item_id}``: an article's text as JSON; any token that opens the item page opens it (an item
  token, or an unexpired pass).
- ``GET /api/search?q=…``: full-text search of the archive, priced by the catalog's ``archive-search`` item (one cent
  a query). Its token is spent on the first query it is shown with: the same query may be fetched again with it for
  :data:`REUSE_WINDOW_S` seconds (a client retrying a lost answer), any other query, or the same one later, is
  refused with a new challenge.

**A payment in the request** (header ``NetPay-Payment: <base64url of the payment JSON>``, advertised by the
challenge's ``payment_header`` parameter) saves the client the separate payment call: the shop takes it exactly as
``POST /v1/payments`` would (same checks, same receipt, same refusals with ``details.refusal``), then answers the
request as if it carried ``Authorization: NetPay <the receipt's access token>``. Whenever the payment is recorded
(now, or before: the same payment sent again), the answer carries the payment call's answer in ``NetPay-Receipt``. A
search answered ``200`` carries a fresh quote for the next query in ``NetPay-Quote``, so a client can pay its next
query in the same request that asks it.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import sqlite3
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from netpay.encoding import canonical_json
from netpay.errors import MalformedMessage, NetPayError, NotFound, PaymentRequired
from netpay.messages import Quote
from vendor_stub.access import AUTH_SCHEME, bearer_token
from vendor_stub.api import ERROR_RESPONSES
from vendor_stub.catalog import Item
from vendor_stub.payments import Binding
from vendor_stub.service import Vendor
from vendor_stub.taking import PaymentTaker

__all__ = [
    "MAX_PAYMENT_HEADER",
    "PAYMENT_HEADER",
    "QUOTE_HEADER",
    "RECEIPT_HEADER",
    "REUSE_WINDOW_S",
    "SEARCH_ITEM",
    "build_paid_api",
    "search_archive",
]

SEARCH_ITEM = "archive-search"
REUSE_WINDOW_S = 600
MAX_QUERY = 200
PAYMENT_HEADER = "NetPay-Payment"
RECEIPT_HEADER = "NetPay-Receipt"
QUOTE_HEADER = "NetPay-Quote"
#: characters of a ``NetPay-Payment`` header (the HTTP server reads at most 16 KiB of headers in all)
MAX_PAYMENT_HEADER = 12288


def b64_json(data: bytes) -> str:
    """``data`` (JSON text) as a header value: base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def payment_from_header(value: str) -> bytes:
    """The payment JSON text in a ``NetPay-Payment`` header value (400 ``malformed`` when it cannot be read)."""
    value = value.strip()
    if not value or len(value) > MAX_PAYMENT_HEADER:
        raise MalformedMessage(f"the {PAYMENT_HEADER} header must be 1 to {MAX_PAYMENT_HEADER} characters",
                               field=PAYMENT_HEADER)  # fmt: skip
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise MalformedMessage(f"the {PAYMENT_HEADER} header is not base64url", field=PAYMENT_HEADER) from None


def search_archive(items: tuple[Item, ...], query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Items whose title, teaser, body, author or section contain every word of ``query`` (case-insensitive)."""
    words = query.lower().split()
    hits = []
    for item in items:
        text = " ".join((item.title, item.teaser, item.author, item.section, *item.body)).lower()
        if all(w in text for w in words):
            first = next((p for p in item.body if words and words[0] in p.lower()), item.teaser)
            hits.append({"item_id": item.item_id, "title": item.title, "snippet": first[:240]})
    return hits[:limit]


def build_paid_api(vendor: Vendor, taker: PaymentTaker | None = None) -> APIRouter:
    """The ``/api`` routes of one vendor (``taker``: shared with ``POST /v1/payments``, else one of its own)."""
    payments = taker or PaymentTaker(vendor)
    challenge_doc = {
        "description": "payment required: `WWW-Authenticate: NetPay …` and `{error, quote, vendor_certificate}`"
    }
    router = APIRouter(prefix="/api", tags=["paid API (HTTP 402)"], responses={402: challenge_doc, **ERROR_RESPONSES})
    base = vendor.settings.base_url

    def offer(item: Item, resource: str) -> dict[str, Any]:
        cert = vendor.trust.certificate()
        now = vendor.now()
        quote = Quote(
            quote_id=secrets.token_hex(16),
            vendor_id=vendor.vendor_id,
            item_id=item.item_id,
            title=item.title,
            price=item.price,
            model=item.model,
            payment_url=f"{base}/v1/payments",
            item_url=f"{base}{resource}",
            issued_at=now,
            expires_at=now + vendor.settings.quote_ttl_s,
        )
        return {"quote": vendor.desk.issue_quote(quote), "vendor_certificate": cert.to_wire()}

    def challenge(item: Item, resource: str, reason: str, paid: bytes | None = None) -> JSONResponse:
        """``402`` with the challenge header and a fresh signed quote in the body."""
        messages = {
            "missing": f"{item.title} costs {item.price}: pay the quote and retry with the access token",
            "invalid": "the access token does not open this resource (another resource's, expired or not genuine)",
            "spent": "this access token was already spent on another query, or its re-use window is over",
        }
        err = PaymentRequired(messages[reason], reason=reason, item_id=item.item_id, price=item.price.to_json())
        body = {**err.to_body(), **offer(item, resource)}
        header = (
            f'{AUTH_SCHEME} realm="{vendor.settings.name or vendor.catalog.name}", item="{item.item_id}", '
            f'quote_url="{base}/v1/quotes", payment_url="{base}/v1/payments", payment_header="{PAYMENT_HEADER}"'
        )
        headers = {"WWW-Authenticate": header, "Cache-Control": "no-store"}
        if paid is not None:
            headers[RECEIPT_HEADER] = b64_json(paid)
        return JSONResponse(body, status_code=402, headers=headers)

    async def take(value: str, bind: Binding | None = None) -> tuple[bytes, str, bool]:
        """Take the payment in a ``NetPay-Payment`` header: the payment call's answer, the receipt's token, and
        whether ``bind`` (a search token spent on its query in the payment's own transaction: one commit, not two)
        was certainly recorded just now with it (then the binding needs no second look)."""
        try:
            body = payment_from_header(value)
        except NetPayError as exc:
            raise payments.unread(exc) from None
        data, parsed = payments.read(body)
        answer, fresh = await payments.take_bound(data, parsed, bind)
        receipt = json.loads(answer)["receipt"]["body"]
        return answer, str(receipt["access_token"]), fresh and bind is not None and receipt["item_id"] == bind.item_id

    def paid_headers(paid: bytes | None, next_quote: dict[str, Any] | None = None) -> dict[str, str]:
        headers = {} if paid is None else {RECEIPT_HEADER: b64_json(paid), "Cache-Control": "no-store"}
        if next_quote is not None:
            headers[QUOTE_HEADER] = b64_json(canonical_json(next_quote))
        return headers

    def spend_on(receipt_id: str, resource: str) -> bool:
        """Bind a one-use token to ``resource`` on first use; True while it may open this resource."""
        now = vendor.now()
        row = vendor.store.one("SELECT resource, used_at FROM api_uses WHERE receipt_id = ?", (receipt_id,))
        if row is not None:  # already bound: decided without a write
            return bool(row[0] == resource and now < int(row[1]) + REUSE_WINDOW_S)

        def go(c: sqlite3.Connection) -> Any:
            c.execute(
                "INSERT INTO api_uses (receipt_id, resource, used_at) VALUES (?, ?, ?) "
                "ON CONFLICT (receipt_id) DO NOTHING",
                (receipt_id, resource, now),
            )
            return c.execute("SELECT resource, used_at FROM api_uses WHERE receipt_id = ?", (receipt_id,)).fetchone()

        row = vendor.store.write(go)
        return bool(row[0] == resource and now < int(row[1]) + REUSE_WINDOW_S)

    @router.get("/items/{item_id}", summary="An article's text (402 until paid)")
    async def api_item(request: Request, item_id: str) -> JSONResponse:
        item = vendor.catalog.get(item_id)
        if item is None or item.api or item.is_pass:
            raise NotFound("no such article", item_id=item_id)
        resource = f"/api/items/{item_id}"
        paid, token = None, bearer_token(request.headers.get("authorization"))
        if (payment := request.headers.get(PAYMENT_HEADER)) is not None:
            paid, token, _ = await take(payment)
        if token is None:
            return challenge(item, resource, "missing")
        grant = vendor.tokens.check(token, item_id, vendor.now())
        if grant is None:
            return challenge(item, resource, "invalid", paid)
        return JSONResponse({"item_id": item.item_id, "title": item.title, "author": item.author,
                             "published": item.published, "body": list(item.body),
                             "valid_until": grant.valid_until}, headers=paid_headers(paid))  # fmt: skip

    @router.get("/search", summary="Full-text search of the archive, one query per payment (402 until paid)")
    async def api_search(request: Request, q: str = "") -> JSONResponse:
        item = vendor.catalog.get(SEARCH_ITEM)
        if item is None:
            raise NotFound("this shop has no archive search")
        query = " ".join(q.lower().split())
        if not query or len(query) > MAX_QUERY:
            raise MalformedMessage(f"q must be 1 to {MAX_QUERY} characters", field="q")
        resource = f"/api/search?q={query}"
        paid, token, bound = None, bearer_token(request.headers.get("authorization")), False
        if (payment := request.headers.get(PAYMENT_HEADER)) is not None:
            paid, token, bound = await take(payment, Binding(item.item_id, resource))
        if token is None:
            return await run_in_threadpool(challenge, item, resource, "missing")
        grant = vendor.tokens.check(token, SEARCH_ITEM, vendor.now())
        if grant is None or grant.is_pass:
            return await run_in_threadpool(challenge, item, resource, "invalid", paid)
        if not bound and not await run_in_threadpool(spend_on, grant.receipt_id, resource):
            return await run_in_threadpool(challenge, item, resource, "spent", paid)
        next_quote = None  # with a payment: the next query's quote, to be paid in the request that asks it
        if paid is not None and vendor.trust.has_certificate():  # (never a broker call in the event loop)
            next_quote = offer(item, "/api/search")
        return JSONResponse({"query": query, "results": search_archive(vendor.catalog.stories, query)},
                            headers=paid_headers(paid, next_quote))  # fmt: skip

    return router

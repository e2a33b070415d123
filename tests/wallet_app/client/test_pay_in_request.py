"""The paying client with a shop that takes the payment inside the request: a repeat call is one request, a kept
quote is paid at most once, an expiring one is not used, and the budget counts each payment once. Real broker, shop
and vault."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from typing import Any

import requests

from tests.support.vendor import RunningVendor
from wallet_app.client import PayingSession, SpendingRules
from wallet_app.services import WalletService


def counting(api: PayingSession) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []

    def hook(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((resp.request.path_url.split("?")[0], resp.status_code))

    api.hooks["response"].append(hook)
    return seen


def recorded(vendor: RunningVendor) -> int:
    """Payments the shop has recorded."""
    return int(vendor.vendor.store.one("SELECT COUNT(*) FROM payments")[0])


def spends(wallet: WalletService) -> list[tuple[str, str | None]]:
    rows = wallet.vault.query("SELECT status, error_code FROM spends WHERE via = 'api' ORDER BY created_at")
    return [(r[0], r[1]) for r in rows]


def four_searches_each_paid_in_one_request(api: PayingSession, vendor: RunningVendor) -> None:
    """Four paid searches: the first after its challenge, the next three each in one request (the kept quote)."""
    seen = counting(api)
    url = f"{vendor.url}/api/search"
    assert api.get(url, params={"q": "comet"}, timeout=30).status_code == 200
    assert seen == [("/api/search", 402), ("/api/search", 200)]  # the challenge, then paid in the retry
    seen.clear()
    for q in ("market", "budget", "cup"):
        resp = api.get(url, params={"q": q}, timeout=30)
        assert resp.status_code == 200 and resp.json()["query"] == q
    assert seen == [("/api/search", 200)] * 3  # the kept quote paid in the request itself: no 402, no POST
    assert api.settle(10)
    held = 1 if api.prepare_ahead else 0  # the next query's payment, journalled ahead, holds its price
    assert len(api.payments) == 4 and api.budget.spent() == 4 + held


def test_a_repeat_call_is_paid_in_one_request(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, SpendingRules.parse("EUR", per_request=1, daily=10))
    four_searches_each_paid_in_one_request(api, vendor)
    # the fifth query's payment is journalled ahead: pending in the wallet, never seen by the shop
    assert spends(funded_wallet) == [("settled", None)] * 4 + [("pending", None)]
    assert recorded(vendor) == 4
    api.close()  # not asked for: taken back, no trace
    assert spends(funded_wallet) == [("settled", None)] * 4 and api.budget.spent() == 4


def test_without_journalling_ahead_a_repeat_call_is_still_one_request(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    api = PayingSession(funded_wallet, SpendingRules.parse("EUR", per_request=1, daily=10), prepare_ahead=False)
    four_searches_each_paid_in_one_request(api, vendor)
    assert spends(funded_wallet) == [("settled", None)] * 4


def test_a_kept_quote_already_paid_is_not_paid_again(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    url = f"{vendor.url}/api/search"
    rules = SpendingRules.parse("EUR", per_request=1, daily=10)
    a, b = PayingSession(funded_wallet, rules, prepare_ahead=False), PayingSession(funded_wallet, rules)
    assert a.get(url, params={"q": "comet"}, timeout=10).status_code == 200
    b._spares.update(a._spares)  # the same quote kept twice (a copied session, a shop handing one out twice)
    assert a.get(url, params={"q": "market"}, timeout=10).status_code == 200
    seen = counting(b)
    resp = b.get(url, params={"q": "budget"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["query"] == "budget"
    # the wallet knows the quote is paid: nothing is sent with it, the fresh challenge is paid once (a shop given a
    # paid quote by another wallet refuses it with a signed refusal: test_paid_api_payment_in_request.py)
    assert seen == [("/api/search", 402), ("/api/search", 200)]
    b.close()
    assert spends(funded_wallet) == [("settled", None)] * 3
    assert b.budget.spent() == 1 and len(b.payments) == 1


def test_a_kept_quote_journalled_ahead_by_one_session_is_not_paid_by_another(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    """Two sessions on one wallet, the same quote kept by both, one of them holding its payment journalled ahead:
    the other's payment takes that one back first (a chain's coins leave in order) and pays the quote; the first
    then finds it paid and pays its own challenge. Nothing is paid twice."""
    url = f"{vendor.url}/api/search"
    rules = SpendingRules.parse("EUR", per_request=1, daily=10)
    a, b = PayingSession(funded_wallet, rules), PayingSession(funded_wallet, rules)
    assert a.payer is b.payer  # one payer per wallet: one lock, one payment journalled ahead
    assert a.get(url, params={"q": "comet"}, timeout=10).status_code == 200 and a.settle(10)
    b._spares.update({k: type(v)(v.offer, v.origin, b) for k, v in a._spares.items()})
    seen_a, seen_b = counting(a), counting(b)
    assert b.get(url, params={"q": "budget"}, timeout=10).json()["query"] == "budget"
    assert seen_b == [("/api/search", 200)]
    assert a.get(url, params={"q": "market"}, timeout=10).json()["query"] == "market"
    assert seen_a == [("/api/search", 402), ("/api/search", 200)]  # its kept quote is paid: not sent again
    a.close()
    b.close()
    assert spends(funded_wallet) == [("settled", None)] * 3 and recorded(vendor) == 3
    assert a.budget.spent() == 2 and b.budget.spent() == 1


def test_a_kept_quote_about_to_expire_is_not_used(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    clock = [0.0]
    api = PayingSession(funded_wallet, SpendingRules.parse("EUR", daily=10), clock=lambda: clock[0])
    url = f"{vendor.url}/api/search"
    clock[0] = vendor.vendor.now()
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200
    clock[0] += vendor.settings.quote_ttl_s  # the kept quote expires about now
    seen = counting(api)
    assert api.get(url, params={"q": "market"}, timeout=10).status_code == 200
    assert seen == [("/api/search", 402), ("/api/search", 200)]
    assert spends(funded_wallet) == [("settled", None)] * 2


def keeps_the_money(app: Any) -> Any:
    """A shop that takes a payment sent inside a request and answers with a fresh challenge, as if none had come."""

    async def empty() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def swallow(message: dict[str, Any]) -> None:
        return None

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not any(k == b"netpay-payment" for k, _ in scope["headers"]):
            return await app(scope, receive, send)  # type: ignore[no-any-return]
        await app(scope, empty, swallow)  # the payment is taken...
        plain = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"netpay-payment"]}
        return await app(plain, empty, send)  # type: ignore[no-any-return]  # ...and the answer is 402 again

    return wrapped


def test_a_shop_that_keeps_the_money_and_answers_402_gets_no_second_payment(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor]
) -> None:
    shop = vendor_factory(wrap=keeps_the_money)
    api = PayingSession(funded_wallet, SpendingRules.parse("EUR", per_request=1, daily=10))
    seen = counting(api)
    resp = api.get(f"{shop.url}/api/search", params={"q": "comet"}, timeout=10)
    # the answer carried neither receipt nor refusal: the wallet sent the same payment to the payment URL, which
    # answered with the receipt the shop had recorded; the token then opened the query. One payment, in history.
    assert resp.status_code == 200 and resp.json()["query"] == "comet"
    assert seen == [("/api/search", 402), ("/api/search", 402), ("/api/search", 200)]  # (the POST: wallet's client)
    assert spends(funded_wallet) == [("settled", None)] and len(api.payments) == 1
    assert int(shop.vendor.store.one("SELECT COUNT(*) FROM payments")[0]) == 1
    assert api.budget.spent() == 1


def test_a_paid_request_redirected_elsewhere_does_not_take_the_payment_along(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """A shop (or an open redirect on it) that sends the paid request on to another site: that site must never see
    the payment (it could pay the shop with it for its own query and leave the customer a spent token)."""
    seen_elsewhere: list[dict[str, str]] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen_elsewhere.append(dict(self.headers))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=other.serve_forever, daemon=True).start()

    def redirects_payments(app: Any) -> Any:
        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and any(k == b"netpay-payment" for k, _ in scope["headers"]):
                location = f"http://127.0.0.1:{other.server_port}/steal".encode()
                await send({"type": "http.response.start", "status": 307, "headers": [(b"location", location)]})
                await send({"type": "http.response.body", "body": b""})
                return None
            return await app(scope, receive, send)  # type: ignore[no-any-return]

        return wrapped

    try:
        shop = vendor_factory(wrap=redirects_payments)
        api = PayingSession(funded_wallet, SpendingRules.parse("EUR", per_request=1, daily=10))
        resp = api.get(f"{shop.url}/api/search", params={"q": "comet"}, timeout=10)
        # not followed: the wallet sent the payment to the quote's payment URL itself, then asked with the token
        assert resp.status_code == 200 and resp.json()["query"] == "comet"
        assert all("NetPay-Payment" not in h and "netpay-payment" not in h for h in seen_elsewhere)
        assert spends(funded_wallet) == [("settled", None)] and len(api.payments) == 1
    finally:
        other.shutdown()
        other.server_close()


def test_a_kept_quote_over_the_rules_is_dropped_not_raised(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, SpendingRules.parse("EUR", per_request=1, daily=10), prepare_ahead=False)
    url = f"{vendor.url}/api/search"
    assert api.get(url, params={"q": "comet"}, timeout=10).status_code == 200
    (kept,) = api._spares.values()
    kept.offer["quote"]["body"]["price"]["amount"] = 5  # a kept quote asking more than the rules allow (or altered)
    seen = counting(api)
    assert api.get(url, params={"q": "market"}, timeout=10).status_code == 200
    assert seen == [("/api/search", 402), ("/api/search", 200)]  # asked without it; the shop's own quote paid
    assert spends(funded_wallet) == [("settled", None)] * 2 and api.budget.spent() == 2


def test_the_paid_request_leaves_only_after_the_journal_fsync(
    funded_wallet: WalletService, vendor_factory: Callable[..., RunningVendor], monkeypatch: Any
) -> None:
    """The request carrying the payment reaches the shop only after the wallet's journal fsync ended; when that
    fsync fails, no request with the payment reaches the shop at all, and the budget does not count it."""
    import pytest

    from tests.wallet_app.services.test_payments import slow_fsync

    seen: list[str] = []

    def noting(app: Any) -> Any:
        async def note(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                paying = any(k == b"netpay-payment" for k, _ in scope["headers"])
                seen.append("paid request" if paying else scope["path"])
            await app(scope, receive, send)

        return note

    vendor = vendor_factory(wrap=noting)
    rules = SpendingRules.parse("EUR", per_request=1, daily=10)
    api = PayingSession(funded_wallet, rules, prepare_ahead=False)  # journalled in the call (ahead: see below)
    slow_fsync(monkeypatch, seen)
    assert api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).status_code == 200
    assert seen == ["/api/search", "fsync", "paid request"]  # the challenge, the journal, then the payment
    seen.clear()
    slow_fsync(monkeypatch, seen, fail=True)
    with pytest.raises(OSError):
        api.get(f"{vendor.url}/api/search", params={"q": "market"}, timeout=10)  # the kept quote: no 402 first
    assert seen == ["fsync"]  # nothing reached the shop
    assert api.budget.spent() == 1
    assert spends(funded_wallet) == [("settled", None)]  # and nothing stays pending for recovery to send

"""HTTP 402 at the shop and the paying client: paid, over the rules, refused, shop down, replayed token, a token for
another resource, and budgets under concurrency. Real broker, real shop, real vault on loopback."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import pytest
import requests

from netpay.errors import NetPayError, PeerUnavailable
from tests.support.vendor import RunningVendor
from vendor_stub.paid_api import REUSE_WINDOW_S
from wallet_app.client import OverBudget, PayingSession, SpendingRules
from wallet_app.services import WalletService

EUR = "EUR"


def rules(**kw: int) -> SpendingRules:
    return SpendingRules.parse(EUR, **kw)


def test_unpaid_request_gets_a_challenge_with_a_signed_quote(vendor: RunningVendor) -> None:
    resp = requests.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10)
    assert resp.status_code == 402
    assert resp.headers["WWW-Authenticate"].startswith('NetPay realm="Daily Planet", item="archive-search"')
    body = resp.json()
    assert body["error"]["code"] == "payment_required"
    assert body["quote"]["body"]["price"] == {"amount": 1, "currency": EUR}
    assert body["quote"]["body"]["item_url"] == f"{vendor.url}/api/search?q=comet"
    assert body["vendor_certificate"]["type"] == "vendor_certificate"


def test_paid_search_and_the_payment_is_in_history(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(per_request=1))
    resp = api.get(f"{vendor.url}/api/search", params={"q": "Comet"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert [r["item_id"] for r in resp.json()["results"]] == ["observatory-finds-comet"]
    assert api.settle(10)  # the next query's payment, journalled ahead: in the history too, pending
    paid = [e for e in funded_wallet.activity() if e.kind == "payment"]
    assert [(e.via, e.status, e.amount.amount) for e in paid] == [("api", "pending", 1), ("api", "settled", 1)]
    # the same query again reuses the token (a lost answer); another query pays again
    assert api.get(f"{vendor.url}/api/search", params={"q": "Comet"}, timeout=10).status_code == 200
    assert api.get(f"{vendor.url}/api/search", params={"q": "cup"}, timeout=10).status_code == 200
    api.close()  # the one journalled ahead for a third query is taken back, and leaves no trace
    paid = [e for e in funded_wallet.activity() if e.kind == "payment"]
    assert [(e.via, e.status, e.amount.amount) for e in paid] == [("api", "settled", 1)] * 2


def test_token_for_another_resource_and_replayed_token_are_refused(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    api = PayingSession(funded_wallet, rules())
    assert api.get(f"{vendor.url}/api/search", params={"q": "market"}, timeout=10).status_code == 200
    token = api.payments[0].access_token
    auth = {"Authorization": f"NetPay {token}"}
    other = requests.get(f"{vendor.url}/api/search", params={"q": "budget"}, headers=auth, timeout=10)
    assert other.status_code == 402 and other.json()["error"]["details"]["reason"] == "spent"
    article = requests.get(f"{vendor.url}/api/items/night-market-returns", headers=auth, timeout=10)
    assert article.status_code == 402 and article.json()["error"]["details"]["reason"] == "invalid"
    same = requests.get(f"{vendor.url}/api/search", params={"q": "market"}, headers=auth, timeout=10)
    assert same.status_code == 200
    vendor.vendor.clock_offset = REUSE_WINDOW_S + 1
    try:
        late = requests.get(f"{vendor.url}/api/search", params={"q": "market"}, headers=auth, timeout=10)
        assert late.status_code == 402 and late.json()["error"]["details"]["reason"] == "spent"
    finally:
        vendor.vendor.clock_offset = 0
    forged = requests.get(f"{vendor.url}/api/search", params={"q": "market"},
                          headers={"Authorization": "NetPay v1.e30.AAAA"}, timeout=10)  # fmt: skip
    assert forged.status_code == 402 and forged.json()["error"]["details"]["reason"] == "invalid"


def test_article_token_opens_only_its_article(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(per_request=5))
    resp = api.get(f"{vendor.url}/api/items/night-market-returns", timeout=10)
    assert resp.status_code == 200 and resp.json()["body"]
    # bought once: the same article again costs nothing
    assert api.get(f"{vendor.url}/api/items/night-market-returns", timeout=10).status_code == 200
    assert len(api.payments) == 1
    auth = {"Authorization": f"NetPay {api.payments[0].access_token}"}
    other = requests.get(f"{vendor.url}/api/items/metropolis-fc-cup-run", headers=auth, timeout=10)
    assert other.status_code == 402


def test_over_the_rules_pays_nothing(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    before = funded_wallet.balance()[0].unspent
    with pytest.raises(OverBudget) as exc:
        PayingSession(funded_wallet, rules(per_request=4)).get(f"{vendor.url}/api/items/harbour-bridge-reopens",
                                                                timeout=10)  # fmt: skip
    assert exc.value.details["rule"] == "per_request"
    api = PayingSession(funded_wallet, rules(per_host_daily=2))
    for q in ("comet", "cup"):
        assert api.get(f"{vendor.url}/api/search", params={"q": q}, timeout=10).status_code == 200
    with pytest.raises(OverBudget) as exc:
        api.get(f"{vendor.url}/api/search", params={"q": "market"}, timeout=10)
    assert exc.value.details["rule"] == "per_host_daily"
    # a new session (a new run of the script) counts today's payments from the wallet's history
    with pytest.raises(OverBudget):
        PayingSession(funded_wallet, rules(daily=2)).get(f"{vendor.url}/api/search", params={"q": "x"}, timeout=10)
    assert funded_wallet.balance()[0].unspent.amount == before.amount - 2


def test_two_threads_cannot_overspend_a_budget(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(daily=3))
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        start.wait()
        try:
            resp = api.get(f"{vendor.url}/api/search", params={"q": f"the {n}"}, timeout=30)
            result = str(resp.status_code)
        except OverBudget:
            result = "over"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["200"] * 3 + ["over"] * 3
    paid = [e for e in funded_wallet.activity() if e.kind == "payment" and e.status == "settled"]
    assert sum(e.amount.amount for e in paid) == 3


def test_shop_down_while_paying_keeps_the_budget_spent(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    api = PayingSession(funded_wallet, rules(daily=5))
    challenge = requests.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).json()
    vendor.stop()
    with pytest.raises(PeerUnavailable):
        api.pay(challenge, vendor.url)
    assert api.budget.spent() == 1  # the spend is pending, not forgotten
    with pytest.raises(requests.ConnectionError):
        api.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=5)


def test_refused_payments_spend_nothing_and_give_the_budget_back(
    funded_wallet: WalletService, vendor: RunningVendor
) -> None:
    api = PayingSession(funded_wallet, rules(daily=5))
    before = funded_wallet.balance()[0].unspent
    # a challenge replayed from another origin (a proxy passing on a real shop's quote): not this shop's origin
    challenge = requests.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).json()
    with pytest.raises(NetPayError) as exc:
        api.pay(challenge, "http://shop.invalid:8080")
    assert exc.value.code != "payment_required"
    # a stale challenge (the quote expired before it was paid): refused
    vendor.vendor.clock_offset = -(vendor.settings.quote_ttl_s + 60)
    try:
        stale = requests.get(f"{vendor.url}/api/search", params={"q": "comet"}, timeout=10).json()
    finally:
        vendor.vendor.clock_offset = 0
    with pytest.raises(NetPayError) as exc:
        api.pay(stale, vendor.url)
    assert exc.value.code == "quote_expired"
    # a challenge whose body lies about the price: the wallet pays only the signed price, so nothing moves
    cheap = requests.get(f"{vendor.url}/api/items/harbour-bridge-reopens", timeout=10).json()
    cheap["quote"]["body"]["price"]["amount"] = 1
    with pytest.raises(NetPayError):
        api.pay(cheap, vendor.url)
    assert api.budget.spent() == 0 and api.payments == []
    assert funded_wallet.balance()[0].unspent == before


def test_a_redirect_to_another_sites_paywall_is_not_paid(funded_wallet: WalletService, vendor: RunningVendor) -> None:
    """A site that redirects to a real shop's paid resource must not get the token the client would pay for."""
    target = f"{vendor.url}/api/search?q=comet"

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = PayingSession(funded_wallet, rules())
        resp = api.get(f"http://127.0.0.1:{server.server_port}/go", timeout=10)
        assert resp.status_code == 402 and api.payments == []
        assert [e for e in funded_wallet.activity() if e.kind == "payment"] == []
    finally:
        server.shutdown()
        server.server_close()

"""The shop's pages: prices on the front page, teaser and Buy button, paid content with a token (query or cookie),
a day pass that opens every article, the earnings chart, and the page script route."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from markupsafe import escape

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_chain, pay
from vendor_stub.publisher import COOKIE, load_or_create_publisher_token


def publisher_session(vendor: RunningVendor) -> requests.Session:
    """A session logged in as the shop's publisher through the login form."""
    s = requests.Session()
    token = load_or_create_publisher_token(vendor.settings.data_dir)
    resp = s.post(f"{vendor.url}/earnings/login", data={"token": token}, timeout=10, allow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/earnings"
    return s


def test_front_page_lists_items_with_prices(vendor: RunningVendor) -> None:
    html = requests.get(vendor.url + "/", timeout=10).text
    assert "Daily Planet" in html and '<script src="/static/netpay.js" defer></script>' in html
    for item in vendor.vendor.catalog.items:
        assert (f'href="/items/{item.item_id}"' in html) is not item.api  # API-only items have no page
    assert "€0.05" in html and "€0.50" in html
    css = requests.get(vendor.url + "/static/shop.css", timeout=10)
    assert css.status_code == 200 and "@media" in css.text and 'name="viewport"' in html


def test_item_page_shows_teaser_and_buy_button_until_paid(broker: RunningBroker, vendor: RunningVendor) -> None:
    item = vendor.vendor.catalog.get("harbour-bridge-reopens")
    assert item is not None
    page = requests.get(f"{vendor.url}/items/{item.item_id}", timeout=10).text
    assert escape(item.teaser) in page
    assert escape(item.body[-1]) not in page  # the paid part stays hidden
    assert re.search(
        r'<button class="np-buy" data-netpay-item="harbour-bridge-reopens" data-netpay-quote-url="/v1/quotes">'
        r"Buy for €0.05</button>",
        page,
    )
    assert re.search(r'<div class="np-hint" data-netpay-hint hidden>.*netpay-wallet', page, re.S)

    cert, traversal = buy_chain(broker, n=50)
    receipt = pay(vendor, item.item_id, cert, traversal).json()["receipt"]["body"]
    token = receipt["access_token"]
    s = requests.Session()
    paid = s.get(f"{vendor.url}/items/{item.item_id}", params={"access": token}, timeout=10)
    assert escape(item.body[-1]) in paid.text and "np-buy" not in paid.text
    # remembered in a cookie: the plain URL now shows the article
    assert escape(item.body[-1]) in s.get(f"{vendor.url}/items/{item.item_id}", timeout=10).text
    # the token is bound to its item: another article stays locked, with the query or a forged cookie
    other = vendor.vendor.catalog.get("night-market-returns")
    assert other is not None
    locked = requests.get(f"{vendor.url}/items/{other.item_id}", params={"access": token}, timeout=10).text
    assert escape(other.body[-1]) not in locked and "np-buy" in locked
    forged = requests.get(f"{vendor.url}/items/{other.item_id}", cookies={f"np_item_{other.item_id}": token},
                          timeout=10).text  # fmt: skip
    assert escape(other.body[-1]) not in forged
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert escape(item.body[-1]) not in requests.get(f"{vendor.url}/items/{item.item_id}", params={"access": tampered},
                                             timeout=10).text  # fmt: skip
    check = requests.get(f"{vendor.url}/v1/access/{item.item_id}", params={"token": token}, timeout=10).json()
    assert check == {"valid": True, "valid_until": None}
    assert requests.get(f"{vendor.url}/v1/access/{other.item_id}", params={"token": token}, timeout=10).json() == {
        "valid": False,
        "valid_until": None,
    }


def test_day_pass_opens_every_article_until_it_expires(broker: RunningBroker, vendor: RunningVendor) -> None:
    cert, traversal = buy_chain(broker, n=100)
    receipt = pay(vendor, "day-pass", cert, traversal).json()["receipt"]["body"]
    assert receipt["valid_until"] == receipt["issued_at"] + 86400
    s = requests.Session()
    assert "valid until" in s.get(f"{vendor.url}/items/day-pass", params={"access": receipt["access_token"]},
                                  timeout=10).text  # fmt: skip
    for item in vendor.vendor.catalog.articles:
        if not item.is_pass and not item.is_metered:  # a metered item is paid per unit used, pass or not
            assert escape(item.body[-1]) in s.get(f"{vendor.url}/items/{item.item_id}", timeout=10).text
    vendor.vendor.clock_offset = 86400 + 1
    try:
        page = s.get(f"{vendor.url}/items/night-market-returns", timeout=10).text
        assert "np-buy" in page
    finally:
        vendor.vendor.clock_offset = 0


def test_earnings_page_has_a_chart_of_coins_per_day(broker: RunningBroker, vendor: RunningVendor) -> None:
    cert, traversal = buy_chain(broker, n=50)
    assert pay(vendor, "harbour-bridge-reopens", cert, traversal).status_code == 200
    assert pay(vendor, "night-market-returns", cert, traversal).status_code == 200
    vendor.vendor.redeemer.redeem()
    html = publisher_session(vendor).get(f"{vendor.url}/earnings", timeout=10).text
    assert "<svg" in html and "Taken" in html and "Redeemed" in html and "Pending" in html and "Rejected" in html
    assert re.search(r"<title>\d{4}-\d\d-\d\d: 8 taken</title>", html)
    assert re.search(r"<title>\d{4}-\d\d-\d\d: 8 redeemed</title>", html)
    assert "€0.08" in html


def test_missing_item_is_a_friendly_404(vendor: RunningVendor) -> None:
    resp = requests.get(f"{vendor.url}/items/no-such-story", timeout=10)
    assert resp.status_code == 404 and "could not find" in resp.text


def test_page_script_is_served_from_resources_at_request_time(vendor: RunningVendor, tmp_path: Path) -> None:
    path = Path(vendor.settings.netpay_js)
    resp = requests.get(f"{vendor.url}/static/netpay.js", timeout=10)
    if path.exists():
        assert resp.status_code == 200 and resp.text == path.read_text()
        assert resp.headers["content-type"].startswith("text/javascript")
    else:
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_earnings_need_the_publisher_login(broker: RunningBroker, vendor: RunningVendor) -> None:
    cert, traversal = buy_chain(broker, n=20)
    assert pay(vendor, "harbour-bridge-reopens", cert, traversal).status_code == 200
    anon = requests.get(f"{vendor.url}/earnings", timeout=10)
    assert anon.status_code == 401 and "Publisher token" in anon.text
    assert "coins taken" not in anon.text and "€0.05" not in anon.text.split("<main>")[1]
    wrong = requests.post(f"{vendor.url}/earnings/login", data={"token": "not-the-token"}, timeout=10)
    assert wrong.status_code == 401 and "not this shop" in wrong.text and COOKIE not in wrong.cookies
    forged = requests.get(f"{vendor.url}/earnings", cookies={COOKIE: "0" * 64}, timeout=10)
    assert forged.status_code == 401
    token = load_or_create_publisher_token(vendor.settings.data_dir)
    assert requests.get(f"{vendor.url}/earnings", cookies={COOKIE: token}, timeout=10).status_code == 401
    s = publisher_session(vendor)
    cookie = next(c for c in s.cookies if c.name == COOKIE)
    assert cookie.value != token and cookie.path == "/earnings" and cookie.has_nonstandard_attr("HttpOnly")
    page = s.get(f"{vendor.url}/earnings", timeout=10)
    assert page.status_code == 200 and "coins taken" in page.text and page.headers["cache-control"] == "no-store"
    s.post(f"{vendor.url}/earnings/logout", timeout=10)
    assert s.get(f"{vendor.url}/earnings", timeout=10).status_code == 401


def test_pass_pages_read_right_and_the_shop_has_an_icon(vendor: RunningVendor) -> None:
    page = requests.get(f"{vendor.url}/items/day-pass", timeout=10).text
    assert "passs" not in page and "every story for 24 hours." in page
    story = page.split('<article class="story')[1].split("</article>")[0]
    assert not re.search(r'class="byline">\s*·', story) and 'class="byline"' not in story
    article = requests.get(f"{vendor.url}/items/harbour-bridge-reopens", timeout=10).text
    assert re.search(r'class="byline">By [^<]+ · [^<]+ · <span class="price">€0.05</span>', article)
    assert article.count("No NetPay Wallet answered.") == 1 and "No NetPay wallet" not in article
    assert '<link rel="icon" href="/static/favicon.svg"' in article
    for path in ("/favicon.ico", "/static/favicon.svg"):
        icon = requests.get(vendor.url + path, timeout=10)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.content.startswith(b"<svg")

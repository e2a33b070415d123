"""Access tokens stay out of URLs (issue 21): the page script hands the token over in a POST that sets the item's
cookie; links from the wallet carry a one-time code that opens the item once, within two minutes, and is worth
nothing in a log, the history or a Referer afterwards; an older link's ``?access=`` is turned into the cookie and the
browser sent on to the plain URL."""

from __future__ import annotations

import requests

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_chain, pay

ITEM = "night-market-returns"
PAID = 'class="story paid"'


def _token(broker: RunningBroker, vendor: RunningVendor, item: str = ITEM) -> str:
    cert, traversal = buy_chain(broker)
    resp = pay(vendor, item, cert, traversal)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["receipt"]["body"]["access_token"])


def _code(vendor: RunningVendor, token: str) -> requests.Response:
    return requests.post(f"{vendor.url}/v1/access/codes", json={"token": token}, timeout=30)


def test_a_one_time_code_opens_the_item_once(broker: RunningBroker, vendor: RunningVendor) -> None:
    token = _token(broker, vendor)
    code = _code(vendor, token).json()["code"]
    assert token not in code
    browser = requests.Session()
    first = browser.get(f"{vendor.url}/items/{ITEM}", params={"code": code}, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["location"] == f"/items/{ITEM}"
    assert first.headers["referrer-policy"] == "no-referrer"
    page = browser.get(f"{vendor.url}{first.headers['location']}", timeout=30)
    assert PAID in page.text and page.headers["referrer-policy"] == "no-referrer"
    # the same code again (from the history, a log, a Referer): it opens nothing
    other = requests.Session()
    again = other.get(f"{vendor.url}/items/{ITEM}", params={"code": code}, timeout=30)
    assert again.url == f"{vendor.url}/items/{ITEM}" and PAID not in again.text
    assert not other.cookies


def test_an_expired_or_unknown_code_opens_nothing(broker: RunningBroker, vendor: RunningVendor) -> None:
    code = _code(vendor, _token(broker, vendor)).json()["code"]
    vendor.vendor.clock_offset += 121
    try:
        late = requests.get(f"{vendor.url}/items/{ITEM}", params={"code": code}, timeout=30)
        assert PAID not in late.text
    finally:
        vendor.vendor.clock_offset -= 121
    for bad in ("x" * 40, "", "y" * 500):
        assert PAID not in requests.get(f"{vendor.url}/items/{ITEM}", params={"code": bad}, timeout=30).text


def test_a_code_only_for_a_genuine_token(broker: RunningBroker, vendor: RunningVendor) -> None:
    token = _token(broker, vendor)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (forged, "v1.e30.x", "nonsense"):
        resp = _code(vendor, bad)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert _code(vendor, "").status_code == 400
    assert requests.post(f"{vendor.url}/v1/access/codes", json={"token": token, "x": 1}, timeout=30).status_code == 400


def test_the_page_script_hands_the_token_over_in_a_post(broker: RunningBroker, vendor: RunningVendor) -> None:
    token = _token(broker, vendor)
    browser = requests.Session()
    resp = browser.post(f"{vendor.url}/v1/access/cookie", json={"token": token}, timeout=30)
    assert resp.status_code == 200 and resp.json()["item_url"] == f"{vendor.url}/items/{ITEM}"
    assert "httponly" in resp.headers["set-cookie"].lower()
    assert PAID in browser.get(f"{vendor.url}/items/{ITEM}", timeout=30).text
    assert PAID not in browser.get(f"{vendor.url}/items/harbour-bridge-reopens", timeout=30).text  # that item only
    bad = requests.post(f"{vendor.url}/v1/access/cookie", json={"token": "v1.e30.x"}, timeout=30)
    assert bad.status_code == 403 and "set-cookie" not in bad.headers


def test_an_older_access_link_becomes_the_cookie_and_leaves_the_url(broker: RunningBroker,
                                                                    vendor: RunningVendor) -> None:  # fmt: skip
    token = _token(broker, vendor)
    browser = requests.Session()
    first = browser.get(f"{vendor.url}/items/{ITEM}", params={"access": token}, allow_redirects=False, timeout=30)
    assert first.status_code == 303 and first.headers["location"] == f"/items/{ITEM}"
    assert PAID in browser.get(f"{vendor.url}/items/{ITEM}", timeout=30).text

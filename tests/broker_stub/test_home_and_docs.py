"""The broker's ``/`` is a page for people; ``/docs`` of broker and vendor work without internet (no CDN)."""

from __future__ import annotations

import re

import requests

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor


def test_broker_home_page_names_the_broker_and_its_fingerprint(broker: RunningBroker) -> None:
    resp = requests.get(broker.url + "/", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert broker.broker_id in resp.text and broker.public_key.fingerprint in resp.text
    assert 'href="/docs"' in resp.text
    icon = requests.get(broker.url + "/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_api_docs_load_every_asset_from_the_server_itself(broker: RunningBroker, vendor: RunningVendor) -> None:
    for base in (broker.url, vendor.url):
        html = requests.get(base + "/docs", timeout=10).text
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
        assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
        for asset in assets:
            assert requests.get(base + asset, timeout=10).status_code == 200, asset
        assert requests.get(base + "/openapi.json", timeout=10).json()["openapi"].startswith("3.")

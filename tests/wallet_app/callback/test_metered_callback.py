"""The callback's metered routes in front of the real wallet core and shop: only the page that opened a session (its
certified origin) may ask for its units or end it; a locked wallet pays nothing; bad bodies change nothing."""

from __future__ import annotations

from typing import Any

import requests

from tests.support.vendor import RunningVendor
from tests.support.wallet import quote_for
from wallet_app.callback.server import CallbackServer
from wallet_app.services import WalletService

PODCAST = "planet-podcast"


def _post(srv: CallbackServer, path: str, body: Any, origin: str) -> requests.Response:
    return requests.post(f"{srv.url}{path}", json=body, headers={"Origin": origin}, timeout=20)


def _open(srv: CallbackServer, vendor: RunningVendor) -> str:
    q, c = quote_for(vendor.url, PODCAST)
    srv.coordinator.on_prompt = lambda p: srv.coordinator.approve(p.prompt_id)
    first = _post(srv, "/v1/purchase", {"quote": q, "vendor_certificate": c}, vendor.url).json()
    if first["status"] == "pending":
        poll = requests.get(f"{srv.url}/v1/purchase/{first['prompt_id']}", params={"token": first["poll_token"]},
                            timeout=20).json()  # fmt: skip
        while poll["status"] in ("pending", "paying"):
            poll = requests.get(f"{srv.url}/v1/purchase/{first['prompt_id']}",
                                params={"token": first["poll_token"]}, timeout=20).json()  # fmt: skip
        first = poll
    assert first["status"] == "paid" and first["session_id"], first
    return str(first["session_id"])


def test_the_page_pays_units_and_ends_its_session(handoff: CallbackServer, vendor: RunningVendor,
                                                  funded_wallet: WalletService) -> None:  # fmt: skip
    sid = _open(handoff, vendor)
    unit = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 2}, vendor.url)
    assert unit.status_code == 200, unit.text
    body = unit.json()
    assert body["units_paid"] == 2 and body["total"] == {"amount": 2, "currency": "EUR"} and not body["ended"]
    assert unit.headers["access-control-allow-origin"] == vendor.url
    again = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 2}, vendor.url).json()
    assert again["units_paid"] == 2  # a retried request pays nothing more
    end = _post(handoff, "/v1/metered/end", {"session_id": sid}, vendor.url)
    assert end.status_code == 200 and end.json()["ended"] is True
    late = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 3}, vendor.url)
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_ended"
    assert funded_wallet.metered_sessions()[0].units_paid == 2


def test_another_site_a_locked_wallet_or_a_bad_body_pays_nothing(handoff: CallbackServer, vendor: RunningVendor,
                                                                 funded_wallet: WalletService) -> None:  # fmt: skip
    sid = _open(handoff, vendor)
    paid_before = len(funded_wallet.vault.query("SELECT 1 FROM spends"))
    other = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 2}, "http://127.0.0.1:1")
    assert other.status_code == 403
    stop_other = _post(handoff, "/v1/metered/end", {"session_id": sid}, "http://127.0.0.1:1")
    assert stop_other.status_code == 403
    for bad in ({"session_id": sid}, {"session_id": sid, "unit_no": 0}, {"session_id": sid, "unit_no": 2, "x": 1},
                {"session_id": "", "unit_no": 2}, [sid, 2]):  # fmt: skip
        resp = _post(handoff, "/v1/metered/unit", bad, vendor.url)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed", bad
    unknown = _post(handoff, "/v1/metered/unit", {"session_id": "f" * 32, "unit_no": 2}, vendor.url)
    assert unknown.status_code == 404
    funded_wallet.lock()
    locked = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 2}, vendor.url)
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "locked"
    funded_wallet.unlock()
    assert len(funded_wallet.vault.query("SELECT 1 FROM spends")) == paid_before
    after = _post(handoff, "/v1/metered/unit", {"session_id": sid, "unit_no": 2}, vendor.url)
    assert after.status_code == 409 and after.json()["error"]["details"]["reason"] == "locked"

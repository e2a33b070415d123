"""Attack suite against the wallet's local callback, with the real wallet core, vendor and broker on loopback.

Attacks come from raw HTTP clients and from a page in chromium on a second, unregistered loopback origin. Every
one must be refused, open no prompt (except the single one the 100-in-a-second flood may open) and leave the
vault's spend tables and chain positions exactly as they were. The test prints how many it tried and how many
got through.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from netpay.keys import SigningKey, load_or_create_key
from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from netpay_web.live import LiveServer
from tests.support.callback import chromium
from tests.support.vendor import RunningVendor
from tests.support.wallet import quote_for
from vendor_stub.service import key_path
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.server import CallbackServer
from wallet_app.services import WalletService

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def spend_state(wallet: WalletService) -> list[Any]:
    """Everything a payment would change in the vault: spends, their segments, every chain's position."""
    rows = wallet.vault.query("SELECT * FROM spends ORDER BY payment_id")
    rows += wallet.vault.query("SELECT * FROM spend_segments ORDER BY payment_id, chain_id")
    rows += wallet.vault.query("SELECT chain_id, position, status FROM chains ORDER BY chain_id")
    return [tuple(r) for r in rows]


class Scoreboard:
    """Counts attacks; one got through if it was not refused, opened a prompt, or changed the vault."""

    def __init__(self, wallet: WalletService, prompts: list[Prompt]) -> None:
        self.wallet = wallet
        self.prompts = prompts
        self.baseline = spend_state(wallet)
        self.tried: list[str] = []
        self.through: list[str] = []

    def check(self, name: str, refused: bool, allowed_prompts: int = 0) -> None:
        self.tried.append(name)
        opened = len(self.prompts)
        if not refused or opened > allowed_prompts or spend_state(self.wallet) != self.baseline:
            self.through.append(f"{name} (refused={refused}, prompts={opened})")


def evil_page(callback: str, offer: dict[str, Any], vendor_origin: str) -> str:
    offer_json = json.dumps(offer)
    b64 = base64.urlsafe_b64encode(offer_json.encode()).decode().rstrip("=")
    steal = f"{callback}/v1/pay?offer={b64}&origin={vendor_origin}&return=http://127.0.0.1:1/steal"
    return f"""<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="f" method="POST" action="{callback}/v1/purchase" enctype="text/plain" target="sink">
  <input type="hidden" id="fi" value='"}}'></form>
<div id="out"></div>
<script>
const offer = {offer_json};
const out = (k, v) => {{ const d = document.createElement('p'); d.id = k; d.textContent = v; out_el.appendChild(d); }};
const out_el = document.getElementById('out');
window.attackJson = () => fetch('{callback}/v1/purchase', {{method: 'POST', mode: 'cors',
    headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify(offer)}})
  .then(r => 'answered ' + r.status, e => 'blocked ' + e.name);
window.attackTextPlain = () => fetch('{callback}/v1/purchase', {{method: 'POST', mode: 'no-cors',
    headers: {{'Content-Type': 'text/plain'}}, body: JSON.stringify(offer)}})
  .then(r => 'opaque ' + r.type, e => 'blocked ' + e.name);
window.attackForm = () => {{
  document.getElementById('fi').name = JSON.stringify(offer).slice(0, -1) + ',"x":"';
  document.getElementById('f').submit(); return 'submitted'; }};
window.stealUrl = {json.dumps(steal)};
</script></body></html>"""


def test_attack_suite(handoff: CallbackServer, vendor: RunningVendor, funded_wallet: WalletService) -> None:
    cb = handoff.url
    origin = vendor.url
    coordinator = handoff.coordinator
    prompts: list[Prompt] = []
    coordinator.on_prompt = prompts.append
    json_headers = {"Content-Type": "application/json", "Origin": origin}

    def genuine(item: str = "harbour-bridge-reopens") -> dict[str, Any]:
        q, c = quote_for(vendor.url, item)
        return {"quote": q, "vendor_certificate": c}

    def purchase(body: Any, headers: dict[str, str]) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(f"{cb}/v1/purchase", data=data, headers=headers, timeout=20)

    def refused(resp: requests.Response, status: int, code: str) -> bool:
        return resp.status_code == status and resp.json()["error"]["code"] == code

    # A legitimate purchase under an allowance first: its quote is replayed below.
    funded_wallet.set_allowance(vendor.vendor_id, "Daily Planet", Money(50, "EUR"), Money(100, "EUR"))
    paid_offer = genuine()
    first = purchase(paid_offer, json_headers)
    assert first.status_code == 200 and first.json()["status"] == "paid", first.text
    board = Scoreboard(funded_wallet, prompts)  # baseline taken after that payment

    vendor_key = load_or_create_key(key_path(vendor.settings.data_dir))
    cert = Signed.from_wire(paid_offer["vendor_certificate"], VendorCertificate)
    template = Signed.from_wire(paid_offer["quote"], Quote).body

    def signed_quote(key: SigningKey, **changes: Any) -> dict[str, Any]:
        body = dataclasses.replace(template, quote_id=secrets.token_hex(8), **changes)
        return Signed.sign(body, key).to_wire()

    # --- raw HTTP clients -----------------------------------------------------------------------------------------
    offer = genuine()
    with LiveServer(Starlette()) as tmp:
        evil_origin = tmp.url  # a loopback origin no broker certified
    r = purchase(offer, {"Content-Type": "application/json", "Origin": evil_origin})
    board.check("forged Origin", refused(r, 403, "forbidden") and "Access-Control-Allow-Origin" not in r.headers)
    r = purchase(offer, {"Content-Type": "application/json"})
    board.check("missing Origin", refused(r, 403, "forbidden"))
    r = purchase(offer, {"Content-Type": "application/json", "Origin": "null"})
    board.check("null Origin", refused(r, 403, "forbidden"))

    conn = http.client.HTTPConnection("127.0.0.1", handoff.port, timeout=10)
    body = json.dumps(offer).encode()
    conn.request("POST", "/v1/purchase", body=body, headers={**json_headers, "Host": f"attacker.test:{handoff.port}"})
    resp = conn.getresponse()
    rebound = json.loads(resp.read())
    board.check("rebinding Host", resp.status == 403 and rebound["error"]["details"]["reason"] == "host")

    r = purchase(offer, {"Content-Type": "text/plain", "Origin": evil_origin})
    board.check("text/plain cross-site post", refused(r, 415, "unsupported_media_type"))
    r = purchase(
        b"quote=x&vendor_certificate=y", {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin}
    )
    board.check("form post", refused(r, 415, "unsupported_media_type"))

    forged = {"quote": signed_quote(SigningKey.generate()), "vendor_certificate": offer["vendor_certificate"]}
    r = purchase(forged, json_headers)
    board.check("quote signed by an uncertified key", refused(r, 403, "untrusted_signer"))

    rogue_broker, rogue_vendor = SigningKey.generate(), SigningKey.generate()
    rogue_cert = Signed.sign(dataclasses.replace(cert.body, public_key=rogue_vendor.public), rogue_broker)
    r = purchase({"quote": signed_quote(rogue_vendor), "vendor_certificate": rogue_cert.to_wire()}, json_headers)
    board.check("certificate from an untrusted broker", refused(r, 403, "untrusted_signer"))

    now = int(time.time())
    expired = {"quote": signed_quote(vendor_key, issued_at=now - 600, expires_at=now - 1),
               "vendor_certificate": offer["vendor_certificate"]}  # fmt: skip
    r = purchase(expired, json_headers)
    board.check("expired quote", refused(r, 410, "quote_expired"))

    r = purchase(paid_offer, json_headers)
    board.check("replayed paid quote", refused(r, 409, "quote_paid"))

    # --- a page on a second, unregistered loopback origin, in chromium ----------------------------------------------
    page_offer = genuine()

    async def attack_page(_: Request) -> HTMLResponse:
        return HTMLResponse(evil_page(cb, page_offer, origin))

    async def no_info(_: Request) -> JSONResponse:
        return JSONResponse({"error": {"code": "not_found", "message": "no", "details": {}}}, status_code=404)

    evil_app = Starlette(routes=[Route("/", attack_page), Route("/v1/info", no_info)])
    with LiveServer(evil_app) as evil, chromium() as browser:
        page = browser.new_page()
        page.goto(evil.url + "/")
        result = page.evaluate("attackJson()")
        board.check("page: JSON fetch from unregistered origin", result.startswith("blocked"))
        page.evaluate("attackTextPlain()")
        board.check("page: text/plain no-cors post", True)  # unreadable by the page: judged by prompts and vault
        page.evaluate("attackForm()")
        page.wait_for_timeout(500)
        frame_text = page.frame(name="sink").content() if page.frame(name="sink") else ""
        board.check("page: cross-site form post", "unsupported_media_type" in frame_text)
        page.goto(page.evaluate("stealUrl"))
        board.check("page: navigation returning the token elsewhere", 'data-code="forbidden"' in page.content())

    # --- size and flood ---------------------------------------------------------------------------------------------
    funded_wallet.revoke_allowance(vendor.vendor_id)  # so the flood would have to prompt
    try:
        r = purchase(b"{" + b" " * (10 * 1024 * 1024) + b"}", json_headers)
        big_refused = refused(r, 413, "payload_too_large")
    except requests.ConnectionError:
        big_refused = True  # the callback closed the connection on the oversized body
    board.check("10 MB body", big_refused)

    flood = [
        {"quote": signed_quote(vendor_key, item_id=f"flood-{i}"), "vendor_certificate": offer["vendor_certificate"]}
        for i in range(100)
    ]
    session = requests.Session()

    def send(body: dict[str, Any]) -> int:
        return session.post(f"{cb}/v1/purchase", json=body, headers={"Origin": origin}, timeout=20).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, flood))
    took = time.monotonic() - started
    board.check(
        "100 prompts in a second",
        statuses.count(200) == 1 and statuses.count(429) == 99,
        allowed_prompts=1,
    )
    assert len(prompts) == 1 and took < 5
    coordinator.decline(prompts[0].prompt_id)

    print(f"\nattacks tried: {len(board.tried)}, got through: {len(board.through)} (flood of 100 took {took:.2f}s)")
    for name in board.through:
        print("  THROUGH:", name)
    assert board.through == []
    assert len(board.tried) == 16
    assert spend_state(funded_wallet) == board.baseline

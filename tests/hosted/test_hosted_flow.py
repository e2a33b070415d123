"""The hosted e-wallet end to end over real servers (a requests session plays the phone's browser): buy hosted
coins, approve a grant at the broker from a shop, buy at the newspaper, move the e-wallet to the card shop, revoke,
and the attacks on the code flow and the slice."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import requests

from netpay.chain import ChainHasher
from netpay.messages import (
    CustodyClaim,
    GrantRequest,
    HostedGrant,
    RedemptionBatch,
    RedemptionClaim,
    SpendEntry,
    SpendReport,
)
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.hosted import PAID, PASSWORD, authorize, hidden_fields, hosted_customer, hosted_summary
from tests.support.vendor import CARDS, RunningVendor, start_vendor

_hosted = hosted_summary
_hidden = hidden_fields
_authorize = authorize


def _customer(broker: RunningBroker) -> tuple[str, str]:
    return hosted_customer(broker)


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def _buy(browser: requests.Session, shop: RunningVendor, item: str) -> requests.Response:
    return browser.post(f"{shop.url}/hosted/buy/{item}", allow_redirects=False)


def test_grant_buy_move_and_revoke(broker: RunningBroker, vendor: RunningVendor,
                                   vendor_factory: Callable[..., RunningVendor]) -> None:  # fmt: skip
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    name, token = _customer(broker)
    assert _hosted(broker, token)["hosted_balance"] == {"amount": 200, "currency": "EUR"}
    browser = requests.Session()
    r = _authorize(browser, vendor, name, "0.50")
    assert r.status_code == 200 and r.url.endswith("/items/night-market-returns") and PAID in r.text, (
        r.url
    )  # paid at once: 3
    assert "story paid" in r.text
    for item in ("observatory-finds-comet", "harbour-bridge-reopens"):  # 4 + 5
        r = _buy(browser, vendor, item)
        assert r.status_code == 303 and "?code=" in r.headers["location"], r.text
        page = browser.get(vendor.url + r.headers["location"])
        assert page.status_code == 200
    s = _hosted(broker, token)
    assert s["hosted_balance"]["amount"] == 150 and s["grants"][0]["budget"]["amount"] == 50
    # The card shop: the broker takes the chain back from the newspaper (its release) and slices from there.
    r = _authorize(browser, cards, name, "0.40", item="thank-you-sunrise")
    assert r.status_code == 200 and PAID in r.text, r.text  # the card (10 cents), paid on return
    s = _hosted(broker, token)
    news, card = sorted(s["grants"], key=lambda g: g["issued_at"] + (g["status"] == "active"))
    assert news["status"] == "ended" and news["spent"]["amount"] == 12 and news["end_reason"] == "handed_on"
    assert card["status"] == "active" and card["budget"]["amount"] == 40
    # 200 - 12 spent at the newspaper - 40 granted to the card shop
    assert s["hosted_balance"]["amount"] == 148
    # The newspaper no longer spends the chain (it released it).
    r = _buy(browser, vendor, "night-market-returns")
    assert r.status_code == 402 and 'data-code="insufficient_coins"' in r.text, r.headers.get("location")
    # The broker's page shows both shops; revoke the card shop's grant.
    page = browser.get(f"{broker.url}/wallet")
    assert "Paper Lantern Cards" in page.text and "Daily Planet" in page.text
    r = browser.post(f"{broker.url}/wallet/grants/{card['grant_id']}/revoke", data={"csrf": _csrf(page.text)})
    assert r.status_code == 200
    s = _hosted(broker, token)
    assert s["hosted_balance"]["amount"] == 200 - 12 - 10  # the unspent 30 of the card grant are back
    assert all(g["status"] == "ended" for g in s["grants"])


def test_code_flow_attacks(broker: RunningBroker, vendor: RunningVendor,
                           vendor_factory: Callable[..., RunningVendor]) -> None:  # fmt: skip
    other = vendor_factory(name="Other Shop")
    name, _token = _customer(broker)
    browser = requests.Session()
    # A redirect URI outside the vendor's certificate: an error page at the broker, no redirect.
    r = browser.get(f"{broker.url}/hosted/authorize", params={
        "client_id": vendor.vendor_id, "redirect_uri": "https://evil.example/cb", "state": "s",
        "code_challenge": "a" * 43, "code_challenge_method": "S256"}, allow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text
    # Get a real code without letting the shop redeem it (stop at the redirect).
    start = browser.get(f"{vendor.url}/hosted/start?item=night-market-returns", allow_redirects=True)
    login = browser.post(f"{broker.url}/hosted/login", data={**_hidden(start.text), "username": name,
                                                             "password": PASSWORD})  # fmt: skip
    form = _hidden(login.text)
    # A cross-site post of the approve form (the browser says where it comes from): refused.
    allow = {**form, "budget": "1.00", "duration": "86400", "decision": "allow"}
    evil = {"Origin": "https://evil.example"}
    r = browser.post(f"{broker.url}/hosted/authorize", data=allow, headers=evil, allow_redirects=False)
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text and "another site" in r.text
    no_csrf = {k: v for k, v in form.items() if k != "csrf"}
    r = browser.post(f"{broker.url}/hosted/authorize", data={**no_csrf, "budget": "1.00", "duration": "86400",
                     "decision": "allow"}, allow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text
    assert not broker.broker.core.db.query("SELECT * FROM hosted_codes")  # nothing issued
    r = browser.post(f"{broker.url}/hosted/authorize", data={**form, "budget": "1.00", "duration": "86400",
                     "decision": "allow"}, allow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    code = re.search(r"code=([^&]+)", r.headers["location"]).group(1)  # type: ignore[union-attr]
    state = form["state"]

    def grant_request(shop: RunningVendor, code: str, verifier: str, redirect: str | None = None) -> requests.Response:
        v = shop.vendor
        req = GrantRequest(v.vendor_id, code, verifier, redirect or shop.settings.base_url + "/hosted/callback",
                           secrets.token_hex(16), v.now())  # fmt: skip
        return broker.session.post(f"{broker.url}/v1/hosted/grants", json=Signed.sign(req, v.key).to_wire())

    before = broker.broker.core.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0]
    wrong_verifier = secrets.token_urlsafe(48)
    r = grant_request(vendor, code, wrong_verifier)
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "pkce"
    r = grant_request(other, code, wrong_verifier)  # another vendor with this customer's code
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] in {"wrong_vendor", "redirect_uri"}
    forged = secrets.token_urlsafe(32)
    r = grant_request(vendor, forged, wrong_verifier)
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "invalid_code"
    assert broker.broker.core.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0] == before
    # The shop's own callback redeems it once; the same code again is refused as replayed.
    r = browser.get(f"{vendor.url}/hosted/callback", params={"state": state, "code": code})
    assert r.status_code == 200 and r.url.endswith("/items/night-market-returns") and PAID in r.text
    r = grant_request(vendor, code, wrong_verifier)
    assert r.status_code == 409 and r.json()["error"]["code"] == "replayed"


def test_slice_limits(broker: RunningBroker, vendor: RunningVendor) -> None:
    name, _token = _customer(broker)
    browser = requests.Session()
    assert _authorize(browser, vendor, name, "0.08").status_code == 200  # night-market-returns: 3 of 8
    assert _buy(browser, vendor, "observatory-finds-comet").status_code == 303  # 7 of 8
    vendor.vendor.reporter.flush()  # the spend report is background work: done before the snapshot
    dump = vendor.dump()
    r = _buy(browser, vendor, "night-market-returns")  # 3 more: over the grant
    assert r.status_code == 402 and 'data-code="insufficient_coins"' in r.text
    assert vendor.dump() == dump  # nothing recorded
    # The grant's top payword gives coins up to 8 and no higher: a payword "beyond" is a guess the broker refuses.
    g = broker.broker.core.db.query("SELECT wire FROM hosted_grants")[0][0]
    grant = Signed.from_wire(json.loads(g), HostedGrant).body
    assert grant.to_index == grant.from_index + 8
    hasher = ChainHasher(grant.chain_id)
    cert = broker.broker.core.db.query("SELECT touchstone FROM chains WHERE chain_id = ?", (grant.chain_id.hex(),))
    assert hasher.walk(grant.top_payword, grant.to_index, 0) == bytes(cert[0][0])
    forged = secrets.token_bytes(32)  # what a vendor would have to present for coin 9
    v = vendor.vendor

    entry = SpendEntry(grant.chain_id, grant.to_index, grant.to_index + 1, forged)
    report = SpendReport(secrets.token_hex(8), v.vendor_id, (entry,), v.now())
    r = broker.session.post(f"{broker.url}/v1/spend-reports", json=Signed.sign(report, v.key).to_wire())
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "outside_custody"


def test_another_vendor_cannot_take_a_granted_chain(broker: RunningBroker, vendor: RunningVendor,
                                                   vendor_factory: Callable[..., RunningVendor]) -> None:  # fmt: skip
    """A vendor without the grant claims custody of the hosted chain (to spend the grant's slice or move it): refused,
    the grant's vendor stays the custodian."""
    other = vendor_factory(name="Other Shop")
    name, _ = _customer(broker)
    assert PAID in _authorize(requests.Session(), vendor, name, "0.20").text
    db = broker.broker.core.db
    chain_id = db.query("SELECT chain_id FROM hosted_grants")[0][0]
    vendor.vendor.reporter.flush()  # its report of the purchase must not land between the snapshot and the check
    before = db.query("SELECT custodian, reported_index FROM chains WHERE chain_id = ?", (chain_id,))[0]
    v = other.vendor
    claim = CustodyClaim(v.vendor_id, bytes.fromhex(chain_id), secrets.token_hex(8), v.now())
    r = broker.session.post(f"{broker.url}/v1/custody/claims", json=Signed.sign(claim, v.key).to_wire())
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "hosted"
    after = db.query("SELECT custodian, reported_index FROM chains WHERE chain_id = ?", (chain_id,))[0]
    assert tuple(after) == tuple(before) and after[0] == vendor.vendor_id


def test_hosted_chains_stay_out_of_the_desktop_wallets_way(broker: RunningBroker) -> None:
    """A hosted chain is not listed for lost-wallet recovery (the wallet would close it) and cannot be closed as a
    wallet's chain; it returns through the hosted endpoint, refunding every coin never handed out."""
    _, token = _customer(broker)
    auth = {"Authorization": f"Bearer {token}"}
    listed = broker.session.get(f"{broker.url}/v1/account/chains", headers=auth).json()["chains"]
    assert listed == []
    chain_id = _hosted(broker, token)["chains"][0]["chain_id"]
    r = broker.session.post(f"{broker.url}/v1/chains/{chain_id}/close", headers=auth)
    assert r.status_code == 403 and r.json()["error"]["details"]["reason"] == "hosted"
    balance = broker.session.get(f"{broker.url}/v1/account", headers=auth).json()["balance"]["amount"]
    r = broker.session.post(f"{broker.url}/v1/account/hosted/chains/{chain_id}/return", headers=auth)
    assert r.status_code == 200 and r.json()["refund"]["amount"] == 200, r.text
    after = broker.session.get(f"{broker.url}/v1/account", headers=auth).json()["balance"]["amount"]
    assert after == balance + 200 and _hosted(broker, token)["hosted_balance"]["amount"] == 0


def test_expired_code_and_expired_grant(broker_factory: Callable[..., RunningBroker], tmp_path: Path) -> None:
    """A code redeemed after its 120 s is refused (`expired`, nothing granted); a grant past its duration is ended
    through the vendor's release (its unspent part back in the hosted e-wallet) and the vendor stops spending it."""
    offset = [0]
    broker = broker_factory(clock=lambda: int(time.time()) + offset[0], session_ttl_s=3 * 86400)
    shop = start_vendor(broker, tmp_path / "shop")
    try:
        name, token = hosted_customer(broker)
        browser = requests.Session()
        start = browser.get(f"{shop.url}/hosted/start?item=night-market-returns")
        login = browser.post(f"{broker.url}/hosted/login",
                             data={**_hidden(start.text), "username": name, "password": PASSWORD})  # fmt: skip
        allow = {**_hidden(login.text), "budget": "0.20", "duration": "3600", "decision": "allow"}
        r = browser.post(f"{broker.url}/hosted/authorize", data=allow, allow_redirects=False)
        code = re.search(r"code=([^&]+)", r.headers["location"]).group(1)  # type: ignore[union-attr]
        offset[0] = 121
        r = browser.get(f"{shop.url}/hosted/callback", params={"state": allow["state"], "code": code})
        assert r.status_code == 400 and 'data-code="expired"' in r.text
        assert broker.broker.core.db.query("SELECT COUNT(*) FROM hosted_grants")[0][0] == 0
        offset[0] = 0
        assert PAID in authorize(browser, shop, name, "0.20").text  # 3 of 20 spent
        offset[0] = 86401  # the helper asks for one day
        shop.vendor.clock_offset = 86401
        s = hosted_summary(broker, token)
        [grant] = s["grants"]
        assert grant["status"] == "ended" and grant["end_reason"] == "expired" and grant["spent"]["amount"] == 3
        assert s["hosted_balance"]["amount"] == 197
        r = browser.post(f"{shop.url}/hosted/buy/observatory-finds-comet", allow_redirects=False)
        assert r.status_code == 400 and 'data-code="expired"' in r.text
    finally:
        shop.stop()


def test_same_shop_asks_again(broker: RunningBroker, vendor: RunningVendor) -> None:
    """The shop's cookie is lost (another browser): the customer allows it again; the old grant ends through the
    shop's own release and the new slice starts where it stopped, so no coin is granted twice."""
    name, token = _customer(broker)
    assert PAID in _authorize(requests.Session(), vendor, name, "0.10").text  # 3
    assert PAID in _authorize(requests.Session(), vendor, name, "0.10", item="observatory-finds-comet").text  # 4
    s = _hosted(broker, token)
    new, old = sorted(s["grants"], key=lambda g: g["status"] != "active")
    assert old["status"] == "ended" and old["end_reason"] == "renewed" and old["spent"]["amount"] == 3
    assert new["status"] == "active" and new["budget"]["amount"] == 10
    assert s["hosted_balance"]["amount"] == 200 - 3 - 10
    grants = broker.broker.core.db.query("SELECT from_index, to_index FROM hosted_grants ORDER BY from_index")
    assert [tuple(g) for g in grants] == [(0, 10), (3, 13)]


def test_buying_hosted_coins_is_idempotent_and_sealed(broker: RunningBroker) -> None:
    """The same request and key again: the same chain, paid once; the seed is stored sealed, never in clear."""
    token = broker.new_customer("bob_" + secrets.token_hex(3), PASSWORD, topup=1000)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "buy-1"}
    body = {"length": 300, "coin_value": {"amount": 1, "currency": "EUR"}}
    first = broker.session.post(f"{broker.url}/v1/account/hosted/chains", json=body, headers=headers)
    again = broker.session.post(f"{broker.url}/v1/account/hosted/chains", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["chain_id"] == again.json()["chain_id"] and again.json()["balance"]["amount"] == 700
    other = broker.session.post(f"{broker.url}/v1/account/hosted/chains", json={**body, "length": 5}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    too_much = broker.session.post(f"{broker.url}/v1/account/hosted/chains", json={**body, "length": 900},
                                   headers={**headers, "Idempotency-Key": "buy-2"})  # fmt: skip
    assert too_much.status_code == 402 and too_much.json()["error"]["code"] == "insufficient_funds"
    db = broker.broker.core.db
    assert db.query("SELECT COUNT(*) FROM hosted_chains")[0][0] == 1  # the refused sale left no seed
    [row] = db.query("SELECT chain_id, seed_nonce, seed_sealed FROM hosted_chains")
    assert len(bytes(row[2])) == 32 + 16  # AES-GCM: the 32-byte seed and a 16-byte tag
    seed = broker.broker.hosted._sealer.open(row[0], bytes(row[1]), bytes(row[2]))
    stored = b"".join(p.read_bytes() for p in broker.data_dir.glob("broker.sqlite3*"))
    assert len(seed) == 32 and seed not in stored  # on disk only sealed
    key = (broker.data_dir / "hosted.key").stat()
    assert key.st_mode & 0o077 == 0


def test_a_vendor_cannot_spend_the_part_of_its_slice_it_released(
    broker: RunningBroker, vendor: RunningVendor, vendor_factory: Callable[..., RunningVendor]
) -> None:
    """The newspaper had coins 1..50 and released the chain at 3 when the card shop asked; it still knows W_4..W_50.
    Reporting them is refused (`forbidden`, `outside_custody`), redeeming them is rejected `outside_custody` (the
    same rule as any chain's custody windows: the signed batch kept as evidence), nothing is paid; the card shop's
    coins are redeemed as usual."""
    cards = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    name, _token = _customer(broker)
    browser = requests.Session()
    assert PAID in _authorize(browser, vendor, name, "0.50").text  # newspaper: slice 0..50, spends 3
    db = broker.broker.core.db
    first = Signed.from_wire(json.loads(db.query("SELECT wire FROM hosted_grants")[0][0]), HostedGrant).body
    assert PAID in _authorize(browser, cards, name, "0.40", item="thank-you-sunrise").text  # cards: 3..43
    hasher = ChainHasher(first.chain_id)
    w20 = hasher.walk(first.top_payword, first.to_index, 20)
    v = vendor.vendor
    entry = SpendEntry(first.chain_id, 3, 20, w20)
    report = Signed.sign(SpendReport(secrets.token_hex(8), v.vendor_id, (entry,), v.now()), v.key)
    r = broker.session.post(f"{broker.url}/v1/spend-reports", json=report.to_wire())
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    claim = RedemptionClaim(first.chain_id, 3, 20, w20, None)
    batch = Signed.sign(RedemptionBatch(secrets.token_hex(4), v.vendor_id, (claim,), v.now()), v.key)
    ledger_before = db.query("SELECT COUNT(*) FROM ledger_txns")[0][0]
    r = broker.session.post(f"{broker.url}/v1/redemptions", json=batch.to_wire())
    assert r.status_code == 200, r.text
    [result] = r.json()["body"]["results"]
    assert result["status"] == "rejected" and result["reason"] == "outside_custody", result
    assert result["evidence"]["outside"] == [[3, 20]]
    assert db.query("SELECT COUNT(*) FROM ledger_txns")[0][0] == ledger_before
    assert db.query("SELECT vendor_id, from_index, to_index FROM refused_claims")[0][0] == vendor.vendor_id
    assert db.query("SELECT COUNT(*) FROM redeemed")[0][0] == 0
    # Each shop redeems what it really took: the newspaper 1..3, the card shop 4..13.
    vendor.vendor.redeemer.redeem()
    cards.vendor.redeemer.redeem()
    paid = dict(db.query("SELECT vendor_id, SUM(amount) FROM redeemed GROUP BY vendor_id"))
    assert paid == {vendor.vendor_id: 3, cards.vendor_id: 10}

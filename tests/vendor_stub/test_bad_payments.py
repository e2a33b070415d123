"""Done-when: every bad payment gets a 4xx with a stable code, never a 5xx, and changes nothing at the vendor.

Each case runs against a live vendor and broker; the vendor's database is dumped before and after and must be
identical. Refusals of a parsed payment carry a signed PaymentRefusal with the index the vendor holds.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from netpay.messages import PaymentRefusal
from netpay.signed import Signed
from tests.support.broker import RunningBroker, start_broker
from tests.support.vendor import CARDS, RunningVendor, buy_known_chain, make_payment, payment_of, start_vendor
from tests.support.vendor import KnownChain as Chain


@dataclass
class Shop:
    broker: RunningBroker
    a: RunningVendor
    b: RunningVendor

    def chain(self, n: int = 100) -> Chain:
        return buy_known_chain(self.broker, n)

    def held_chain(self) -> Chain:
        """A chain vendor A already holds at index 5 (one article bought)."""
        c = self.chain()
        resp = self.a.pay(make_payment(self.a.quote("harbour-bridge-reopens"), [(c.cert, c.traversal, 5)]))
        assert resp.status_code == 200, resp.text
        self.a.vendor.reporter.flush()
        return c


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    root: Path = tmp_path_factory.mktemp("bad-payments")
    broker = start_broker(root / "broker")
    a = start_vendor(broker, root / "a", report_delay_s=0.0)
    b = start_vendor(broker, root / "b", catalog=CARDS, name="Paper Lantern Cards")
    yield Shop(broker, a, b)
    a.stop()
    b.stop()
    broker.stop()


def refused(shop: Shop, body: Any, status: int, code: str, raw: bytes | None = None,
            headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Send a bad payment to vendor A; check status, code and that A's database did not change."""
    shop.a.vendor.reporter.flush()
    before = shop.a.dump()
    url = f"{shop.a.url}/v1/payments"
    if raw is not None:
        resp = requests.post(url, data=raw, headers=headers or {"Content-Type": "application/json"}, timeout=30)
    else:
        resp = requests.post(url, json=body, timeout=30)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert shop.a.dump() == before
    return dict(error["details"])


def check_refusal(shop: Shop, details: dict[str, Any], code: str, held: int | None) -> None:
    refusal = Signed.from_wire(details["refusal"], PaymentRefusal).require_signer(shop.a.vendor.key.public)
    assert refusal.code == code and refusal.vendor_id == shop.a.vendor_id
    assert [i for _, i in refusal.held] == [held]


def test_forged_payword(shop: Shop) -> None:
    c = shop.held_chain()
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8, secrets.token_bytes(32))),
                      400, "invalid_payword")  # fmt: skip
    check_refusal(shop, details, "invalid_payword", 5)


def test_altered_payword(shop: Shop) -> None:
    c = shop.held_chain()
    good = c.word(8)
    altered = bytes([good[0] ^ 1]) + good[1:]
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8, altered)),
                      400, "invalid_payword")  # fmt: skip
    check_refusal(shop, details, "invalid_payword", 5)
    # the honest payment for the same coins still goes through afterwards
    ok = shop.a.pay(payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8)))
    assert ok.status_code == 200, ok.text


def test_payword_of_another_position_or_chain(shop: Shop) -> None:
    c = shop.held_chain()
    other = shop.chain()
    refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8, c.word(9))), 400, "invalid_payword")
    refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8, other.word(8))), 400,
            "invalid_payword")  # fmt: skip


def test_revoked_chain(shop: Shop) -> None:
    c = shop.held_chain()
    resp = shop.broker.session.post(
        f"{shop.broker.url}/v1/chains/{c.cert.body.chain_id.hex()}/close", json={},
        headers={"Authorization": f"Bearer {c.token}"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    shop.a.vendor.trust.refresh_revocations()
    assert c.cert.body.chain_id in shop.a.vendor.trust.revoked_chains
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8)), 403, "revoked")
    assert details["chain_id"] == c.cert.body.chain_id.hex()


def test_expired_chain(shop: Shop) -> None:
    c = shop.held_chain()
    vendor = shop.a.vendor
    vendor.clock_offset = c.cert.body.expires_at - vendor.now() + 10  # the shop's clock is past the chain's expiry
    try:
        quote = shop.a.quote("night-market-returns")
        refused(shop, payment_of(quote, c.segment(5, 8)), 400, "expired")
    finally:
        vendor.clock_offset = 0


def test_wrong_sum(shop: Shop) -> None:
    c = shop.held_chain()
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 7)), 400, "wrong_amount")
    assert details["price"]["amount"] == 3 and details["paid"]["amount"] == 2
    refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 9)), 400, "wrong_amount")


def test_replayed_payword(shop: Shop) -> None:
    c = shop.held_chain()
    details = refused(shop, payment_of(shop.a.quote("harbour-bridge-reopens"), c.segment(0, 5)), 409, "index_conflict")
    assert details["held_index"] == 5
    check_refusal(shop, details, "index_conflict", 5)


def test_lower_index(shop: Shop) -> None:
    c = shop.held_chain()
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(3, 6)), 409, "index_conflict")
    assert details["held_index"] == 5
    # a gap above the held index is refused too
    refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(6, 9)), 409, "index_conflict")


def test_someone_elses_quote(shop: Shop) -> None:
    c = shop.held_chain()
    quote_b = shop.b.quote("thank-you-sunrise")  # 10 cents at the card shop
    refused(shop, payment_of(quote_b, c.segment(5, 15)), 403, "untrusted_signer")


def test_forged_quote(shop: Shop) -> None:
    c = shop.held_chain()
    quote = shop.a.quote("council-budget-explained")
    quote["body"]["price"]["amount"] = 1  # cheaper, but no longer what the shop signed
    refused(shop, payment_of(quote, c.segment(5, 6)), 400, "bad_signature")


def test_expired_quote(shop: Shop) -> None:
    c = shop.held_chain()
    quote = shop.a.quote("night-market-returns")
    shop.a.vendor.clock_offset = shop.a.settings.quote_ttl_s + 1
    try:
        refused(shop, payment_of(quote, c.segment(5, 8)), 410, "quote_expired")
    finally:
        shop.a.vendor.clock_offset = 0


def test_chain_closed_at_this_vendor(shop: Shop) -> None:
    c = shop.held_chain()
    closed = shop.broker.session.post(
        f"{shop.broker.url}/v1/chains/{c.cert.body.chain_id.hex()}/close",
        headers={"Authorization": f"Bearer {c.token}"},
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    details = refused(shop, payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8)), 409,
                      "custody_conflict")  # fmt: skip
    assert details["released_to"] == "broker"
    check_refusal(shop, details, "custody_conflict", None)


def test_paid_quote_and_idempotent_resend(shop: Shop) -> None:
    c = shop.held_chain()
    quote = shop.a.quote("night-market-returns")
    first = payment_of(quote, c.segment(5, 8))
    r1 = shop.a.pay(first)
    assert r1.status_code == 200
    shop.a.vendor.reporter.flush()
    before = shop.a.dump()
    r2 = shop.a.pay(first)
    assert r2.status_code == 200 and r2.json() == r1.json()
    got = requests.get(f"{shop.a.url}/v1/payments/{first['payment_id']}", timeout=10)
    assert got.status_code == 200 and got.json() == r1.json()
    assert shop.a.dump() == before
    refused(shop, payment_of(quote, c.segment(8, 11)), 409, "quote_paid")
    changed = dict(first, segments=[c.segment(8, 11).to_json()])
    refused(shop, changed, 409, "idempotency_conflict")
    assert requests.get(f"{shop.a.url}/v1/payments/nope", timeout=10).status_code == 404


def test_oversized_body(shop: Shop) -> None:
    shop.held_chain()
    big = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
    refused(shop, None, 413, "payload_too_large", raw=big)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"type": "payment", "version": 1.5}', b"[]", b'{"type": "payment", "version": 1}', b"",
     b'{"type": "payment", "type": "payment"}'],
)  # fmt: skip
def test_malformed_json(shop: Shop, raw: bytes) -> None:
    details = refused(shop, None, 400, "malformed", raw=raw)
    assert details["refusal"]["body"]["code"] == "malformed"


def test_malformed_payment_fields(shop: Shop) -> None:
    c = shop.held_chain()
    good = payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8))
    bad_segment = dict(good["segments"][0], to_index=5)
    for body in (
        dict(good, extra=1),
        dict(good, segments=[]),
        dict(good, segments=[bad_segment]),
        dict(good, payment_id=""),
        dict(good, type="quote"),
    ):
        code = "wrong_type" if body.get("type") == "quote" else "malformed"
        refused(shop, body, 400, code)


def test_lone_surrogates_are_malformed_not_a_server_error(shop: Shop) -> None:
    c = shop.held_chain()
    good = json.dumps(payment_of(shop.a.quote("night-market-returns"), c.segment(5, 8)))
    payment_id = json.loads(good)["payment_id"]
    title = json.loads(good)["quote"]["body"]["title"]
    for raw in (
        good.replace(payment_id, "\\ud800" + payment_id[1:]).encode(),  # fast path: a held chain, own quote
        good.replace(json.dumps(title), '"\\udfff"').encode(),  # an altered quote: the slow path
        good.encode().replace(payment_id.encode(), b"\xed\xa0\x80" + payment_id[1:].encode()),  # sent raw
    ):
        refused(shop, None, 400, "malformed", raw=raw)


def test_wrong_media_type(shop: Shop) -> None:
    refused(shop, None, 415, "unsupported_media_type", raw=b"{}", headers={"Content-Type": "text/plain"})


def test_revocation_list_is_refreshed_in_the_background(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    vendor = start_vendor(broker, tmp_path / "vendor", revocation_refresh_s=0.2)
    try:
        c = buy_known_chain(broker)
        assert vendor.pay(payment_of(vendor.quote("night-market-returns"), c.segment(0, 3))).status_code == 200
        closed = broker.session.post(f"{broker.url}/v1/chains/{c.cert.body.chain_id.hex()}/close", json={},
                                     headers={"Authorization": f"Bearer {c.token}"})  # fmt: skip
        assert closed.status_code == 200
        import time

        deadline = time.monotonic() + 10
        while c.cert.body.chain_id not in vendor.vendor.trust.revoked_chains and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.cert.body.chain_id in vendor.vendor.trust.revoked_chains
        # the broker's close also asked this vendor, the custodian, for its final index
        row = vendor.vendor.store.one("SELECT status, released_to FROM chains")
        assert row is not None and (row["status"], row["released_to"]) == ("closed", "broker")
    finally:
        vendor.stop()
        broker.stop()

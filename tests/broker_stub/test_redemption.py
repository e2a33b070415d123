"""Redemption: verification, idempotent batches, replays, overlaps, double spends across vendors, the hash cache."""

from __future__ import annotations

import secrets
from typing import Any

import requests

from broker_stub.points import verify_point
from netpay.messages import CustodyRelease, RedemptionResult
from netpay.signed import Signed
from tests.broker_stub.util import refused
from tests.support.broker import RunningBroker, TestVendor


def _redeem(b: RunningBroker, wire: dict[str, Any]) -> requests.Response:
    return b.session.post(f"{b.url}/v1/redemptions", json=wire)


def _setup(b: RunningBroker, length: int = 100) -> tuple[TestVendor, bytes, Any, str]:
    vendor = TestVendor("shop")
    b.register_vendor("shop", vendor.key)
    token = b.new_customer(topup=10_000)
    cert, traversal = b.buy_chain(token, length=length)
    chain_id = cert.body.chain_id
    assert b.session.post(f"{b.url}/v1/custody/claims", json=vendor.claim(chain_id)).status_code == 200
    return vendor, chain_id, traversal, token


def _payable(b: RunningBroker, vendor_id: str) -> int:
    acc = b.session.get(f"{b.url}/v1/vendors/{vendor_id}/account", headers={"X-Operator-Token": b.operator_token})
    return int(acc.json()["payable"]["amount"])


def test_redeem_accepts_and_retry_returns_same_answer(broker: RunningBroker) -> None:
    vendor, chain_id, traversal, _ = _setup(broker)
    i1, w1 = traversal.advance(10)
    i2, w2 = traversal.advance(15)
    wire = vendor.batch([(chain_id, 0, i1, w1), (chain_id, i1, i2, w2)], batch_id="b1")
    first = _redeem(broker, wire)
    assert first.status_code == 200, first.text
    result = Signed.from_wire(first.json(), RedemptionResult).require_signer(broker.public_key)
    assert [r.status for r in result.results] == ["accepted", "accepted"]
    assert [r.amount.amount for r in result.results] == [10, 15]
    assert _payable(broker, "shop") == 25
    before = broker.broker.core.db.dump()
    again = _redeem(broker, wire)
    assert again.json() == first.json() and broker.broker.core.db.dump() == before
    refused(broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, i1, w1)], batch_id="b1")), 409, "replayed")


def test_replayed_and_overlapping_claims(broker: RunningBroker) -> None:
    vendor, chain_id, traversal, _ = _setup(broker)
    i1, w1 = traversal.advance(10)
    assert _redeem(broker, vendor.batch([(chain_id, 0, i1, w1)])).status_code == 200
    err = refused(broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, i1, w1)])), 409, "conflict")
    assert err["details"]["reason"] == "already_redeemed"
    result = Signed.from_wire(err["details"]["result"], RedemptionResult).require_signer(broker.public_key)
    assert result.results[0].evidence["redeemed"]["to_index"] == 10
    i2, w2 = traversal.advance(5)
    # one batch: a good claim plus one overlapping it
    resp = _redeem(broker, vendor.batch([(chain_id, i1, i2, w2), (chain_id, 5, i2, w2)]))
    statuses = [(r["status"], r["reason"]) for r in resp.json()["body"]["results"]]
    assert statuses == [("accepted", None), ("rejected", "already_redeemed")]
    assert _payable(broker, "shop") == 15


def test_claim_refusals(broker: RunningBroker) -> None:
    vendor, chain_id, traversal, _ = _setup(broker)
    i1, w1 = traversal.advance(10)
    refused(broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, i1, b"\7" * 32)])), 400, "invalid_payword")
    refused(broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, 11, w1)])), 400, "invalid_payword")
    refused(broker, lambda: _redeem(broker, vendor.batch([(secrets.token_bytes(16), 0, 1, w1)])), 404, "not_found")
    refused(broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, 101, w1)])), 400, "malformed")
    stranger = TestVendor("stranger")
    broker.register_vendor("stranger", stranger.key)
    refused(broker, lambda: _redeem(broker, stranger.batch([(chain_id, 0, i1, w1)])), 403, "forbidden")
    refused(broker, lambda: _redeem(broker, TestVendor("shop").batch([(chain_id, 0, i1, w1)])), 403, "untrusted_signer")
    refused(
        broker, lambda: _redeem(broker, TestVendor("nobody").batch([(chain_id, 0, i1, w1)])), 403, "untrusted_signer"
    )
    tampered = vendor.batch([(chain_id, 0, i1, w1)])
    tampered["body"]["claims"][0]["from_index"] = 1
    refused(broker, lambda: _redeem(broker, tampered), 400, "bad_signature")
    bad = vendor.batch([(chain_id, 0, i1, w1)])
    bad["body"]["claims"][0]["to_index"] = "10"
    refused(broker, lambda: _redeem(broker, bad), 400, "malformed")
    bad_release = Signed.sign(CustodyRelease(chain_id, "stranger", "shop", 0, w1, 1), vendor.key)
    err = refused(
        broker, lambda: _redeem(broker, vendor.batch([(chain_id, 0, i1, w1)], release=bad_release)), 400, "malformed"
    )
    assert err["details"]["reason"] == "bad_evidence"


def test_coins_spent_twice_while_no_release_was_possible_are_paid_to_both_and_charged(broker: RunningBroker) -> None:
    a, chain_id, traversal, token = _setup(broker)
    b = TestVendor("b-shop")
    broker.register_vendor("b-shop", b.key)
    seg = traversal.advance(10)
    # B takes custody before A reported anything, so B starts at 0 too; the customer pays both the same coins
    assert broker.session.post(f"{broker.url}/v1/custody/claims", json=b.claim(chain_id)).status_code == 200
    assert _redeem(broker, a.batch([(chain_id, 0, seg[0], seg[1])])).status_code == 200
    batch = b.batch([(chain_id, 0, seg[0], seg[1])], batch_id="b-1")
    resp = _redeem(broker, batch)
    assert resp.status_code == 200
    claim = resp.json()["body"]["results"][0]
    assert claim["status"] == "accepted" and claim["reason"] == "custody_overlap"
    assert claim["amount"]["amount"] == 10
    assert claim["evidence"]["overlaps"][0]["redeemed"]["vendor_id"] == "shop"
    assert [w["vendor_id"] for w in claim["evidence"]["windows"]] == ["shop", "b-shop"]
    assert chain_id.hex() in broker.session.get(f"{broker.url}/v1/revocations").json()["body"]["chains"]
    assert _payable(broker, "b-shop") == 10 and _payable(broker, "shop") == 10
    statement = broker.session.get(
        f"{broker.url}/v1/account/statement", headers={"Authorization": f"Bearer {token}"}
    ).json()
    charge = [e for e in statement["entries"] if e["kind"] == "custody_overlap"]
    assert len(charge) == 1 and charge[0]["amount"]["amount"] == -10
    assert charge[0]["evidence"]["claim"]["vendor_id"] == "b-shop"
    assert statement["balance"]["amount"] == 10_000 - 100 - 10
    assert _redeem(broker, batch).json() == resp.json()  # the same bytes again: the stored answer
    audit = broker.session.get(
        f"{broker.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": broker.operator_token}
    ).json()
    assert audit["balanced"] is True, audit


def test_verified_points_are_cached_so_no_hash_is_computed_twice(broker: RunningBroker) -> None:
    vendor, chain_id, traversal, _ = _setup(broker, length=1000)
    index, payword = traversal.advance(400)
    report = broker.session.post(f"{broker.url}/v1/spend-reports", json=vendor.report([(chain_id, 0, index, payword)]))
    assert report.status_code == 200
    db = broker.broker.core.db
    with db.tx() as c:  # the report verified W_400: checking it again costs no hash
        assert verify_point(c, chain_id.hex(), index, payword) is False
    assert _redeem(broker, vendor.batch([(chain_id, 0, index, payword)])).status_code == 200
    i2, w2 = traversal.advance(100)
    with db.tx() as c:  # a new point walks only down to the cached W_400
        assert verify_point(c, chain_id.hex(), i2, w2) is True
        rows = c.execute("SELECT idx FROM chain_points WHERE chain_id = ? ORDER BY idx", (chain_id.hex(),)).fetchall()
        assert [r[0] for r in rows] == [0, 400, 500]
        c.execute("DELETE FROM chain_points WHERE chain_id = ? AND idx = 500", (chain_id.hex(),))


def test_fee_goes_to_fees_account(broker_factory) -> None:  # type: ignore[no-untyped-def]
    b = broker_factory(redemption_fee_bps=1000)
    vendor, chain_id, traversal, _ = _setup(b)
    i, w = traversal.advance(50)
    assert _redeem(b, vendor.batch([(chain_id, 0, i, w)])).status_code == 200
    assert _payable(b, "shop") == 45
    tb = b.session.get(f"{b.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": b.operator_token}).json()
    assert tb["accounts"]["fees"] == -5 and tb["balanced"] is True


def test_fast_walk_is_the_chain_hash() -> None:
    from broker_stub.points import walk
    from netpay.chain import ChainHasher

    for high, low in ((1, 0), (9, 3), (1000, 0)):
        chain_id, value = secrets.token_bytes(16), secrets.token_bytes(32)
        assert walk(chain_id, value, high, low) == ChainHasher(chain_id).walk(value, high, low)

"""Where docs/protocol.md and the shop must agree for a client written from the document alone: a signed request
with a clock too far off is ``400 stale`` here as at the broker, and ``400 malformed`` names the field."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import requests

from netpay.messages import CloseRequest, ReleaseRequest
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import CARDS, RunningVendor, buy_known_chain, payment_of
from vendor_stub.custody import REQUEST_SKEW_S


def test_a_release_or_close_request_off_the_clock_is_stale(
    broker: RunningBroker, vendor_factory: Callable[..., RunningVendor]
) -> None:
    a = vendor_factory()
    b = vendor_factory(catalog=CARDS, name="Paper Lantern Cards")
    c = buy_known_chain(broker, n=20)
    assert a.pay(payment_of(a.quote("harbour-bridge-reopens"), c.segment(0, 5))).status_code == 200
    chain_id = c.cert.body.chain_id
    a.vendor.reporter.flush()  # the spend report is background work: done before the snapshot, not during the checks
    before = a.dump()
    for offset in (-REQUEST_SKEW_S - 5, REQUEST_SKEW_S + 5):
        at = a.vendor.now() + offset
        release = Signed.sign(ReleaseRequest(chain_id, b.vendor.trust.certificate(), f"n{offset}", at), b.vendor.key)
        close = Signed.sign(CloseRequest(broker.broker_id, chain_id, f"c{offset}", at), broker.broker.core.key)
        for path, wire in (("release", release.to_wire()), ("close", close.to_wire())):
            resp = requests.post(f"{a.url}/v1/custody/{path}", json=wire, timeout=30)
            assert resp.status_code == 400, resp.text
            error = resp.json()["error"]
            assert error["code"] == "stale", error  # the broker's code for the same clock error
            assert abs(error["details"]["vendor_time"] - a.vendor.now()) <= 5
    assert a.dump() == before


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"type": "payment", "version": 1, "payment_id": 1.0}', "body.payment_id"),
        (b'{"type": "payment", "version": 1, "payment_id": "p", "payment_id": "q"}', "body.payment_id"),
        (b'{"type": "payment", "version": 1, "segments": [{"from_index": NaN}]}', "body.segments[0].from_index"),
        (b'{"type": "payment", "version": 1, "segments": [{"to_index": 9223372036854775808}]}',
         "body.segments[0].to_index"),
    ],
)  # fmt: skip
def test_a_payment_that_is_not_strict_json_is_refused_naming_the_field(
    vendor: RunningVendor, raw: bytes, field: str
) -> None:
    before = vendor.dump()
    resp = requests.post(
        f"{vendor.url}/v1/payments", data=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("malformed", field), json.dumps(error)
    assert vendor.dump() == before

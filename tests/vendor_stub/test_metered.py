"""Metered sessions at the shop (seed 000, volume-based): the first unit's payment opens a session, each later unit
is paid with its own quote, issued only to the session's token holder, recorded once, in order, never beyond the
cap, and delivered only once paid."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from netpay.errors import MalformedMessage
from netpay.messages import BusinessModel, Quote
from netpay.signed import Signed
from tests.support.broker import RunningBroker
from tests.support.vendor import NEWSPAPER, KnownChain, RunningVendor, buy_known_chain, payment_of

PODCAST = "planet-podcast"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"NetPay {token}"}


class Listener:
    """A customer paying a metered session by hand, one coin per unit, with a chain whose paywords it knows."""

    def __init__(self, vendor: RunningVendor, chain: KnownChain) -> None:
        self.vendor, self.chain, self.index = vendor, chain, 0
        self.session_id = self.token = ""

    def pay(self, quote: dict[str, Any], payment_id: str | None = None) -> requests.Response:
        coins = quote["body"]["price"]["amount"]
        resp = self.vendor.pay(payment_of(quote, self.chain.segment(self.index, self.index + coins),
                                          payment_id=payment_id))  # fmt: skip
        if resp.status_code == 200:
            self.index += coins
        return resp

    def open(self) -> dict[str, Any]:
        resp = self.pay(self.vendor.quote(PODCAST))
        assert resp.status_code == 200, resp.text
        receipt: dict[str, Any] = resp.json()["receipt"]["body"]
        self.session_id, self.token = receipt["receipt_id"], receipt["access_token"]
        return receipt

    def next_quote(self, token: str | None = None) -> requests.Response:
        return requests.post(f"{self.vendor.url}/v1/metered/{self.session_id}/quote",
                             headers=_auth(token or self.token), timeout=30)  # fmt: skip

    def unit(self) -> requests.Response:
        resp = self.next_quote()
        assert resp.status_code == 200, resp.text
        return self.pay(resp.json()["quote"])

    def state(self) -> dict[str, Any]:
        resp = requests.get(f"{self.vendor.url}/v1/metered/{self.session_id}", headers=_auth(self.token), timeout=30)
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    def audio(self, n: int, token: str | None = None) -> requests.Response:
        return requests.get(f"{self.vendor.url}/metered/{self.session_id}/units/{n}",
                            headers=_auth(token or self.token), timeout=30)  # fmt: skip


def test_a_session_pays_unit_after_unit_and_delivers_only_paid_units(broker: RunningBroker,
                                                                     vendor: RunningVendor) -> None:  # fmt: skip
    quote = vendor.quote(PODCAST)
    assert quote["body"]["model"] == {"kind": "metered", "unit": "30 s of audio", "unit_s": 30, "cap_units": 20,
                                      "unit_no": 1}  # fmt: skip
    me = Listener(vendor, buy_known_chain(broker))
    opening = me.open()
    assert opening["amount"]["amount"] == 1
    assert me.audio(1).status_code == 200 and me.audio(1).headers["content-type"] == "audio/wav"
    assert me.audio(2).status_code == 409  # not paid yet: not delivered
    for n in (2, 3):
        resp = me.unit()
        assert resp.status_code == 200, resp.text
        body = resp.json()["receipt"]["body"]
        assert body["quote_id"] == f"{me.session_id}.{n}" and body["access_token"] == me.token
        assert me.audio(n).status_code == 200
    assert me.state() == {"session_id": me.session_id, "item_id": PODCAST, "units_paid": 3, "cap_units": 20,
                          "total": {"amount": 3, "currency": "EUR"}, "status": "open"}  # fmt: skip
    assert me.audio(4).status_code == 409
    spent = vendor.vendor.store.one("SELECT COUNT(*) AS n, SUM(amount) AS a FROM spends")
    assert (spent["n"], spent["a"]) == (3, 3)


def test_the_cap_ends_the_session(broker: RunningBroker, vendor_factory: Any, tmp_path: Path) -> None:
    data = json.loads(NEWSPAPER.read_text())
    next(i for i in data["items"] if i["item_id"] == PODCAST)["model"]["cap_units"] = 3
    (tmp_path / "cap3.json").write_text(json.dumps(data))
    shop: RunningVendor = vendor_factory(catalog=tmp_path / "cap3.json")
    me = Listener(shop, buy_known_chain(broker))
    me.open()
    assert me.unit().status_code == 200 and me.unit().status_code == 200
    assert me.state()["status"] == "ended" and me.state()["units_paid"] == 3
    resp = me.next_quote()
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "session_ended"


def test_a_unit_paid_twice_or_replayed_is_recorded_once(broker: RunningBroker, vendor: RunningVendor) -> None:
    me = Listener(vendor, buy_known_chain(broker))
    me.open()
    quote = me.next_quote().json()["quote"]
    payment = payment_of(quote, me.chain.segment(1, 2))
    first = vendor.pay(payment)
    assert first.status_code == 200
    replay = vendor.pay(payment)  # the same payment again: the same receipt, nothing more recorded
    assert replay.status_code == 200 and replay.json() == first.json()
    # the same unit's quote paid again with the next coin: refused, with a signed refusal, nothing recorded
    vendor.vendor.reporter.flush()  # background work done before the snapshot, not during the checks
    before = vendor.dump()
    again = vendor.pay(payment_of(quote, me.chain.segment(2, 3)))
    assert again.status_code == 409 and again.json()["error"]["code"] == "quote_paid"
    assert "refusal" in again.json()["error"]["details"]
    assert vendor.dump() == before
    assert me.state()["units_paid"] == 2
    # asking for a quote again gives unit 3, never unit 2 a second time
    assert me.next_quote().json()["quote"]["body"]["model"]["unit_no"] == 3


def test_a_unit_out_of_order_or_beyond_the_cap_records_nothing(broker: RunningBroker, vendor: RunningVendor) -> None:
    me = Listener(vendor, buy_known_chain(broker))
    me.open()
    base = Signed.from_wire(me.next_quote().json()["quote"], Quote, "quote").body

    def forged(n: int, cap: int = 20) -> dict[str, Any]:
        """A quote for unit n the shop itself signed (as if issued earlier): the database still refuses it."""
        model = replace(base.model, unit_no=n, cap_units=cap)
        q = replace(base, quote_id=f"{me.session_id}.{n}", model=model)
        return vendor.vendor.desk.issue_quote(q)

    vendor.vendor.reporter.flush()  # background work done before the snapshot, not during the checks
    before = vendor.dump()
    skipped = vendor.pay(payment_of(forged(3), me.chain.segment(1, 2)))
    assert skipped.status_code == 409 and skipped.json()["error"]["code"] == "unit_out_of_order"
    assert "refusal" in skipped.json()["error"]["details"]
    assert vendor.dump() == before
    vendor.vendor.store.write(lambda c: c.execute("UPDATE metered_sessions SET cap_units = 2"))
    vendor.vendor.reporter.flush()  # background work done before the snapshot, not during the checks
    before = vendor.dump()
    beyond = vendor.pay(payment_of(forged(3, cap=3), me.chain.segment(1, 2)))
    assert beyond.status_code == 409 and beyond.json()["error"]["code"] == "unit_out_of_order"
    assert vendor.dump() == before


def test_another_customers_session_is_refused(broker: RunningBroker, vendor: RunningVendor) -> None:
    alice = Listener(vendor, buy_known_chain(broker))
    alice.open()
    bob = Listener(vendor, buy_known_chain(broker))
    bob.open()
    bob_on_alice = Listener(vendor, bob.chain)
    bob_on_alice.session_id = alice.session_id
    for token in (bob.token, "v1.forged.token"):
        resp = bob_on_alice.next_quote(token)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
        assert bob_on_alice.audio(1, token).status_code == 403
        end = requests.post(f"{vendor.url}/v1/metered/{alice.session_id}/end", headers=_auth(token), timeout=30)
        assert end.status_code == 403
    no_token = requests.get(f"{vendor.url}/metered/{alice.session_id}/units/1", timeout=30)
    assert no_token.status_code == 403
    assert alice.state()["status"] == "open" and alice.state()["units_paid"] == 1


def test_an_ended_session_sells_no_further_unit(broker: RunningBroker, vendor: RunningVendor) -> None:
    me = Listener(vendor, buy_known_chain(broker))
    me.open()
    quote = me.next_quote().json()["quote"]  # the page asked for the next unit, then closed
    end = requests.post(f"{vendor.url}/v1/metered/{me.session_id}/end", headers=_auth(me.token), timeout=30)
    assert end.status_code == 200 and end.json()["status"] == "ended"
    vendor.vendor.reporter.flush()  # background work done before the snapshot, not during the checks
    before = vendor.dump()
    late = me.pay(quote)
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_ended"
    assert vendor.dump() == before
    assert me.next_quote().status_code == 409
    assert me.audio(1).status_code == 200  # what was paid stays delivered


@pytest.mark.parametrize(
    "model",
    [
        {"kind": "metered", "unit": "30 s", "cap_units": 0, "unit_no": 1},
        {"kind": "metered", "unit": "30 s", "cap_units": 5, "unit_no": 6, "session_id": "s"},
        {"kind": "metered", "unit": "30 s", "cap_units": 5, "unit_no": 2},
        {"kind": "metered", "unit": "30 s", "cap_units": 5, "unit_no": 1, "session_id": "s"},
        {"kind": "metered", "cap_units": 5, "unit_no": 1},
        {"kind": "metered", "unit": "30 s", "cap_units": 5, "unit_no": 1, "duration_s": 600},
        {"kind": "metered", "unit": "30 s", "cap_units": 10_001, "unit_no": 1},
    ],
)
def test_bad_metered_models_are_refused(model: object) -> None:
    with pytest.raises(MalformedMessage):
        BusinessModel.from_json(model, "model")


def test_metered_model_round_trips() -> None:
    m = BusinessModel("metered", unit="1 page", cap_units=50, session_id=secrets.token_hex(8), unit_no=7)
    assert BusinessModel.from_json(m.to_json(), "model") == m


def test_a_day_pass_opens_the_podcast_page_but_no_unit(broker: RunningBroker, vendor: RunningVendor) -> None:
    buyer = Listener(vendor, buy_known_chain(broker, n=100))
    resp = buyer.pay(vendor.quote("day-pass"))
    assert resp.status_code == 200, resp.text
    pass_token = resp.json()["receipt"]["body"]["access_token"]
    browser = requests.Session()
    browser.cookies.set("np_pass", pass_token)
    page = browser.get(f"{vendor.url}/items/{PODCAST}", timeout=30).text
    assert "data-netpay-meter" in page and 'class="story paid"' not in page  # the player: units are paid per use
    other = Listener(vendor, buy_known_chain(broker))
    other.open()
    assert other.audio(1, pass_token).status_code == 403


def test_a_delivered_unit_is_not_refunded_automatically_an_undelivered_one_is(broker: RunningBroker,
                                                                           vendor: RunningVendor) -> None:  # fmt: skip
    me = Listener(vendor, buy_known_chain(broker))
    me.open()
    receipts = {1: None}
    for n in (2, 3):
        receipts[n] = me.unit().json()["receipt"]
    assert me.audio(1).status_code == 200 and me.audio(2).status_code == 200  # unit 3 paid ahead, never played

    def refund(n: int) -> str:
        resp = requests.post(f"{vendor.url}/v1/refunds", json={"receipt": receipts[n], "reason": "stopped"}, timeout=30)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["status"])

    assert refund(2) == "pending"  # heard: the publisher decides
    assert refund(3) == "granted"  # paid ahead and never delivered: refunded at once

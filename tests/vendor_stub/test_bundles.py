"""Bundles: one quote, one payment, one receipt for several items (an issue of the newspaper); its token opens each
of them and nothing else."""

from __future__ import annotations

import pytest
import requests

from netpay.errors import MalformedMessage
from netpay.messages import BusinessModel
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, buy_known_chain, make_payment

BUNDLE = "morning-edition"
MEMBERS = ("harbour-bridge-reopens", "night-market-returns", "observatory-finds-comet")


def test_one_payment_one_receipt_opens_each_item_of_the_bundle(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    quote = vendor.quote(BUNDLE)
    assert quote["body"]["model"] == {"kind": "bundle", "items": list(MEMBERS)}
    assert quote["body"]["price"]["amount"] == 10
    resp = vendor.pay(make_payment(quote, [(chain.cert, chain.traversal, 10)]))
    assert resp.status_code == 200, resp.text
    receipt = resp.json()["receipt"]["body"]
    assert receipt["item_id"] == BUNDLE and receipt["amount"]["amount"] == 10
    token = receipt["access_token"]
    for item in MEMBERS:
        assert requests.get(f"{vendor.url}/v1/access/{item}", params={"token": token}, timeout=30).json()["valid"]
    assert not requests.get(f"{vendor.url}/v1/access/council-budget-explained", params={"token": token},
                            timeout=30).json()["valid"]  # fmt: skip
    # the browser: the bundle page sets its cookie, which opens each story's page and not another's
    s = requests.Session()
    page = s.get(f"{vendor.url}/items/{BUNDLE}", params={"access": token}, timeout=30).text
    assert 'class="story paid"' in page and all(f'href="/items/{m}"' in page for m in MEMBERS)
    for item in MEMBERS:
        assert 'class="story paid"' in s.get(f"{vendor.url}/items/{item}", timeout=30).text
    assert 'class="story paid"' not in s.get(f"{vendor.url}/items/council-budget-explained", timeout=30).text
    assert 'class="story paid"' not in requests.get(f"{vendor.url}/items/{MEMBERS[0]}", timeout=30).text


def test_a_refunded_bundle_opens_nothing(broker: RunningBroker, vendor: RunningVendor) -> None:
    chain = buy_known_chain(broker)
    quote = vendor.quote(BUNDLE)
    receipt = vendor.pay(make_payment(quote, [(chain.cert, chain.traversal, 10)])).json()["receipt"]
    answer = vendor.session.post(f"{vendor.url}/v1/refunds", json={"receipt": receipt, "reason": "x"}).json()
    assert answer["status"] == "granted" and answer["decision"]["body"]["amount"]["amount"] == 10
    token = receipt["body"]["access_token"]
    assert not requests.get(f"{vendor.url}/v1/access/{MEMBERS[0]}", params={"token": token}, timeout=30).json()["valid"]


@pytest.mark.parametrize(
    "model",
    [
        {"kind": "bundle"},
        {"kind": "bundle", "items": ["only-one"]},
        {"kind": "bundle", "items": ["a", "a"]},
        {"kind": "bundle", "items": ["a", ""]},
        {"kind": "bundle", "items": ["a", "b"], "duration_s": 600},
        {"kind": "one_off", "items": ["a", "b"]},
        {"kind": "bundle", "items": [f"i{n}" for n in range(21)]},
    ],
)
def test_bad_bundle_models_are_refused(model: object) -> None:
    with pytest.raises(MalformedMessage):
        BusinessModel.from_json(model, "model")


def test_older_models_encode_as_before() -> None:
    assert BusinessModel().to_json() == {"kind": "one_off"}
    assert BusinessModel("time_pass", 600).to_json() == {"kind": "time_pass", "duration_s": 600}

"""The account in use: buying from the balance first (the card pays only what it lacks) and cash-outs back to the
card through the test card processor, with the same idempotency rules as top-ups and purchases."""

from __future__ import annotations

import secrets
from typing import Any

import requests

from netpay.chain import new_chain_id
from netpay.traversal import create_chain
from tests.broker_stub.util import bearer, refused
from tests.support.broker import TEST_CARD, RunningBroker


def _cashout(b: RunningBroker, token: str, amount: int, card: dict[str, Any] | None = None, key: str | None = None):
    return b.session.post(
        f"{b.url}/v1/account/cashouts",
        json={"amount": {"amount": amount, "currency": "EUR"}, "card": card or TEST_CARD},
        headers=bearer(token, **{"Idempotency-Key": key or secrets.token_hex(8)}),
    )


def _buy(b: RunningBroker, token: str, length: int, card: bool) -> requests.Response:
    chain_id = new_chain_id()
    touchstone, _ = create_chain(chain_id, length)
    body: dict[str, Any] = {
        "chain_id": chain_id.hex(),
        "touchstone": touchstone.hex(),
        "length": length,
        "coin_value": {"amount": 1, "currency": "EUR"},
    }
    if card:
        body["card"] = TEST_CARD
    return b.session.post(
        f"{b.url}/v1/chains", json=body, headers=bearer(token, **{"Idempotency-Key": secrets.token_hex(8)})
    )


def _statement(b: RunningBroker, token: str) -> dict[str, Any]:
    answer: dict[str, Any] = b.session.get(f"{b.url}/v1/account/statement", headers=bearer(token)).json()
    return answer


def _balanced(b: RunningBroker) -> None:
    tb = b.session.get(f"{b.url}/v1/ledger/trial-balance", headers={"X-Operator-Token": b.operator_token}).json()
    assert tb["balanced"] and all(tb["checks"].values()), tb


def test_purchase_takes_the_account_first_and_the_card_only_for_the_rest(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=300)
    from_account = _buy(broker, token, 200, card=True)  # the account covers it: the card is not charged
    assert from_account.status_code == 201, from_account.text
    assert from_account.json()["paid"] == {
        "account": {"amount": 200, "currency": "EUR"},
        "card": {"amount": 0, "currency": "EUR"},
    }
    both = _buy(broker, token, 250, card=True)  # 100 left on the account, 150 by card
    assert both.json()["paid"] == {
        "account": {"amount": 100, "currency": "EUR"},
        "card": {"amount": 150, "currency": "EUR"},
    }
    assert both.json()["balance"] == {"amount": 0, "currency": "EUR"}
    by_card = _buy(broker, token, 40, card=True)
    assert by_card.json()["paid"]["card"] == {"amount": 40, "currency": "EUR"}
    entries = _statement(broker, token)["entries"]
    assert [(e["kind"], e["amount"]["amount"]) for e in entries] == [
        ("topup", 300),
        ("purchase", -200),
        ("topup", 150),
        ("purchase", -250),
        ("topup", 40),
        ("purchase", -40),
    ]
    _balanced(broker)


def test_cashout_pays_the_balance_back_to_the_card(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=2000)
    key = secrets.token_hex(8)
    resp = _cashout(broker, token, 1500, key=key)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["amount"] == {"amount": 1500, "currency": "EUR"} and body["card_last4"] == "4242"
    assert body["balance"] == {"amount": 500, "currency": "EUR"}
    again = _cashout(broker, token, 1500, key=key)  # a retry: the same answer, paid out once
    assert again.status_code == 201 and again.json() == body
    statement = _statement(broker, token)
    assert statement["balance"]["amount"] == 500
    assert [(e["kind"], e["amount"]["amount"]) for e in statement["entries"]] == [("topup", 2000), ("cashout", -1500)]
    assert statement["entries"][1]["ref"] == body["cashout_id"]
    rows = broker.broker.core.db.query("SELECT amount, card_last4 FROM cashouts")
    assert [tuple(r) for r in rows] == [(1500, "4242")]
    _balanced(broker)


def test_cashout_above_the_balance_is_refused_and_moves_nothing(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=500)
    err = refused(broker, lambda: _cashout(broker, token, 501), 402, "insufficient_funds")
    assert err["details"]["balance"] == {"amount": 500, "currency": "EUR"}
    assert err["details"]["requested"] == {"amount": 501, "currency": "EUR"}
    _balanced(broker)


def test_cashout_key_reused_with_another_body_is_refused(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=500)
    key = secrets.token_hex(8)
    assert _cashout(broker, token, 100, key=key).status_code == 201
    refused(broker, lambda: _cashout(broker, token, 200, key=key), 409, "idempotency_conflict")
    assert _statement(broker, token)["balance"]["amount"] == 400
    _balanced(broker)


def test_cashout_only_to_a_card_that_paid_in(broker: RunningBroker) -> None:
    """A stolen session token cannot send the balance to the thief's card."""
    token = broker.new_customer(topup=500)
    other = {**TEST_CARD, "number": "4000 0000 0000 9995"}  # a valid test card that never paid into this account
    err = refused(broker, lambda: _cashout(broker, token, 100, card=other), 403, "forbidden")
    assert err["details"]["field"] == "body.card"


def test_cashout_bad_input(broker: RunningBroker) -> None:
    token = broker.new_customer(topup=500)
    refused(broker, lambda: _cashout(broker, token, 0), 400, "malformed")
    refused(broker, lambda: _cashout(broker, token, 100, card={**TEST_CARD, "cvc": "x"}), 400, "malformed")
    refused(broker, lambda: _cashout(broker, token, 100, card={**TEST_CARD, "exp_year": 2001}), 402, "card_declined")
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/account/cashouts",
            json={"amount": {"amount": 100, "currency": "USD"}, "card": TEST_CARD},
            headers=bearer(token, **{"Idempotency-Key": "k1"}),
        ),
        400,
        "currency_mismatch",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/account/cashouts",
            json={"amount": {"amount": 100, "currency": "EUR"}, "card": TEST_CARD},
            headers=bearer(token),
        ),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/account/cashouts",
            json={"amount": {"amount": 100, "currency": "EUR"}, "card": TEST_CARD},
            headers={"Idempotency-Key": "k2"},
        ),
        401,
        "auth_required",
    )
    _balanced(broker)


def test_two_cash_outs_at_once_never_overdraw(broker: RunningBroker) -> None:
    """Two cash-outs of 60% each, sent together with different keys: exactly one is paid."""
    from concurrent.futures import ThreadPoolExecutor

    token = broker.new_customer(topup=1000)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _i: _cashout(broker, token, 600), range(2)))
    assert sorted(a.status_code for a in answers) == [201, 402]
    assert _statement(broker, token)["balance"]["amount"] == 400
    _balanced(broker)

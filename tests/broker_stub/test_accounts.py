"""Customer accounts: registration, login, sessions, balance, statement and top-ups through the test card processor."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import requests

from tests.broker_stub.util import bearer, refused
from tests.support.broker import TEST_CARD, RunningBroker

EUR = "EUR"


def _register(b: RunningBroker, username: str = "alice", password: str = "correct horse") -> requests.Response:
    return b.session.post(f"{b.url}/v1/accounts", json={"username": username, "password": password})


def _topup(
    b: RunningBroker, token: str, amount: int, card: dict | None = None, key: str | None = None, currency: str = EUR
) -> requests.Response:
    return b.session.post(
        f"{b.url}/v1/account/topups",
        json={"amount": {"amount": amount, "currency": currency}, "card": card or TEST_CARD},
        headers=bearer(token, **{"Idempotency-Key": key or secrets.token_hex(8)}),
    )


def test_register_login_account_and_statement(broker: RunningBroker) -> None:
    resp = _register(broker)
    assert resp.status_code == 201
    account_id = resp.json()["account_id"]
    assert resp.json()["username"] == "alice"
    row = broker.broker.core.db.one("SELECT password_hash FROM accounts WHERE account_id = ?", (account_id,))
    assert row is not None and row[0].startswith("$argon2id$") and "correct horse" not in row[0]
    login = broker.session.post(f"{broker.url}/v1/sessions", json={"username": "alice", "password": "correct horse"})
    assert login.status_code == 200
    token = login.json()["token"]
    assert login.json()["account_id"] == account_id
    me = broker.session.get(f"{broker.url}/v1/account", headers=bearer(token)).json()
    assert me == {"account_id": account_id, "username": "alice", "balance": {"amount": 0, "currency": EUR}}
    assert _topup(broker, token, 1234).status_code == 201
    statement = broker.session.get(f"{broker.url}/v1/account/statement", headers=bearer(token)).json()
    assert [e["kind"] for e in statement["entries"]] == ["topup"]
    assert statement["entries"][0]["amount"] == {"amount": 1234, "currency": EUR}
    assert statement["balance"] == {"amount": 1234, "currency": EUR}


def test_default_password_hashing_is_strong(tmp_path: Path) -> None:
    from broker_stub.settings import BrokerSettings

    s = BrokerSettings(data_dir=tmp_path)
    assert s.argon2_memory_kib >= 65536 and s.argon2_time_cost >= 3


def test_registration_refusals(broker: RunningBroker) -> None:
    assert _register(broker).status_code == 201
    refused(broker, lambda: _register(broker), 409, "conflict")
    refused(broker, lambda: _register(broker, "bob", "short"), 400, "malformed")
    refused(broker, lambda: _register(broker, "b o b", "long enough pw"), 400, "malformed")
    refused(
        broker, lambda: broker.session.post(f"{broker.url}/v1/accounts", json={"username": "carol"}), 400, "malformed"
    )
    refused(
        broker,
        lambda: broker.session.post(f"{broker.url}/v1/accounts", json={"username": 5, "password": 7}),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/accounts", json={"username": "carol", "password": "long enough pw", "admin": True}
        ),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/accounts",
            data="username=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
        "unsupported_media_type",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/accounts", data="{not json", headers={"Content-Type": "application/json"}
        ),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/accounts", data="x" * 300_000, headers={"Content-Type": "application/json"}
        ),
        413,
        "payload_too_large",
    )


def test_login_refusals_and_session_checks(broker: RunningBroker) -> None:
    _register(broker)
    url = f"{broker.url}/v1/sessions"
    refused(
        broker,
        lambda: broker.session.post(url, json={"username": "alice", "password": "wrong pw!"}),
        401,
        "invalid_credentials",
    )
    refused(
        broker,
        lambda: broker.session.post(url, json={"username": "nobody", "password": "wrong pw!"}),
        401,
        "invalid_credentials",
    )
    refused(broker, lambda: broker.session.get(f"{broker.url}/v1/account"), 401, "auth_required")
    refused(
        broker, lambda: broker.session.get(f"{broker.url}/v1/account", headers=bearer("forged")), 401, "auth_required"
    )
    refused(
        broker,
        lambda: broker.session.get(f"{broker.url}/v1/account/statement", headers={"Authorization": "Basic abc"}),
        401,
        "auth_required",
    )


def test_sessions_expire(broker_factory) -> None:  # type: ignore[no-untyped-def]
    clock = [1_800_000_000]
    b = broker_factory(session_ttl_s=60, clock=lambda: clock[0])
    token = b.new_customer()
    assert b.session.get(f"{b.url}/v1/account", headers=bearer(token)).status_code == 200
    clock[0] += 61
    refused(b, lambda: b.session.get(f"{b.url}/v1/account", headers=bearer(token)), 401, "session_expired")


@pytest.mark.parametrize(
    ("number", "status", "code", "reason"),
    [
        ("4000 0000 0000 0002", 402, "card_declined", "generic_decline"),
        ("4000 0000 0000 9995", 402, "insufficient_funds", "card_insufficient_funds"),
        ("4111 1111 1111 1111", 402, "card_declined", "unknown_test_card"),
        ("4242 4242 4242 4241", 400, "malformed", None),
    ],
)
def test_topup_test_cards(broker: RunningBroker, number: str, status: int, code: str, reason: str | None) -> None:
    token = broker.new_customer()
    err = refused(broker, lambda: _topup(broker, token, 500, {**TEST_CARD, "number": number}), status, code)
    if reason:
        assert err["details"]["reason"] == reason


def test_topup_expired_card_and_bad_amounts(broker: RunningBroker) -> None:
    token = broker.new_customer()
    err = refused(broker, lambda: _topup(broker, token, 500, {**TEST_CARD, "exp_year": 2001}), 402, "card_declined")
    assert err["details"]["reason"] == "expired_card"
    refused(broker, lambda: _topup(broker, token, 0), 400, "malformed")
    refused(broker, lambda: _topup(broker, token, -5), 400, "malformed")
    refused(broker, lambda: _topup(broker, token, 10**9), 400, "malformed")
    refused(broker, lambda: _topup(broker, token, 500, currency="USD"), 400, "currency_mismatch")
    refused(broker, lambda: _topup(broker, token, 500, currency="XXX"), 400, "malformed")
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/account/topups",
            data='{"amount": {"amount": 1.5, "currency": "EUR"}, "card": {}}',
            headers=bearer(token, **{"Idempotency-Key": "k", "Content-Type": "application/json"}),
        ),
        400,
        "malformed",
    )
    refused(
        broker,
        lambda: broker.session.post(
            f"{broker.url}/v1/account/topups",
            json={"amount": {"amount": 5, "currency": "EUR"}, "card": TEST_CARD},
            headers=bearer(token),
        ),
        400,
        "malformed",
    )  # no Idempotency-Key


def test_topup_is_idempotent(broker: RunningBroker) -> None:
    token = broker.new_customer()
    first = _topup(broker, token, 700, key="k1")
    again = _topup(broker, token, 700, key="k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert broker.session.get(f"{broker.url}/v1/account", headers=bearer(token)).json()["balance"]["amount"] == 700
    refused(broker, lambda: _topup(broker, token, 800, key="k1"), 409, "idempotency_conflict")

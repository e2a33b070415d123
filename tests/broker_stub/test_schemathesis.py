"""Property-based API test: schemathesis generates requests from the broker's OpenAPI document and checks that no
answer is a 5xx and every answer conforms to the documented status codes, content types and schemas.

Generated cases that carry an ``Authorization`` or ``X-Operator-Token`` header get a valid session token / the
operator token half of the time, so the authenticated code paths see generated bodies too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from broker_stub.app import create_app
from tests.support.broker import TEST_CARD, broker_settings

schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1


@pytest.fixture(scope="module")
def broker_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = create_app(broker_settings(Path(tmp_path_factory.mktemp("schemathesis"))))
    broker = app.state.broker
    account = broker.accounts.register({"username": "fuzz", "password": "fuzz password"})
    broker.accounts.topup(
        account["account_id"], {"amount": {"amount": 100_000, "currency": "EUR"}, "card": TEST_CARD}, "fuzz"
    )
    app.state.fuzz_token = broker.accounts.login({"username": "fuzz", "password": "fuzz password"})["token"]
    yield app
    broker.close()


@pytest.fixture
def api_schema(broker_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.from_asgi("/openapi.json", broker_app)


schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_and_matches_its_schema(case: schemathesis.Case, broker_app: FastAPI) -> None:
    headers = dict(case.headers or {})
    flip = len(str(case.body)) % 2 == 0
    if "authorization" in {h.lower() for h in headers} and flip:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {broker_app.state.fuzz_token}"
    if "x-operator-token" in {h.lower() for h in headers} and flip:
        headers = {k: v for k, v in headers.items() if k.lower() != "x-operator-token"}
        headers["X-Operator-Token"] = broker_app.state.broker.core.operator_token
    case.headers = headers
    case.call_and_validate()

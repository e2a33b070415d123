"""Property-based API test: schemathesis generates requests from the broker's OpenAPI document and checks that no
answer is a 5xx and every answer conforms to the documented status codes, content types and schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from broker_stub.app import create_app
from tests.broker_stub.jsonschema_compat import install
from tests.support.broker import broker_settings

install()


@pytest.fixture(scope="module")
def broker_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(broker_settings(Path(tmp_path_factory.mktemp("schemathesis"))))


@pytest.fixture
def api_schema(broker_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.from_asgi("/openapi.json", broker_app)


schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI writes OpenAPI 3.1
schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_never_fails_and_matches_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate()

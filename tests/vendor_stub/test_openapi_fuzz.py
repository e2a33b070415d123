"""Done-when: schemathesis fuzzes the vendor's OpenAPI (bounded) against a live vendor and broker: no 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.support.broker import start_broker
from tests.support.vendor import RunningVendor, start_vendor


@pytest.fixture(scope="module")
def live_vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVendor]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    broker = start_broker(root / "broker")
    vendor = start_vendor(broker, root / "vendor")
    yield vendor
    vendor.stop()
    broker.stop()


def test_openapi_declares_request_bodies(live_vendor: RunningVendor) -> None:
    spec = requests.get(f"{live_vendor.url}/openapi.json", timeout=10).json()
    for path in ("/v1/quotes", "/v1/payments", "/v1/custody/release", "/v1/custody/close", "/v1/echo"):
        body = spec["paths"][path]["post"]["requestBody"]
        assert "application/json" in body["content"]
    assert requests.get(f"{live_vendor.url}/docs", timeout=10).status_code == 200


def test_fuzz_every_operation_no_server_error(live_vendor: RunningVendor) -> None:
    schema = schemathesis.from_uri(f"{live_vendor.url}/openapi.json", force_schema_version="30")
    failures: list[str] = []
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=15,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_vendor.url, timeout=10)
            calls[case.operation.verbose_name] = calls.get(case.operation.verbose_name, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
    assert failures == []
    assert len(calls) >= 9 and sum(calls.values()) >= 60, calls

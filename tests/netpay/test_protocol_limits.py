"""docs/protocol.md and the code agree on every limit and on the statuses the document promises.

The §1 limits table names, for each limit, the constant that holds it in the code; the §4 table of redemption
rejection reasons names the error a wholly refused batch answers with. Both are read here and compared with the
code, so changing one without the other fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from broker_stub.redemption import REASON_ERRORS
from netpay.errors import NetPayError

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def _table(after: str, header: str) -> list[list[str]]:
    """The rows of the first markdown table under the line starting with ``after`` whose header is ``header``."""
    start = DOC.index(after)
    at = DOC.index(header, start)
    rows = []
    for line in DOC[at:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _resolve(path: str) -> Any:
    """The value of a dotted name: a module constant, or a dataclass field's default."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if (
                dataclasses.is_dataclass(obj)
                and isinstance(obj, type)
                and name in {f.name for f in dataclasses.fields(obj)}
            ):
                obj = next(f.default for f in dataclasses.fields(obj) if f.name == name)
            else:
                obj = getattr(obj, name)
        return obj
    raise AssertionError(f"cannot import {path}")


def _status(cell: str) -> tuple[int, str] | None:
    if cell == "—":
        return None
    m = re.fullmatch(r"(\d{3}) `(\w+)`", cell)
    assert m, f"refusal cell {cell!r} must read like 400 `malformed`"
    return int(m[1]), m[2]


LIMITS = _table("### Limits", "| limit | value | constant | refused with |")


def test_the_limits_table_is_there() -> None:
    assert len(LIMITS) >= 25


@pytest.mark.parametrize("row", LIMITS, ids=[r[0][:50] for r in LIMITS])
def test_each_documented_limit_is_the_codes(row: list[str]) -> None:
    what, value, constant, refusal = row
    assert constant.startswith("`") and constant.endswith("`"), row
    actual = _resolve(constant.strip("`"))
    assert isinstance(actual, (int, float)) and not isinstance(actual, bool), (constant, actual)
    number = int(value) if value.lstrip("-").isdigit() else float(value)
    assert actual == number, f"{what}: the document says {value}, {constant} is {actual}"
    status = _status(refusal)
    if status is not None:
        code, http = status[1], status[0]
        assert code in NetPayError._registry, f"{what}: unknown error code {code}"
        assert NetPayError._registry[code].http_status == http, f"{what}: {code} answers {http}?"


REASONS = _table(
    "#### POST /v1/redemptions", "| reason | the claim is rejected when | a batch refused for it answers |"
)


def test_every_redemption_reason_has_its_batch_status_documented() -> None:
    documented = {row[0].strip("`") for row in REASONS}
    # custody_overlap and null (the whole claim inside the windows) are reasons of accepted claims
    assert set(REASON_ERRORS) | {"custody_overlap", "null"} == documented


@pytest.mark.parametrize("row", REASONS, ids=[r[0] for r in REASONS])
def test_a_wholly_refused_batch_answers_the_documented_status(row: list[str]) -> None:
    reason = row[0].strip("`")
    if reason in ("custody_overlap", "null", "outside_custody"):
        # accepted, or (outside_custody) recorded with its evidence: such a batch is answered 200 with the result
        assert row[2].startswith("never refuses"), row
        return
    status = _status(row[2])
    assert status is not None
    error = REASON_ERRORS[reason]
    assert (error.http_status, error.code) == status, f"{reason}: code says {error.http_status} {error.code}"

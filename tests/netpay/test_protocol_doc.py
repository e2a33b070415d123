"""docs/protocol.md stays true: every error code and every signed object type of netpay is documented there."""

from __future__ import annotations

from pathlib import Path

from netpay import errors, messages
from netpay.signed import Body

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_every_error_code_is_in_the_table() -> None:
    codes = {c.code for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.NetPayError)}
    codes.discard("internal_error")
    missing = sorted(code for code in codes if f"| `{code}` |" not in DOC)
    assert missing == []


def test_every_object_type_is_described() -> None:
    types = {c.TYPE for c in vars(messages).values() if isinstance(c, type) and issubclass(c, Body) and c is not Body}
    missing = sorted(t for t in types if f"| `{t}` (" not in DOC)
    assert missing == []

"""docs/protocol.md §3.2: the examples are what scripts/protocol_examples.py makes, and each signed one is signed
by the party it names (checked with keys derived here from the seeds the document states, not the script's)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from netpay import messages
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import Payment, VendorCertificate
from netpay.signed import Body, Signed
from scripts import protocol_examples
from vendor_stub.access import AccessTokens

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
SEEDS = {"demo-broker": 0, "daily-planet": 1, "paper-lantern-cards": 2}  # seed = bytes(range(n, n + 32))
KEYS = {party: SigningKey.from_seed(bytes(range(n, n + 32))).public for party, n in SEEDS.items()}
KINDS: dict[str, type[Body]] = {
    c.TYPE: c for c in vars(messages).values() if isinstance(c, type) and issubclass(c, Body) and c is not Body
}


def _signer_party(type_: str, body: dict[str, Any]) -> str:
    """The party an object names as its signer (§3.1's "(signer)" column)."""
    if type_ in ("coin_certificate", "vendor_certificate", "close_request", "revocation_list", "hosted_grant"):
        return str(body["broker_id"])
    if type_ in ("redemption_result", "custody_grant"):
        return "demo-broker"  # the broker that answers the vendor's batch or claim
    if type_ == "release_request":
        return str(body["requester"]["body"]["vendor_id"])
    if type_ == "custody_release":
        return str(body["released_by"])
    return str(body["vendor_id"])


def _doc_examples() -> dict[str, Any]:
    section = protocol_examples.current_section(DOC)
    found = re.findall(r"^#### (\w+)\n\n```json\n(.*?)\n```$", section, flags=re.S | re.M)
    return {name: json.loads(text) for name, text in found}


def _check_signed(wire: dict[str, Any], checked: list[str]) -> None:
    """Verify ``wire`` and every signed object inside it under the key of the party it names."""
    kind = KINDS[wire["type"]]
    signed = Signed.from_wire(wire, kind)  # the signature verifies under the embedded key ...
    party = _signer_party(wire["type"], wire["body"])
    assert signed.signer == KEYS[party], f"{wire['type']} names {party} but is signed by another key"  # ... its own
    checked.append(wire["type"])
    if isinstance(signed.body, VendorCertificate):
        assert signed.body.public_key == KEYS[signed.body.vendor_id]
    if wire["type"] == "release_request":
        _check_signed(wire["body"]["requester"], checked)
        assert wire["body"]["requester"]["body"]["public_key"] == signed.signer.hex
    if wire["type"] == "redemption_batch":
        for claim in wire["body"]["claims"]:
            if claim.get("release") is not None:
                _check_signed(claim["release"], checked)


def test_the_document_holds_the_scripts_output() -> None:
    assert protocol_examples.current_section(DOC) == protocol_examples.section(), (
        "docs/protocol.md §3.2 is out of date: run .venv/bin/python scripts/protocol_examples.py --write"
    )


def test_the_document_states_the_seeds_the_test_uses() -> None:
    section = protocol_examples.current_section(DOC)
    for party, n in SEEDS.items():
        assert f"{party} `{n:02x} {n + 1:02x} … {n + 31:02x}`" in section


def test_every_object_type_has_an_example() -> None:
    assert set(_doc_examples()) == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_signed_example_verifies_under_the_key_of_the_party_it_names(name: str) -> None:
    wire = _doc_examples()[name]
    checked: list[str] = []
    if name == "payment":
        payment = Payment.from_wire(wire)
        _check_signed(wire["quote"], checked)
        for segment in wire["segments"]:
            _check_signed(segment["certificate"], checked)
        assert payment.canonical() == json.dumps(wire, sort_keys=True, separators=(",", ":")).encode()
    else:
        _check_signed(wire, checked)
    assert checked


def test_the_example_access_token_follows_the_documented_format() -> None:
    """``v1.<base64url JSON {"i","p","r","u"}>.<base64url MAC>``, and the shop that issued it accepts it."""
    token = _doc_examples()["receipt"]["body"]["access_token"]
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)
    grant = AccessTokens(bytes(range(3, 35))).check(token, "harbour-bridge", now=1767225602)
    assert grant is not None and (grant.item_id, grant.receipt_id, grant.is_pass) == (
        "harbour-bridge",
        "rcpt-19ab",
        False,
    )
    assert VerifyKey.from_hex(_doc_examples()["receipt"]["signer"]) == KEYS["daily-planet"]

"""Signed objects: round trips for every type, and any altered byte or confused type fails with the right error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netpay.chain import new_chain_id, new_seed
from netpay.encoding import canonical_json
from netpay.errors import BadSignature, MalformedMessage, NetPayError, UntrustedSigner, WrongMessageType
from netpay.keys import SigningKey
from netpay.messages import (
    ClaimResult,
    CloseRequest,
    CoinCertificate,
    CustodyClaim,
    CustodyRelease,
    Payment,
    PaymentRefusal,
    Quote,
    Receipt,
    RedemptionBatch,
    RedemptionClaim,
    RedemptionResult,
    ReleaseRequest,
    RevocationList,
    Segment,
    SegmentRef,
    SpendEntry,
    SpendReport,
)
from netpay.money import Money
from netpay.signed import Body, Signed
from tests.support import factories

BROKER = SigningKey.from_seed(bytes(range(32)))
VENDOR = SigningKey.from_seed(bytes(range(1, 33)))


def all_bodies() -> list[Body]:
    cert, walker = factories.coin_certificate(BROKER, 20)
    vcert = factories.vendor_certificate(BROKER, VENDOR)
    quote = factories.quote(VENDOR)
    index, payword = walker.advance(5)
    chain = cert.body.chain_id
    release = Signed.sign(CustodyRelease(chain, "a", "b", 5, payword, 10), VENDOR)
    return [
        cert.body,
        vcert.body,
        quote.body,
        Receipt("r1", "p1", "q-1", bytes(32), "v", "i", Money(5, "EUR"), (SegmentRef(chain, 0, 5),), "tok", None, 9),
        CustodyClaim("v", chain, "n1", 5),
        ReleaseRequest(chain, vcert, "n2", 6),
        CloseRequest("b", chain, "n3", 7),
        release.body,
        SpendReport("s1", "v", (SpendEntry(chain, 0, 5, payword),), 8),
        RedemptionBatch("b1", "v", (RedemptionClaim(chain, 0, 5, payword, release),), 9),
        RedemptionResult("b1", "v", (ClaimResult(chain, 0, 5, "accepted", Money(5, "EUR")),), 10),
        RevocationList("b", 3, 11, (new_chain_id(),), ("evil",)),
        PaymentRefusal("p1", "q-1", "v", "index_conflict", ((chain, 5), (new_chain_id(), None)), 12),
        Payment("p1", quote, (Segment(cert, 0, index, payword),)),
    ]


@pytest.mark.parametrize("body", all_bodies(), ids=lambda b: b.TYPE)
def test_every_signed_type_round_trips(body: Body) -> None:
    signed = Signed.sign(body, BROKER)
    wire = json.loads(json.dumps(signed.to_wire()))
    back = Signed.from_wire(wire, type(body))
    assert back.body == body
    assert back.digest == signed.digest
    assert back.require_signer(BROKER.public) == body


@pytest.mark.parametrize("body", all_bodies(), ids=lambda b: b.TYPE)
def test_a_signature_of_one_type_never_passes_for_another(body: Body) -> None:
    wire = Signed.sign(body, BROKER).to_wire()
    for other in {type(b) for b in all_bodies()} - {type(body)}:
        wire2 = dict(wire, type=other.TYPE)
        with pytest.raises((WrongMessageType, MalformedMessage, BadSignature)):
            Signed.from_wire(wire2, other)
        with pytest.raises(WrongMessageType):
            Signed.from_wire(wire, other)


def test_version_is_checked() -> None:
    wire = Signed.sign(all_bodies()[0], BROKER).to_wire()
    with pytest.raises(WrongMessageType):
        Signed.from_wire(dict(wire, version=2), CoinCertificate)


def test_untrusted_signer_is_refused() -> None:
    signed = Signed.sign(all_bodies()[2], SigningKey.generate())
    with pytest.raises(UntrustedSigner):
        Signed.from_wire(signed.to_wire(), Quote).require_signer(VENDOR.public)


def _flip(value: Any, path: list[Any], data: st.DataObject) -> Any:
    """Flip one character of one leaf string or change one integer somewhere inside ``value``."""
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: _flip(value[key], [*path, key], data)}
    if isinstance(value, list) and value:
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], _flip(value[i], [*path, i], data), *value[i + 1 :]]
    if isinstance(value, str) and value:
        i = data.draw(st.integers(0, len(value) - 1))
        ch = value[i]
        new = "0" if ch != "0" else "1"
        return value[:i] + new + value[i + 1 :]
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, int):
        return value + 1
    return value


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_altered_field_fails_verification(data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(all_bodies()))
    wire = Signed.sign(body, BROKER).to_wire()
    altered = _flip(wire, [], data)
    if altered == wire:
        return
    try:
        parsed = Signed.from_wire(altered, type(body))
    except NetPayError as exc:
        assert exc.code in {"bad_signature", "malformed", "wrong_type", "currency_mismatch"}
    else:
        # Only an altered signer can parse, and then it is not the trusted key.
        with pytest.raises(UntrustedSigner):
            parsed.require_signer(BROKER.public)


@settings(max_examples=100, deadline=None)
@given(byte=st.integers(0, 63), bit=st.integers(0, 7))
def test_a_flipped_signature_bit_fails(byte: int, bit: int) -> None:
    signed = Signed.sign(all_bodies()[0], BROKER)
    sig = bytearray(signed.signature)
    sig[byte] ^= 1 << bit
    with pytest.raises(BadSignature):
        Signed.from_wire(dict(signed.to_wire(), signature=bytes(sig).hex()), CoinCertificate)


def test_unknown_fields_are_refused() -> None:
    wire = Signed.sign(all_bodies()[0], BROKER).to_wire()
    with pytest.raises(MalformedMessage, match="not a known field"):
        Signed.from_wire({**wire, "body": {**wire["body"], "extra": 1}}, CoinCertificate)
    with pytest.raises(MalformedMessage):
        Signed.from_wire({**wire, "extra": 1}, CoinCertificate)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("length", 0),
        ("length", 2**20 + 1),
        ("length", "10"),
        ("touchstone", "ab"),
        ("touchstone", "ZZ" * 32),
        ("chain_id", None),
        ("coin_value", {"amount": 1.5, "currency": "EUR"}),
        ("coin_value", {"amount": 0, "currency": "EUR"}),
        ("coin_value", {"amount": 1, "currency": "XXX"}),
        ("expires_at", -1),
        ("broker_id", ""),
    ],
)
def test_out_of_range_fields_are_malformed(field: str, value: Any) -> None:
    wire = Signed.sign(all_bodies()[0], BROKER).to_wire()
    wire["body"][field] = value
    with pytest.raises(MalformedMessage):
        Signed.from_wire(wire, CoinCertificate, verify=False)


def test_payment_checks_segments_against_their_certificates() -> None:
    payment = all_bodies()[-1]
    assert isinstance(payment, Payment)
    wire = payment.to_wire()
    assert Payment.from_wire(wire).amount == Money(5, "EUR")
    bad = json.loads(json.dumps(wire))
    bad["segments"][0]["chain_id"] = new_chain_id().hex()
    with pytest.raises(MalformedMessage):
        Payment.from_wire(bad)
    bad = json.loads(json.dumps(wire))
    bad["segments"][0]["to_index"] = 21  # beyond the chain length
    with pytest.raises(MalformedMessage):
        Payment.from_wire(bad)
    bad = json.loads(json.dumps(wire))
    bad["segments"].append(bad["segments"][0])
    with pytest.raises(MalformedMessage, match="same chain"):
        Payment.from_wire(bad)
    with pytest.raises(WrongMessageType):
        Payment.from_wire({**wire, "type": "quote"})
    bad = json.loads(json.dumps(wire))
    bad["segments"][0]["payword"] = new_seed().hex()
    assert Payment.from_wire(bad).segments[0].payword != payment.segments[0].payword  # paywords are checked by vendors


@pytest.mark.parametrize("payment_id", ["p1", 'odd "id" é\\'])
def test_a_payment_assembled_from_cached_encodings_is_its_canonical_json(payment_id: str) -> None:
    cert_a, walker_a = factories.coin_certificate(BROKER, 20)
    cert_b, walker_b = factories.coin_certificate(BROKER, 30)
    quote = factories.quote(VENDOR)
    end_a, word_a = walker_a.advance(5)
    walker_b.advance(2)
    end_b, word_b = walker_b.advance(9)
    payment = Payment(payment_id, quote, (Segment(cert_a, 0, end_a, word_a), Segment(cert_b, 2, end_b, word_b)))
    assert payment.canonical() == canonical_json(payment.to_wire())
    assert payment.canonical() == canonical_json(payment.to_wire())  # again, from the cached encodings

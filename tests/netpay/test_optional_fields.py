"""An optional field left out, or sent as null, never breaks a signature: it is checked over the body as sent.

A second team's implementation signs the body it sends. Ours must verify exactly that, keep it (digest, wire form)
and pass it on unchanged when it forwards the object, never re-encode it from the parsed values.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from netpay.encoding import canonical_json
from netpay.errors import BadSignature
from netpay.keys import SigningKey
from netpay.messages import (
    CustodyRelease,
    Payment,
    PaymentRefusal,
    Quote,
    Receipt,
    RedemptionBatch,
    RedemptionClaim,
    Segment,
    SegmentRef,
    VendorRequest,
)
from netpay.money import Money
from netpay.signed import SIGNING_DOMAIN, Body, Signed
from tests.support import factories

BROKER = SigningKey.from_seed(bytes(range(32)))
VENDOR = SigningKey.from_seed(bytes(range(1, 33)))


def sign_as_sent(wire_body: dict[str, Any], kind: type[Body], key: SigningKey) -> dict[str, Any]:
    """What a second team does, written from docs/protocol.md §3 alone: sign the canonical envelope of the body it
    sends, with the fields it chose to send."""
    envelope = {"type": kind.TYPE, "version": kind.VERSION, "signer": key.public.hex, "body": wire_body}
    signature = key.sign(SIGNING_DOMAIN + canonical_json(envelope))
    return {**envelope, "signature": signature.hex()}


def _release() -> Signed[CustodyRelease]:
    return Signed.sign(CustodyRelease(bytes(16), "a", "b", 5, bytes(32), 10), VENDOR)


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        node: Any = body
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]

    return edit


def _null(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def edit(body: dict[str, Any]) -> None:
        node: Any = body
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = None

    return edit


def _cases() -> list[tuple[str, Body, Callable[[dict[str, Any]], None], Callable[[Any], Any]]]:
    quote = factories.quote(VENDOR)
    refs = (SegmentRef(bytes(16), 0, 5),)
    receipt = Receipt("r1", "p1", "q-1", bytes(32), "v", "i", Money(5, "EUR"), refs, "tok", None, 9)
    batch = RedemptionBatch("b1", "v", (RedemptionClaim(bytes(16), 0, 5, bytes(32)),), 9)
    refusal = PaymentRefusal("p1", "q-1", "v", "quote_paid", ((bytes(16), None),), 3)
    return [
        ("vendor_request.amount left out", VendorRequest("v", "payout", "n1", 5), _drop(("amount",)),
         lambda b: b.amount),
        ("redemption claim.release left out", batch,
         _drop(("claims", 0, "release")), lambda b: b.claims[0].release),
        ("receipt.valid_until left out", receipt, _drop(("valid_until",)), lambda b: b.valid_until),
        ("payment_refusal held index left out", refusal,
         _drop(("held", 0, "index")), lambda b: b.held[0][1]),
        ("quote model.duration_s sent as null", quote.body, _null(("model", "duration_s")),
         lambda b: b.model.duration_s),
    ]  # fmt: skip


CASES = _cases()


@pytest.mark.parametrize(("name", "body", "edit", "field"), CASES, ids=[c[0] for c in CASES])
def test_a_signed_object_verifies_over_the_body_as_sent(
    name: str, body: Body, edit: Callable[[dict[str, Any]], None], field: Callable[[Any], Any]
) -> None:
    sent_body = body.to_body()
    edit(sent_body)
    wire = sign_as_sent(sent_body, type(body), VENDOR)
    received = json.loads(json.dumps(wire))

    parsed = Signed.from_wire(received, type(body))  # verifies

    assert field(parsed.body) is None
    signed_bytes = SIGNING_DOMAIN + canonical_json({k: wire[k] for k in ("type", "version", "signer", "body")})
    assert parsed.signed_bytes() == signed_bytes
    assert parsed.digest == hashlib.sha256(signed_bytes).hexdigest()
    assert parsed.to_wire() == wire  # handed on exactly as received
    assert parsed.wire_json() == canonical_json(wire)
    again = Signed.from_wire(json.loads(parsed.wire_json()), type(body))  # and the next receiver agrees
    assert again.digest == parsed.digest


@pytest.mark.parametrize(("name", "body", "edit", "field"), CASES, ids=[c[0] for c in CASES])
def test_adding_or_removing_an_optional_field_after_signing_breaks_the_signature(
    name: str, body: Body, edit: Callable[[dict[str, Any]], None], field: Callable[[Any], Any]
) -> None:
    """The other direction: bytes the signer did not sign never pass, whichever form it chose."""
    sent_body = body.to_body()
    edited = copy.deepcopy(sent_body)
    edit(edited)
    signed_full = sign_as_sent(sent_body, type(body), VENDOR)
    signed_short = sign_as_sent(edited, type(body), VENDOR)
    with pytest.raises(BadSignature):
        Signed.from_wire({**signed_full, "body": edited}, type(body))
    with pytest.raises(BadSignature):
        Signed.from_wire({**signed_short, "body": sent_body}, type(body))


def test_a_forwarded_object_keeps_the_form_it_was_signed_in() -> None:
    """A quote whose model carries ``"duration_s": null`` travels inside a payment, and a release inside a redemption
    claim, exactly as their signers made them."""
    quote_body = factories.quote(VENDOR).body.to_body()
    quote_body["model"]["duration_s"] = None
    quote = Signed.from_wire(sign_as_sent(quote_body, Quote, VENDOR), Quote)
    cert, walker = factories.coin_certificate(BROKER, 10)
    _, payword = walker.advance(5)
    payment = Payment("p1", quote, (Segment(cert, 0, 5, payword),))
    wire = json.loads(payment.canonical())
    assert wire["quote"]["body"]["model"] == {"kind": "one_off", "duration_s": None}
    assert payment.to_wire()["quote"] == wire["quote"]
    assert Payment.from_wire(wire).quote.digest == quote.digest

    release_body = _release().body.to_body()
    release = Signed.from_wire(sign_as_sent(release_body, CustodyRelease, VENDOR), CustodyRelease)
    claim = {"chain_id": "00" * 16, "from_index": 0, "to_index": 5, "payword": "00" * 32, "release": release.to_wire()}
    batch = Signed.from_wire(
        sign_as_sent({"batch_id": "b1", "vendor_id": "v", "claims": [claim], "created_at": 9}, RedemptionBatch, VENDOR),
        RedemptionBatch,
    )
    assert batch.body.claims[0].release == release


def test_our_own_objects_send_what_they_sign() -> None:
    """``Signed.sign`` signs exactly the body ``to_wire`` sends (absent optional fields as null, a one-off model
    without duration_s), and a receiver of that wire gets the same digest."""
    bodies: list[Body] = [VendorRequest("v", "payout", "n1", 5), factories.quote(VENDOR).body]
    for body in bodies:
        signed = Signed.sign(body, VENDOR)
        wire = signed.to_wire()
        assert signed.signed_bytes() == SIGNING_DOMAIN + canonical_json(
            {k: wire[k] for k in ("type", "version", "signer", "body")}
        )
        assert Signed.from_wire(json.loads(signed.wire_json()), type(body)).digest == signed.digest

"""The hot-path wire helpers are exactly equivalent to the netpay ones."""

from __future__ import annotations

import copy
import json
import secrets

import pytest

from netpay.encoding import parse_json
from netpay.errors import MalformedMessage
from netpay.keys import SigningKey
from netpay.messages import BusinessModel, CoinCertificate, Payment, Quote, Receipt, Segment, SegmentRef
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import create_chain
from vendor_stub.wire import PaymentParser, sign_text, sign_wire


def _quote(key: SigningKey) -> Signed[Quote]:
    body = Quote(secrets.token_hex(8), "shop", "item", "Title é", Money(3, "EUR"), BusinessModel(), "http://s/v1/payments",
                 "http://s/items/item", 100, 400)  # fmt: skip
    return Signed.sign(body, key)


def test_sign_wire_signs_the_same_bytes_as_signed_sign() -> None:
    key = SigningKey.generate()
    receipt = Receipt("r", "p", "q", b"\x01" * 32, "shop", "item", Money(3, "EUR"), (SegmentRef(b"\x02" * 16, 0, 3),),
                      "v1.token", None, 100)  # fmt: skip
    wire = sign_wire(receipt, key)
    assert wire == Signed.sign(receipt, key).to_wire()
    assert Signed.from_wire(wire, Receipt).require_signer(key.public) == receipt


def test_parser_fast_path_gives_the_same_payment_and_falls_back_on_anything_else() -> None:
    vendor, broker = SigningKey.generate(), SigningKey.generate()
    chain_id = secrets.token_bytes(16)
    touchstone, traversal = create_chain(chain_id, 20)
    cert = Signed.sign(CoinCertificate(chain_id, "b", touchstone, 20, Money(1, "EUR"), 0, 10**9), broker)
    parser = PaymentParser()

    def payment() -> dict:  # type: ignore[type-arg]
        quote = _quote(vendor)
        parser.remember_quote(quote.to_wire(), quote)
        start = traversal.position
        end, word = traversal.advance(3)
        return Payment(secrets.token_hex(8), quote, (Segment(cert, start, end, word),)).to_wire()

    first = payment()
    assert parser.parse(first) == Payment.from_wire(first, verify=False)  # slow path, fills the cache
    second = payment()
    assert parser._fast(second) is not None  # the certificate and quote are cached now
    assert parser.parse(second) == Payment.from_wire(second, verify=False)

    for mutate in (
        lambda w: w["segments"][0].update(to_index=w["segments"][0]["from_index"]),
        lambda w: w["segments"][0].update(payword="AB" * 32),
        lambda w: w["segments"][0].update(chain_id="00" * 16),
        lambda w: w["segments"][0].update(extra=1),
        lambda w: w["segments"][0]["certificate"]["body"].update(length=2),
        lambda w: w.update(payment_id=""),
        lambda w: w.update(segments=[]),
        lambda w: w["quote"]["body"].update(title="changed"),
    ):
        bad = copy.deepcopy(second)
        mutate(bad)
        try:
            expected: object = Payment.from_wire(bad, verify=False)
        except MalformedMessage as exc:
            with pytest.raises(MalformedMessage) as got:
                parser.parse(bad)
            assert got.value.code == exc.code
        else:
            assert parser.parse(bad) == expected


def test_sign_text_gives_the_signed_wire_and_its_json_from_one_encoding() -> None:
    key = SigningKey.generate()
    receipt = Receipt("r", "pé\u2028", "q", b"\x01" * 32, "shop", "item", Money(3, "EUR"),
                      (SegmentRef(b"\x02" * 16, 0, 3),), "v1.token", 500, 100)  # fmt: skip
    wire, text = sign_text(receipt, key)
    assert wire == Signed.sign(receipt, key).to_wire()  # the same canonical bytes were signed
    assert json.loads(text) == wire
    assert Signed.from_wire(json.loads(text), Receipt).require_signer(key.public) == receipt


def test_read_decodes_strictly_and_hands_the_fast_path_payment_over() -> None:
    vendor, broker = SigningKey.generate(), SigningKey.generate()
    chain_id = secrets.token_bytes(16)
    touchstone, traversal = create_chain(chain_id, 20)
    cert = Signed.sign(CoinCertificate(chain_id, "b", touchstone, 20, Money(1, "EUR"), 0, 10**9), broker)
    parser = PaymentParser()
    quote = _quote(vendor)
    parser.remember_quote(quote.to_wire(), quote)
    end, word = traversal.advance(3)
    wire = Payment("p1", quote, (Segment(cert, 0, end, word),)).to_wire()
    body = json.dumps(wire).encode()
    data, payment = parser.read(body)
    assert data == wire and payment is None  # certificate not seen yet: the standard parse follows
    parser.parse(data)
    data, payment = parser.read(body)
    assert payment == Payment.from_wire(wire, verify=False)

    text = body.decode()
    bad_bodies = [
        b"{",
        b"",
        b"\xff\xfe{}",
        b'{"a": 1.5}',
        b'{"a": NaN}',
        b'{"a": 1, "a": 2}',
        text.replace('"payment_id": "p1"', '"payment_id": "p1", "payment_id": "p2"').encode(),
        text.replace(f'"to_index": {end}', f'"to_index": {end}.0').encode(),
        text.replace(f'"to_index": {end}', '"to_index": 99999999999999999999999').encode(),
        b"[" * 40 + b"]" * 40,
        text.replace('"payment_id": "p1"', '"payment_id": "p1\\ud800"').encode(),  # a lone surrogate
        body.replace(b'"payment_id": "p1"', b'"payment_id": "p1\xed\xa0\x80"'),  # the same, sent raw
    ]
    for bad in bad_bodies:
        try:
            expected: object = parse_json(bad)
        except MalformedMessage as exc:
            with pytest.raises(MalformedMessage) as got:
                parser.read(bad)
            assert (got.value.code, got.value.message) == (exc.code, exc.message)
        else:
            assert parser.read(bad) == (expected, None)

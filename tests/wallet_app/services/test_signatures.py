"""The signature memo: a signature is verified once, but nothing that differs from what verified ever passes."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from netpay.errors import BadSignature, MalformedMessage, WrongMessageType
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import Quote, VendorCertificate
from netpay.signed import Signed
from tests.support.factories import quote
from wallet_app.services.signatures import SignatureMemo


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Counts real Ed25519 verifications (the real check still runs)."""
    seen: list[bytes] = []
    real = VerifyKey.verify

    def counting(self: VerifyKey, signature: bytes, data: bytes) -> None:
        seen.append(data)
        real(self, signature, data)

    monkeypatch.setattr(VerifyKey, "verify", counting)
    return seen


def test_the_same_signed_object_is_verified_once(verifications: list[bytes]) -> None:
    memo = SignatureMemo()
    wire = quote(SigningKey.generate()).to_wire()
    first = memo.parse(wire, Quote, "quote")
    again = memo.parse(copy.deepcopy(wire), Quote, "quote")
    from_object = memo.parse(first, Quote, "quote")
    assert first == again == from_object
    assert len(verifications) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda w: w["body"].update(title="Something else"),
        lambda w: w["body"]["price"].update(amount=1),
        lambda w: w.update(signer=SigningKey.generate().public.hex),
        lambda w: w.update(signature=("0" if w["signature"][0] != "0" else "1") + w["signature"][1:]),
    ],
    ids=["title", "price", "signer", "signature"],
)
def test_a_changed_object_is_not_taken_for_a_verified_one(tamper: Any, verifications: list[bytes]) -> None:
    memo = SignatureMemo()
    wire = quote(SigningKey.generate()).to_wire()
    memo.parse(wire, Quote, "quote")
    forged = copy.deepcopy(wire)
    tamper(forged)
    for _ in range(2):  # refused every time: failures are never remembered
        with pytest.raises(BadSignature):
            memo.parse(forged, Quote, "quote")
    assert len(verifications) == 3
    memo.parse(wire, Quote, "quote")  # the genuine one is still known
    assert len(verifications) == 3


def test_the_memo_is_bounded(verifications: list[bytes]) -> None:
    memo = SignatureMemo(size=2)
    key = SigningKey.generate()
    wires = [quote(key, quote_id=f"q-{i}").to_wire() for i in range(3)]
    for w in wires:
        memo.parse(w, Quote, "quote")
    memo.parse(wires[2], Quote, "quote")  # recent: remembered
    assert len(verifications) == 3
    memo.parse(wires[0], Quote, "quote")  # the oldest was forgotten: verified again
    assert len(verifications) == 4


def test_locking_the_wallet_forgets_the_signatures_seen(wallet: Any, verifications: list[bytes]) -> None:
    from wallet_app.services.signatures import SIGNATURES

    wire = quote(SigningKey.generate()).to_wire()
    SIGNATURES.parse(wire, Quote, "quote")
    wallet.lock()  # the quotes seen tell what was bought
    SIGNATURES.parse(wire, Quote, "quote")
    assert len(verifications) == 2


def test_an_object_the_memo_parsed_comes_back_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = SignatureMemo()
    parsed = memo.parse(quote(SigningKey.generate()).to_wire(), Quote, "quote")
    parses: list[object] = []
    real = Signed.from_wire.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        parses.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(Signed, "from_wire", classmethod(counting))
    assert memo.parse(parsed, Quote, "quote") is parsed
    assert parses == []
    with pytest.raises(WrongMessageType):  # remembered as a quote, asked for as a certificate: parsed, refused
        memo.parse(parsed, VendorCertificate, "vendor_certificate")


def test_a_signed_object_built_elsewhere_is_validated_like_input() -> None:
    memo = SignatureMemo()
    key = SigningKey.generate()
    good = quote(key)
    bad = Signed.sign(dataclasses.replace(good.body, title="x" * 5000), key)  # validly signed, invalid body
    with pytest.raises(MalformedMessage):
        memo.parse(bad, Quote, "quote")
    unparsed = quote(key, quote_id="q-2")
    assert memo.parse(unparsed, Quote, "quote") is not unparsed  # re-parsed from its wire form

"""Fast paths for the wire formats on the payment hot path, exactly equivalent to the ``netpay`` ones.

- :class:`PaymentParser` parses a payment like ``Payment.from_wire(data, verify=False)`` but reuses the quote and
  coin-certificate objects it has seen before (a wallet sends the same certificate with every payment on a chain,
  and the quote is one this vendor issued): the JSON sub-objects are compared for equality instead of being parsed
  again. Anything unusual falls back to ``Payment.from_wire``, which gives the standard errors.
- :meth:`PaymentParser.read` decodes a payment body strictly (no floats, NaN or duplicate keys) without the separate
  walk over the decoded value that :func:`netpay.encoding.parse_json` makes: a payment that takes the fast path has
  every value either checked by it or equal to one this vendor made. Anything else is decoded by ``parse_json``.
- :func:`sign_wire` signs a body like ``Signed.sign(...).to_wire()`` without encoding the body twice;
  :func:`sign_text` also gives the signed wire as JSON text from that one encoding (to store and to send).
"""

from __future__ import annotations

import json
import re
from typing import Any

from netpay.chain import MAX_CHAIN_LENGTH
from netpay.encoding import _reject_constant, _reject_float, might_hold_surrogates, parse_json
from netpay.errors import MalformedMessage
from netpay.keys import SigningKey
from netpay.messages import MAX_SEGMENTS, CoinCertificate, Payment, Quote, Segment
from netpay.signed import SIGNING_DOMAIN, Body, Signed

__all__ = ["PaymentParser", "sign_text", "sign_wire"]

_PAYMENT_KEYS = frozenset({"type", "version", "payment_id", "quote", "segments"})
_SEGMENT_KEYS = frozenset({"chain_id", "certificate", "from_index", "to_index", "payword"})
_PAYWORD = re.compile(r"\A[0-9a-f]{64}\Z")
_CACHE_MAX = 100_000


def sign_wire(body: Body, key: SigningKey) -> dict[str, Any]:
    """``Signed.sign(body, key).to_wire()``: the same bytes are signed (canonical JSON of the envelope)."""
    data = body.to_body()
    signer = key.public.hex
    envelope = {"type": body.TYPE, "version": body.VERSION, "signer": signer, "body": data}
    signed = (
        SIGNING_DOMAIN
        + json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    )
    return {
        "type": body.TYPE,
        "version": body.VERSION,
        "body": data,
        "signer": signer,
        "signature": key.sign(signed).hex(),
    }


def sign_text(body: Body, key: SigningKey) -> tuple[dict[str, Any], str]:
    """``(wire, text)``: ``wire`` as :func:`sign_wire` gives it and ``text`` its JSON, both from ONE encoding of the
    body (the canonical envelope is the body's canonical JSON between fixed keys in sorted order)."""
    data = body.to_body()
    signer = key.public.hex
    body_json = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    head = json.dumps(body.TYPE, ensure_ascii=False)
    envelope = f'{{"body":{body_json},"signer":"{signer}","type":{head},"version":{int(body.VERSION)}}}'
    signature = key.sign(SIGNING_DOMAIN + envelope.encode()).hex()
    wire = {"type": body.TYPE, "version": body.VERSION, "body": data, "signer": signer, "signature": signature}
    text = (
        f'{{"type":{head},"version":{int(body.VERSION)},"body":{body_json},"signer":"{signer}",'
        f'"signature":"{signature}"}}'
    )
    return wire, text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise MalformedMessage("duplicate key")
    return out


class PaymentParser:
    """``Payment.from_wire(verify=False)`` with a cache of quotes and certificates by their signatures."""

    def __init__(self) -> None:
        self._quotes: dict[str, tuple[dict[str, Any], Signed[Quote]]] = {}
        self._certs: dict[str, tuple[dict[str, Any], Signed[CoinCertificate], str]] = {}

    def remember_quote(self, wire: dict[str, Any], signed: Signed[Quote]) -> None:
        if len(self._quotes) >= _CACHE_MAX:
            self._quotes.clear()
        self._quotes[wire["signature"]] = (wire, signed)

    def read(self, body: bytes) -> tuple[Any, Payment | None]:
        """Decode a request body: ``(value, payment)`` where ``payment`` is set when the fast path took it.

        Raises :class:`MalformedMessage` exactly like :func:`parse_json` for a body that is not strict JSON.
        """
        try:
            data = json.loads(body, parse_float=_reject_float, parse_constant=_reject_constant,
                              object_pairs_hook=_unique_keys)  # fmt: skip
        except (ValueError, RecursionError, MalformedMessage):  # parse_json raises its standard error for it
            return parse_json(body), None
        fast = self._fast(data)
        if fast is None or might_hold_surrogates(body):  # the full check of every value (depth, integers, text)
            return parse_json(body), None
        return data, fast

    def parse(self, data: Any) -> Payment:
        fast = self._fast(data)
        if fast is not None:
            return fast
        payment = Payment.from_wire(data, verify=False)
        if len(self._certs) >= _CACHE_MAX:
            self._certs.clear()
        for raw, seg in zip(data["segments"], payment.segments, strict=True):
            cert = raw["certificate"]
            self._certs[cert["signature"]] = (cert, seg.certificate, seg.chain_id.hex())
        return payment

    def _fast(self, data: Any) -> Payment | None:
        if type(data) is not dict or data.keys() != _PAYMENT_KEYS:
            return None
        if data["type"] != "payment" or type(data["version"]) is not int or data["version"] != Payment.VERSION:
            return None
        payment_id = data["payment_id"]
        if type(payment_id) is not str or not 1 <= len(payment_id) <= 64:
            return None
        quote_wire = data["quote"]
        if type(quote_wire) is not dict or type(quote_wire.get("signature")) is not str:
            return None
        quote = self._quotes.get(quote_wire["signature"])
        if quote is None or quote[0] != quote_wire:
            return None
        raw_segments = data["segments"]
        if type(raw_segments) is not list or not 1 <= len(raw_segments) <= MAX_SEGMENTS:
            return None
        segments = []
        seen: set[str] = set()
        for raw in raw_segments:
            if type(raw) is not dict or raw.keys() != _SEGMENT_KEYS:
                return None
            cert_wire = raw["certificate"]
            if type(cert_wire) is not dict or type(cert_wire.get("signature")) is not str:
                return None
            cert = self._certs.get(cert_wire["signature"])
            if cert is None or cert[0] != cert_wire:
                return None
            start, end, payword, chain_hex = raw["from_index"], raw["to_index"], raw["payword"], raw["chain_id"]
            if type(start) is not int or type(end) is not int or type(payword) is not str:
                return None
            if chain_hex != cert[2] or chain_hex in seen or not _PAYWORD.match(payword):
                return None
            if not 0 <= start < end <= min(cert[1].body.length, MAX_CHAIN_LENGTH):
                return None
            seen.add(chain_hex)
            segments.append(Segment(cert[1], start, end, bytes.fromhex(payword)))
        return Payment(payment_id, quote[1], tuple(segments))

"""Signed objects: a typed, versioned body signed with Ed25519 over its canonical encoding.

Wire form::

    {"type": "quote", "version": 1, "body": {...}, "signer": "<64 hex>", "signature": "<128 hex>"}

The signature covers ``SIGNING_DOMAIN + canonical_json({"type", "version", "signer", "body"})``, so the type and
version are inside what is signed and a signature over one kind of object can never pass for another.

The body in those bytes is the body **as sent**: a parsed object keeps the canonical encoding of the body it received
(an optional field left out stays out, one sent as ``null`` stays ``null``), verifies its signature over that, and
hands that same body on when it is forwarded (a quote inside a payment, a release inside a redemption claim). Only a
body equal to what ``to_body()`` gives back is encoded from the parsed values (the same bytes, and the common case,
so it stays lazy and cheap); any other form is kept as received. A sender's choice between leaving an optional field
out and sending it as ``null`` therefore cannot break its signature (docs/protocol.md §3).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from netpay.encoding import FieldReader, canonical_json
from netpay.errors import UntrustedSigner, WrongMessageType
from netpay.keys import SigningKey, VerifyKey

__all__ = ["SIGNING_DOMAIN", "Body", "Signed"]

SIGNING_DOMAIN = b"NETPAY-SIGNED-V1\n"


class Body(ABC):
    """A message body. Subclasses set ``TYPE`` and ``VERSION`` and convert to and from JSON objects."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    @abstractmethod
    def to_body(self) -> dict[str, Any]:
        """The body as a JSON object."""

    @classmethod
    @abstractmethod
    def from_body(cls, data: Any, where: str) -> Self:
        """Parse and validate a JSON object; raise :class:`MalformedMessage` naming the bad field."""


B = TypeVar("B", bound=Body)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Signed(Generic[B]):
    """A body together with its signer's public key and signature. Build with :meth:`sign` or :meth:`from_wire`.

    Bodies are immutable values, so the signed bytes are encoded once per object and kept (a payment checks,
    digests and verifies the same quote several times)."""

    body: B
    signer: VerifyKey
    signature: bytes
    _signed: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _wire: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)
    #: The body's canonical JSON as signed; for a parsed object, the body exactly as it was received.
    _body_json: bytes | None = field(default=None, init=False, repr=False, compare=False)
    #: Parsed from a body in another form than ``body.to_body()`` writes (an optional field left out, or null where
    #: we leave it out): ``_body_json`` then holds that body as received, and the wire form gives it back.
    _as_sent: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def sign(cls, body: B, key: SigningKey) -> Signed[B]:
        body_json = canonical_json(body.to_body())
        data = _envelope(body_json, key.public.hex, body)
        signed = cls(body, key.public, key.sign(data))
        object.__setattr__(signed, "_body_json", body_json)
        object.__setattr__(signed, "_signed", data)
        return signed

    def body_json(self) -> bytes:
        """The canonical JSON of the body the signature covers: the body as received for a parsed object (kept when
        it differs from ``to_body()``, else the same bytes), the body's own encoding for a signed one."""
        data = self._body_json
        if data is None:
            data = canonical_json(self.body.to_body())
            object.__setattr__(self, "_body_json", data)
        return data

    def signed_bytes(self) -> bytes:
        """``SIGNING_DOMAIN`` + the canonical envelope: what the signature covers."""
        data = self._signed
        if data is None:
            data = _envelope(self.body_json(), self.signer.hex, self.body)
            object.__setattr__(self, "_signed", data)
        return data

    @property
    def digest(self) -> str:
        """SHA-256 of the signed bytes, hex: binds a receipt or payment to exactly this object (computed once)."""
        data = self._digest
        if data is None:
            data = hashlib.sha256(self.signed_bytes()).hexdigest()
            object.__setattr__(self, "_digest", data)
        return data

    def wire_json(self) -> bytes:
        """``canonical_json(self.to_wire())``, encoded once per object (a payment embeds its quote and
        certificates, and a wallet sends the same certificate with every payment)."""
        data = self._wire
        if data is None:  # canonical key order: body, signature, signer, type, version
            data = b'{"body":%s,"signature":"%s","signer":"%s","type":%s,"version":%d}' % (
                self.body_json(), self.signature.hex().encode(), self.signer.hex.encode(),
                _type_json(self.body), self.body.VERSION,
            )  # fmt: skip
            object.__setattr__(self, "_wire", data)
        return data

    def to_wire(self) -> dict[str, Any]:
        """The wire form as a new JSON object; a parsed object gives its body as it was received."""
        body = json.loads(self.body_json()) if self._as_sent else self.body.to_body()
        return {
            "type": self.body.TYPE,
            "version": self.body.VERSION,
            "body": body,
            "signer": self.signer.hex,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_wire(cls, data: Any, kind: type[B], where: str = "signed", verify: bool = True) -> Signed[B]:
        """Parse a signed object of type ``kind``; with ``verify`` (the default) check its signature.

        The signature is checked against the embedded signer key; callers then check that the signer is one they
        trust with :meth:`require_signer`.
        """
        r = FieldReader(data, where)
        type_ = r.text("type", 64)
        version = r.integer("version", 0, 1000)
        if type_ != kind.TYPE:
            raise WrongMessageType(f"{where} is a {type_!r}, expected {kind.TYPE!r}", field=where)
        if version != kind.VERSION:
            raise WrongMessageType(f"{where} has version {version}, this party speaks {kind.VERSION}", field=where)
        raw = r.raw("body")
        body = kind.from_body(raw, f"{where}.body")
        signer = VerifyKey(r.hex("signer", 32))
        signature = r.hex("signature", 64)
        r.done()
        obj = cls(body, signer, signature)
        if body.to_body() != raw:  # another form than ours (cheap to compare): keep the body as sent, encoded now
            object.__setattr__(obj, "_body_json", canonical_json(raw))  # (the caller's dict may change later)
            object.__setattr__(obj, "_as_sent", True)
        if verify:
            obj.verify_signature()
        return obj

    def verify_signature(self) -> None:
        """Raise :class:`BadSignature` unless the signature verifies under the embedded signer key."""
        self.signer.verify(self.signature, self.signed_bytes())

    def require_signer(self, *trusted: VerifyKey) -> B:
        """Return the body if signed by one of ``trusted``; raise :class:`UntrustedSigner` otherwise."""
        if self.signer not in trusted:
            raise UntrustedSigner(f"{self.body.TYPE} is signed by an untrusted key {self.signer.fingerprint}")
        return self.body


def _type_json(body: Body) -> bytes:
    return json.dumps(body.TYPE, ensure_ascii=False).encode()


def _envelope(body_json: bytes, signer_hex: str, body: Body) -> bytes:
    """``SIGNING_DOMAIN + canonical_json({"body", "signer", "type", "version"})`` around an encoded body (the keys
    in sorted order, as canonical JSON has them)."""
    return SIGNING_DOMAIN + b'{"body":%s,"signer":"%s","type":%s,"version":%d}' % (
        body_json, signer_hex.encode(), _type_json(body), body.VERSION,
    )  # fmt: skip

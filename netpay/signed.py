"""Signed objects: a typed, versioned body signed with Ed25519 over its canonical encoding.

Wire form::

    {"type": "quote", "version": 1, "body": {...}, "signer": "<64 hex>", "signature": "<128 hex>"}

The signature covers ``SIGNING_DOMAIN + canonical_json({"type", "version", "signer", "body"})``, so the type and
version are inside what is signed and a signature over one kind of object can never pass for another.
"""

from __future__ import annotations

import hashlib
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

    @staticmethod
    def _bytes(body: Body, signer: VerifyKey) -> bytes:
        envelope = {"type": body.TYPE, "version": body.VERSION, "signer": signer.hex, "body": body.to_body()}
        return SIGNING_DOMAIN + canonical_json(envelope)

    @classmethod
    def sign(cls, body: B, key: SigningKey) -> Signed[B]:
        data = cls._bytes(body, key.public)
        signed = cls(body, key.public, key.sign(data))
        object.__setattr__(signed, "_signed", data)
        return signed

    def signed_bytes(self) -> bytes:
        """``SIGNING_DOMAIN`` + the canonical envelope: what the signature covers."""
        data = self._signed
        if data is None:
            data = self._bytes(self.body, self.signer)
            object.__setattr__(self, "_signed", data)
        return data

    @property
    def digest(self) -> str:
        """SHA-256 of the signed bytes, hex: binds a receipt or payment to exactly this object."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    def wire_json(self) -> bytes:
        """``canonical_json(self.to_wire())``, encoded once per object (a payment embeds its quote and
        certificates, and a wallet sends the same certificate with every payment)."""
        data = self._wire
        if data is None:
            data = canonical_json(self.to_wire())
            object.__setattr__(self, "_wire", data)
        return data

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": self.body.TYPE,
            "version": self.body.VERSION,
            "body": self.body.to_body(),
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
        body = kind.from_body(r.raw("body"), f"{where}.body")
        signer = VerifyKey(r.hex("signer", 32))
        signature = r.hex("signature", 64)
        r.done()
        obj = cls(body, signer, signature)
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

"""Ed25519 keys: signing, verification, fingerprints, and key files kept with mode 0600."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from netpay.errors import BadSignature, MalformedMessage

__all__ = ["SigningKey", "VerifyKey", "load_or_create_key"]


class VerifyKey:
    """An Ed25519 public key."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise MalformedMessage("an Ed25519 public key is 32 bytes")
        self.raw = raw
        try:
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise MalformedMessage("not a valid Ed25519 public key") from None

    @classmethod
    def from_hex(cls, text: str) -> VerifyKey:
        try:
            return cls(bytes.fromhex(text))
        except (ValueError, TypeError):
            raise MalformedMessage("public key must be 64 hex digits") from None

    @property
    def hex(self) -> str:
        return self.raw.hex()

    @property
    def fingerprint(self) -> str:
        """Short human-comparable form: first 10 bytes of SHA-256, in groups of four hex digits."""
        digest = hashlib.sha256(self.raw).hexdigest()[:20].upper()
        return " ".join(digest[i : i + 4] for i in range(0, 20, 4))

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`BadSignature` unless ``signature`` is this key's over ``data``."""
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            raise BadSignature() from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"VerifyKey({self.fingerprint})"


class SigningKey:
    """An Ed25519 private key."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = VerifyKey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != 32:
            raise MalformedMessage("an Ed25519 private key seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.fingerprint})"


def load_or_create_key(path: Path) -> SigningKey:
    """Load the raw 32-byte key at ``path``, or create it atomically with mode 0600 on first use."""
    path = Path(path)
    if path.exists():
        data = path.read_bytes()
        if len(data) != 32:
            raise MalformedMessage(f"key file {path} is damaged (expected 32 bytes)")
        return SigningKey.from_seed(data)
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.seed())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return key

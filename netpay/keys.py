"""Ed25519 keys: signing, verification, fingerprints, and key files kept with mode 0600.

Ed25519 is libsodium's, through PyNaCl: it verifies in about half the time of OpenSSL's (a payment verifies and
signs on every hop), and its verification is the strict one (non-canonical signatures and small-order keys fail).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import CryptoError

from netpay.errors import BadSignature, MalformedMessage

__all__ = ["SigningKey", "VerifyKey", "load_or_create_key"]


class VerifyKey:
    """An Ed25519 public key."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        # Only the length is checked here; a key that is not a usable curve point fails every verification.
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise MalformedMessage("an Ed25519 public key is 32 bytes")
        self.raw = raw

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
        if not isinstance(signature, bytes) or len(signature) != 64:
            raise BadSignature()
        try:
            crypto_sign_open(signature + data, self.raw)
        except CryptoError:
            raise BadSignature() from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifyKey) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"VerifyKey({self.fingerprint})"


class SigningKey:
    """An Ed25519 private key."""

    __slots__ = ("_secret", "_seed", "public")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != 32:
            raise MalformedMessage("an Ed25519 private key seed is 32 bytes")
        public, self._secret = crypto_sign_seed_keypair(seed)
        self._seed = seed
        self.public = VerifyKey(public)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(seed)

    def seed(self) -> bytes:
        return self._seed

    def sign(self, data: bytes) -> bytes:
        """The 64-byte detached signature of ``data``."""
        return crypto_sign(data, self._secret)[:64]

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

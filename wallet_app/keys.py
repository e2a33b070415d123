"""Where the vault key comes from: the OS keyring (random 256-bit key), or a passphrase stretched with Argon2id.

The key itself is never written to disk in plain text. Beside the vault lives a small header file (``vault.json``)
with the vault id, where the key is kept, the Argon2id salt and parameters (passphrase mode), and a key check value
``HMAC-SHA256(key, "netpay-vault-key-check")`` so a wrong key is told apart from a damaged file before SQLCipher
reads anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
from argon2.low_level import Type, hash_secret_raw

from wallet_app.vault.errors import KeyringUnavailable, VaultDamaged

__all__ = [
    "FAST_TEST_KDF",
    "STRONG_KDF",
    "KdfParams",
    "KeyStore",
    "VaultHeader",
    "derive_key",
    "key_check",
    "new_raw_key",
]

KEY_BYTES = 32
_CHECK_LABEL = b"netpay-vault-key-check"


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id parameters; ``memory_cost`` in KiB."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 2


#: What the wallet uses for real passphrases (64 MiB, 3 passes).
STRONG_KDF = KdfParams()
#: For tests only: the same code path at a trivial cost.
FAST_TEST_KDF = KdfParams(time_cost=1, memory_cost=64, parallelism=1)


def new_raw_key() -> bytearray:
    """A fresh random 256-bit key (a bytearray so it can be wiped)."""
    return bytearray(secrets.token_bytes(KEY_BYTES))


def derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytearray:
    """Argon2id(passphrase, salt) → 32-byte raw key."""
    raw = hash_secret_raw(
        passphrase.encode(),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )
    return bytearray(raw)


def key_check(key: bytes | bytearray) -> str:
    """The value stored in the header to recognise the right key (reveals nothing about a 256-bit key)."""
    return hmac.new(bytes(key), _CHECK_LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class VaultHeader:
    """Contents of ``vault.json`` beside the vault."""

    vault_id: str
    key_source: str  # "keyring" | "passphrase"
    generation: int
    key_check: str
    salt: str | None = None
    kdf: dict[str, int] | None = None
    format: int = 1

    @property
    def kdf_params(self) -> KdfParams:
        return KdfParams(**self.kdf) if self.kdf else STRONG_KDF

    @classmethod
    def for_passphrase(cls, vault_id: str, generation: int, params: KdfParams) -> tuple[VaultHeader, bytes]:
        salt = secrets.token_bytes(16)
        return cls(vault_id, "passphrase", generation, "", salt.hex(), asdict(params)), salt

    def with_check(self, key: bytes | bytearray) -> VaultHeader:
        return VaultHeader(self.vault_id, self.key_source, self.generation, key_check(key), self.salt, self.kdf)

    def matches(self, key: bytes | bytearray) -> bool:
        return hmac.compare_digest(self.key_check, key_check(key))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, path: Path) -> VaultHeader:
        try:
            data = json.loads(path.read_text())
            header = cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise VaultDamaged(f"the vault header {path.name} is damaged: {exc}") from None
        if header.key_source not in ("keyring", "passphrase") or header.format != 1:
            raise VaultDamaged(f"the vault header {path.name} is not understood")
        return header

    def write(self, path: Path) -> None:
        """Atomic write (temp file, fsync, rename)."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(self.to_json(), indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


def _is_usable(backend: keyring.backend.KeyringBackend) -> bool:
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if "fail" in name.split(".") or "Plaintext" in name or "null" in name.lower():
        return False
    if "chainer" in name.lower():
        return bool(getattr(backend, "backends", []))
    return True


class KeyStore:
    """Keeps vault keys in a keyring backend (the OS keyring by default; a test backend in tests)."""

    SERVICE = "NetPay Wallet"

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None, kdf: KdfParams = STRONG_KDF) -> None:
        self._backend = backend
        self.kdf = kdf

    @property
    def backend(self) -> keyring.backend.KeyringBackend:
        return self._backend if self._backend is not None else keyring.get_keyring()

    def usable(self) -> bool:
        """False for the fail backend and plaintext backends: then the wallet asks for a passphrase."""
        return _is_usable(self.backend)

    @staticmethod
    def _entry(vault_id: str, generation: int) -> str:
        return f"vault-{vault_id}-{generation}"

    def store(self, vault_id: str, generation: int, key: bytes | bytearray) -> None:
        if not self.usable():
            raise KeyringUnavailable("no usable OS keyring to keep the vault key in")
        try:
            self.backend.set_password(self.SERVICE, self._entry(vault_id, generation), bytes(key).hex())
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the OS keyring refused to store the key: {exc}") from None

    def load(self, vault_id: str, generation: int) -> bytearray:
        if not self.usable():
            raise KeyringUnavailable()
        try:
            text = self.backend.get_password(self.SERVICE, self._entry(vault_id, generation))
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(f"the OS keyring failed: {exc}") from None
        if not text:
            raise KeyringUnavailable("the OS keyring has no key for this vault")
        try:
            return bytearray(bytes.fromhex(text))
        except ValueError:
            raise KeyringUnavailable("the key in the OS keyring is not a vault key") from None

    def delete(self, vault_id: str, generation: int) -> None:
        with contextlib.suppress(keyring.errors.KeyringError):
            self.backend.delete_password(self.SERVICE, self._entry(vault_id, generation))

"""Backup files: the whole vault in one file protected by a passphrase the user chooses.

Format: ``NETPAY-WALLET-BACKUP-1\\n`` + one JSON header line (Argon2id parameters, salt, nonce, passphrase check) +
``\\n`` + AES-256-GCM ciphertext (the header line is the associated data) of ``export_key || database``, where the
database is a SQLCipher export of the vault encrypted with the random ``export_key``. A wrong passphrase is told
apart from a damaged file by the passphrase check value; any altered byte fails the GCM tag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import asdict
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wallet_app.keys import KdfParams, derive_key, new_raw_key
from wallet_app.vault.errors import BackupDamaged, WrongBackupPassphrase
from wallet_app.vault.store import Vault

__all__ = ["MAGIC", "read_backup", "write_backup"]

MAGIC = b"NETPAY-WALLET-BACKUP-1\n"
_CHECK = b"netpay-backup-passphrase-check"


def write_backup(vault: Vault, path: Path, passphrase: str, kdf: KdfParams) -> None:
    """Export the open ``vault`` to ``path`` (written atomically, mode 0600)."""
    if not passphrase:
        raise WrongBackupPassphrase("a backup needs a passphrase")
    export_key = new_raw_key()
    with tempfile.TemporaryDirectory(dir=vault.directory) as tmpdir:
        tmp_db = Path(tmpdir) / "export.db"
        vault.export_to(tmp_db, export_key)
        database = tmp_db.read_bytes()
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    key = derive_key(passphrase, salt, kdf)
    header = {
        "kdf": {"name": "argon2id", **asdict(kdf)},
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "check": hmac.new(bytes(key), _CHECK, hashlib.sha256).hexdigest(),
    }
    line = json.dumps(header, sort_keys=True).encode()
    blob = AESGCM(bytes(key)).encrypt(nonce, bytes(export_key) + database, line)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, MAGIC + line + b"\n" + blob)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_backup(path: Path, passphrase: str) -> tuple[bytearray, bytes]:
    """Return ``(export_key, database bytes)``; raise :class:`WrongBackupPassphrase` or :class:`BackupDamaged`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BackupDamaged(f"the backup cannot be read: {exc}") from None
    if not data.startswith(MAGIC):
        raise BackupDamaged()
    rest = data[len(MAGIC) :]
    line, sep, blob = rest.partition(b"\n")
    try:
        header = json.loads(line)
        kdf = header["kdf"]
        if kdf.pop("name") != "argon2id":
            raise ValueError("unknown KDF")
        params = KdfParams(**kdf)
        salt, nonce = bytes.fromhex(header["salt"]), bytes.fromhex(header["nonce"])
        check = str(header["check"])
        if not sep or len(nonce) != 12 or len(salt) < 16 or params.memory_cost > 4 * 1024 * 1024:
            raise ValueError("bad header")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BackupDamaged() from None
    key = derive_key(passphrase, salt, params)
    if not hmac.compare_digest(check, hmac.new(bytes(key), _CHECK, hashlib.sha256).hexdigest()):
        raise WrongBackupPassphrase()
    try:
        plain = AESGCM(bytes(key)).decrypt(nonce, blob, line)
    except InvalidTag:
        raise BackupDamaged("the backup file is damaged (authentication failed)") from None
    return bytearray(plain[:32]), plain[32:]

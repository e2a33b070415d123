"""The wallet's encrypted vault (SQLCipher), its key handling, backups and typed errors.

Modules: ``store`` (the database), ``session`` (life cycle), ``backup``, ``schema``, ``errors`` (re-exported here).
"""

from wallet_app.vault.errors import (
    BackupDamaged,
    KeyringUnavailable,
    PassphraseRequired,
    VaultDamaged,
    VaultError,
    VaultExists,
    VaultInUse,
    VaultMissing,
    VaultTooNew,
    VaultWriteFailed,
    WrongBackupPassphrase,
    WrongKey,
)

__all__ = [
    "BackupDamaged",
    "KeyringUnavailable",
    "PassphraseRequired",
    "VaultDamaged",
    "VaultError",
    "VaultExists",
    "VaultInUse",
    "VaultMissing",
    "VaultTooNew",
    "VaultWriteFailed",
    "WrongBackupPassphrase",
    "WrongKey",
]

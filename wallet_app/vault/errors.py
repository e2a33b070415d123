"""Typed vault errors. Each leaves the vault file exactly as it was."""

from __future__ import annotations

from netpay.errors import NetPayError

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


class VaultError(NetPayError):
    """Base of every vault error."""

    code = "vault_error"
    http_status = 500
    default_message = "vault error"


class WrongKey(VaultError):
    """The key (from the keyring or derived from the passphrase) does not open this vault."""

    code = "vault_wrong_key"
    default_message = "wrong passphrase or key: the vault cannot be opened with it"


class VaultDamaged(VaultError):
    """The vault file is truncated or altered (an authentication check failed)."""

    code = "vault_damaged"
    default_message = "the vault file is damaged (truncated or altered); restore a backup"


class VaultTooNew(VaultError):
    """The vault was written by a newer version of the wallet."""

    code = "vault_too_new"
    default_message = "the vault was written by a newer version of NetPay Wallet; update the wallet"


class VaultInUse(VaultError):
    """Another wallet process has this vault open."""

    code = "vault_in_use"
    default_message = "another NetPay Wallet is already running with this vault"


class VaultWriteFailed(VaultError):
    """A change the vault recorded durably (a spend journal intent) could not be applied to its tables, for example
    because the disk is full. Nothing else is read or written until it can be, so no spend is made from tables that
    lack an earlier one. The change is kept: it is retried on every use and applied when the vault next opens."""

    code = "vault_write_failed"
    http_status = 503
    default_message = (
        "the wallet could not finish recording a payment in its vault (is the disk full?); "
        "no further payment is made until it can"
    )


class VaultMissing(VaultError):
    """No vault exists in the data directory yet."""

    code = "vault_missing"
    default_message = "no vault exists yet"


class VaultExists(VaultError):
    """A vault already exists where a new one was to be created."""

    code = "vault_exists"
    default_message = "a vault already exists here"


class KeyringUnavailable(VaultError):
    """The vault's key is kept in the OS keyring, but no usable keyring (or no entry) is there."""

    code = "vault_keyring_unavailable"
    default_message = "the OS keyring holding the vault key is not available"


class PassphraseRequired(VaultError):
    """A passphrase is needed (no usable keyring, or the vault is passphrase-protected) but none was given."""

    code = "vault_passphrase_required"
    default_message = "a passphrase is required"


class WrongBackupPassphrase(VaultError):
    """The backup passphrase is wrong."""

    code = "backup_wrong_passphrase"
    default_message = "wrong backup passphrase"


class BackupDamaged(VaultError):
    """The backup file is damaged or not a NetPay backup."""

    code = "backup_damaged"
    default_message = "the backup file is damaged or not a NetPay wallet backup"

"""The vault's life cycle: create, unlock, lock, re-key (passphrase change, keyring ↔ passphrase), backup, restore.

Holds the process lock for as long as the wallet runs, and the raw key only while unlocked (a bytearray wiped on
lock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wallet_app.keys import KeyStore, VaultHeader, derive_key, new_raw_key
from wallet_app.vault.backup import read_backup, write_backup
from wallet_app.vault.errors import (
    PassphraseRequired,
    VaultDamaged,
    VaultExists,
    VaultMissing,
    WrongKey,
)
from wallet_app.vault.store import LOCK_FILE, ProcessLock, Vault, open_connection, prepare_restored

__all__ = ["VaultSession"]

log = logging.getLogger(__name__)


def _wipe(buf: bytearray | None) -> None:
    if buf is not None:
        for i in range(len(buf)):
            buf[i] = 0


class VaultSession:
    """One data directory's vault. ``vault`` is usable while :attr:`unlocked`."""

    def __init__(self, directory: Path, key_store: KeyStore) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.keys = key_store
        self.vault = Vault(self.directory)
        self._proc_lock = ProcessLock(self.directory / LOCK_FILE)
        self._key: bytearray | None = None
        self._next_header = self.directory / "vault.json.next"
        self._closing: list[Callable[[], None]] = []

    @property
    def state(self) -> str:
        if self.vault.is_open:
            return "unlocked"
        return "locked" if self.vault.exists() else "new"

    @property
    def unlocked(self) -> bool:
        return self.vault.is_open

    def before_lock(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` before the vault locks, is re-keyed or restored: a part holding its own connection
        (:meth:`connect`, e.g. the peer server) lets go of it there."""
        self._closing.append(fn)

    def _let_go(self) -> None:
        for fn in list(self._closing):
            try:
                fn()
            except Exception:  # one part failing to stop must not keep the vault open
                log.exception("a part did not stop before the vault locked")

    def connect(self, timeout: float = 5.0) -> Any:
        """One more connection to the open vault (same key, autocommit, rows by name) for a part that runs its own
        transactions beside the wallet's. Raises :class:`~netpay.errors.WalletLocked` while locked. Whoever opens
        one registers :meth:`before_lock` to close it."""
        if self._key is None or not self.vault.is_open:
            from netpay.errors import WalletLocked

            raise WalletLocked("the vault is locked: unlock the wallet first")
        return open_connection(self.vault.path, self._key, timeout)

    def needs_passphrase(self) -> bool:
        if self.vault.exists():
            return self.vault.read_header().key_source == "passphrase"
        return not self.keys.usable()

    def acquire(self) -> None:
        """Take the process lock (raises :class:`VaultInUse` if another wallet has it)."""
        self._proc_lock.acquire()

    def create(self, passphrase: str | None = None) -> None:
        self.acquire()
        if self.vault.exists():
            raise VaultExists()
        header, key = self._new_key(uuid.uuid4().hex, 1, passphrase)
        self.vault.create(key, header)
        header = header.with_check(key)
        self.vault.open(key, header)
        self._key = key

    def _new_key(self, vault_id: str, generation: int, passphrase: str | None) -> tuple[VaultHeader, bytearray]:
        if passphrase is None:
            if not self.keys.usable():
                raise PassphraseRequired("no usable OS keyring: choose a passphrase for the vault")
            key = new_raw_key()
            self.keys.store(vault_id, generation, key)
            return VaultHeader(vault_id, "keyring", generation, "").with_check(key), key
        if not passphrase:
            raise PassphraseRequired("the passphrase must not be empty")
        header, salt = VaultHeader.for_passphrase(vault_id, generation, self.keys.kdf)
        key = derive_key(passphrase, salt, self.keys.kdf)
        return header.with_check(key), key

    def _key_for(self, header: VaultHeader, passphrase: str | None) -> bytearray:
        if header.key_source == "keyring":
            return self.keys.load(header.vault_id, header.generation)
        if passphrase is None:
            raise PassphraseRequired()
        assert header.salt is not None
        return derive_key(passphrase, bytes.fromhex(header.salt), header.kdf_params)

    def unlock(self, passphrase: str | None = None) -> None:
        """Open the vault; on any error the file is unchanged and the vault stays locked."""
        if self.vault.is_open:
            return
        self.acquire()
        if not self.vault.path.exists():
            raise VaultMissing()
        header = self.vault.read_header()
        key = self._key_for(header, passphrase)
        try:
            self.vault.open(key, header)
        except (VaultDamaged, WrongKey):
            _wipe(key)
            if not self._next_header.exists():  # no interrupted re-key to finish
                raise
            header = VaultHeader.read(self._next_header)
            key = self._key_for(header, passphrase)
            self.vault.open(key, header)
            os.replace(self._next_header, self.vault.header_path)
        self._next_header.unlink(missing_ok=True)
        self._key = key

    def lock(self) -> None:
        self._let_go()
        self.vault.close()
        _wipe(self._key)
        self._key = None

    def close(self) -> None:
        self.lock()
        self._proc_lock.release()

    def rekey(self, new_passphrase: str | None, old_passphrase: str | None = None) -> None:
        """Re-encrypt the open vault with a new key: from ``new_passphrase``, or a fresh key in the keyring."""
        old = self.vault.read_header()
        if old.key_source == "passphrase":
            check = self._key_for(old, old_passphrase)
            matches = old.matches(check)
            _wipe(check)
            if not matches:
                raise WrongKey("the current passphrase is wrong")
        header, key = self._new_key(old.vault_id, old.generation + 1, new_passphrase)
        self._let_go()
        header.write(self._next_header)  # lets unlock finish the job if we die between the two steps below
        self.vault.rekey(key)
        os.replace(self._next_header, self.vault.header_path)
        if old.key_source == "keyring":
            self.keys.delete(old.vault_id, old.generation)
        _wipe(self._key)
        self._key = key

    def backup(self, path: Path, passphrase: str) -> None:
        write_backup(self.vault, path, passphrase, self.keys.kdf)

    def restore(self, path: Path, passphrase: str) -> None:
        """Replace the open vault by the backup's content, re-keyed to the current key."""
        if self._key is None:
            from netpay.errors import WalletLocked

            raise WalletLocked()
        export_key, database = read_backup(path, passphrase)
        tmp = self.directory / "vault.db.restore"
        tmp.write_bytes(database)
        try:
            prepare_restored(tmp, export_key, self._key)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            _wipe(export_key)
        key = self._key
        self._let_go()
        self.vault.close()
        os.replace(tmp, self.vault.path)
        with contextlib.suppress(OSError):
            (self.directory / "vault.db-journal").unlink()
        self.vault.open(key)

"""The vault's bad cases: each is a clear typed error and leaves the vault file byte-for-byte unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keyring.backends.fail
import pytest
import sqlcipher3

from netpay.errors import WalletLocked
from tests.support.test_keyring import MemoryKeyring
from tests.support.wallet import new_wallet, vault_files_hash
from wallet_app.keys import FAST_TEST_KDF, KeyStore, new_raw_key
from wallet_app.services import WalletService
from wallet_app.vault.errors import (
    BackupDamaged,
    KeyringUnavailable,
    PassphraseRequired,
    VaultDamaged,
    VaultInUse,
    VaultTooNew,
    WrongBackupPassphrase,
    WrongKey,
)
from wallet_app.vault.store import Vault


def _closed_wallet(tmp_path: Path, kr: MemoryKeyring | None = None, passphrase: str | None = None) -> Path:
    w = new_wallet(tmp_path / "w", keyring=kr, passphrase=passphrase)
    w.set_setting("greeting", "hello")
    w.close()
    return tmp_path / "w"


def _service(data_dir: Path, kr: object) -> WalletService:
    return WalletService(data_dir, key_store=KeyStore(kr, kdf=FAST_TEST_KDF))  # type: ignore[arg-type]


def test_reopens_with_keyring_key(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    w = _service(d, kr)
    w.unlock()
    assert w.get_setting("greeting") == "hello"
    w.close()


def test_wrong_passphrase(tmp_path: Path) -> None:
    d = _closed_wallet(tmp_path, MemoryKeyring(), passphrase="right one")
    before = vault_files_hash(d)
    w = _service(d, MemoryKeyring())
    assert w.needs_passphrase()
    with pytest.raises(WrongKey, match="wrong passphrase"):
        w.unlock("wrong one")
    with pytest.raises(PassphraseRequired):
        w.unlock()
    assert w.state == "locked"
    assert vault_files_hash(d) == before
    w.unlock("right one")
    assert w.get_setting("greeting") == "hello"
    w.close()


def test_wrong_raw_key_in_keyring(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    before = vault_files_hash(d)
    ((entry, _),) = kr.entries.items()
    kr.entries[entry] = new_raw_key().hex()
    w = _service(d, kr)
    with pytest.raises(WrongKey):
        w.unlock()
    w.close()
    assert vault_files_hash(d) == before


def test_wrong_raw_key_even_when_header_says_it_matches(tmp_path: Path) -> None:
    """Bypass the header check: SQLCipher itself refuses, read-only, and the file stays unchanged."""
    d = _closed_wallet(tmp_path, MemoryKeyring())
    before = vault_files_hash(d)
    key = new_raw_key()
    header = Vault(d).read_header().with_check(key)
    with pytest.raises(VaultDamaged):
        Vault(d).open(key, header)
    assert vault_files_hash(d) == before


@pytest.mark.parametrize("where", ["first_page", "middle", "last_byte"])
def test_flipped_byte(tmp_path: Path, where: str) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    db = d / "vault.db"
    data = bytearray(db.read_bytes())
    pos = {"first_page": 100, "middle": len(data) // 2 + 7, "last_byte": len(data) - 1}[where]
    data[pos] ^= 0x01
    db.write_bytes(data)
    before = vault_files_hash(d)
    w = _service(d, kr)
    with pytest.raises(VaultDamaged, match="damaged"):
        w.unlock()
    w.close()
    assert vault_files_hash(d) == before


@pytest.mark.parametrize("cut", [4096, 100])
def test_truncated_file(tmp_path: Path, cut: int) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    db = d / "vault.db"
    db.write_bytes(db.read_bytes()[:-cut])
    before = vault_files_hash(d)
    w = _service(d, kr)
    with pytest.raises(VaultDamaged):
        w.unlock()
    w.close()
    assert vault_files_hash(d) == before


def test_newer_schema(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    key = KeyStore(kr).load(Vault(d).read_header().vault_id, 1)
    conn = sqlcipher3.connect(str(d / "vault.db"), isolation_level=None)
    conn.execute(f"PRAGMA key = \"x'{bytes(key).hex()}'\"")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = vault_files_hash(d)
    w = _service(d, kr)
    with pytest.raises(VaultTooNew, match=r"newer version|schema version 99"):
        w.unlock()
    w.close()
    assert vault_files_hash(d) == before


def test_missing_keyring(tmp_path: Path) -> None:
    d = _closed_wallet(tmp_path, MemoryKeyring())
    before = vault_files_hash(d)
    for backend in (keyring.backends.fail.Keyring(), MemoryKeyring()):  # no keyring at all; keyring without the key
        w = _service(d, backend)
        with pytest.raises(KeyringUnavailable):
            w.unlock()
        w.close()
    assert vault_files_hash(d) == before


def test_no_keyring_means_passphrase(tmp_path: Path) -> None:
    w = _service(tmp_path / "w", keyring.backends.fail.Keyring())
    assert w.needs_passphrase()
    with pytest.raises(PassphraseRequired):
        w.create()
    w.create("a long passphrase")
    header = json.loads((tmp_path / "w" / "vault.json").read_text())
    assert header["key_source"] == "passphrase" and len(header["salt"]) == 32 and header["kdf"]["time_cost"] >= 1
    assert w.session._key is not None and bytes(w.session._key).hex() not in json.dumps(header)
    w.close()


def test_second_process_refused(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    d = _closed_wallet(tmp_path, kr)
    holder = textwrap.dedent(
        f"""
        import sys, time
        from wallet_app.vault.store import ProcessLock
        ProcessLock(__import__("pathlib").Path({str(d / "vault.lock")!r})).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        before = vault_files_hash(d)
        w = _service(d, kr)
        with pytest.raises(VaultInUse, match="already running"):
            w.unlock()
        assert vault_files_hash(d) == before
    finally:
        proc.kill()
        proc.wait()
    w.unlock()  # the lock dies with the process
    w.close()


def test_backup_restore_wrong_passphrase_and_damage(tmp_path: Path) -> None:
    w = new_wallet(tmp_path / "w")
    w.set_setting("greeting", "at backup time")
    backup = tmp_path / "wallet.backup"
    w.backup(backup, "backup passphrase")
    w.set_setting("greeting", "later")
    before = vault_files_hash(tmp_path / "w")
    with pytest.raises(WrongBackupPassphrase):
        w.restore(backup, "not the passphrase")
    damaged = tmp_path / "damaged.backup"
    data = bytearray(backup.read_bytes())
    data[-20] ^= 0x80
    damaged.write_bytes(data)
    with pytest.raises(BackupDamaged):
        w.restore(damaged, "backup passphrase")
    (tmp_path / "junk.backup").write_bytes(b"hello")
    with pytest.raises(BackupDamaged):
        w.restore(tmp_path / "junk.backup", "backup passphrase")
    assert vault_files_hash(tmp_path / "w") == before
    assert w.get_setting("greeting") == "later"
    w.restore(backup, "backup passphrase")
    assert w.get_setting("greeting") == "at backup time"
    w.close()


def test_change_passphrase_and_move_between_keyring_and_passphrase(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    d = tmp_path / "w"
    w = new_wallet(d, keyring=kr, passphrase="first")
    w.set_setting("n", 1)
    with pytest.raises(WrongKey):
        w.change_passphrase("second", old_passphrase="not first")
    w.change_passphrase("second", old_passphrase="first")
    w.close()
    w = _service(d, kr)
    with pytest.raises(WrongKey):
        w.unlock("first")
    w.unlock("second")
    w.change_passphrase(None, old_passphrase="second")  # to the keyring
    w.close()
    w = _service(d, kr)
    assert not w.needs_passphrase()
    w.unlock()
    assert w.get_setting("n") == 1
    w.change_passphrase("third")  # back to a passphrase; the old keyring entry goes
    assert kr.entries == {}
    w.close()
    w = _service(d, kr)
    w.unlock("third")
    w.close()


def test_auto_lock_forgets_secrets(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = KeyStore(MemoryKeyring(), kdf=FAST_TEST_KDF)
    w = WalletService(tmp_path / "w", key_store=store, clock=lambda: now[0])
    locked: list[bool] = []
    w.events.vault_locked.append(lambda: locked.append(True))
    w.create()
    w.set_setting("auto_lock_s", 60)
    now[0] += 59
    assert not w.check_idle()
    now[0] += 2
    assert w.check_idle() and locked == [True]
    assert w.state == "locked" and w.session._key is None and not w.chains._traversals
    with pytest.raises(WalletLocked):
        w.balance()
    w.unlock()
    assert w.balance() == []
    w.close()


def test_rekey_interrupted_before_the_header_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kr = MemoryKeyring()
    d = tmp_path / "w"
    w = new_wallet(d, keyring=kr, passphrase="old words")
    w.set_setting("n", 7)
    rekey = w.vault.rekey

    def rekey_then_die(key: bytes) -> None:
        rekey(key)
        raise SystemExit("power cut")

    monkeypatch.setattr(w.vault, "rekey", rekey_then_die)
    with pytest.raises(SystemExit):
        w.change_passphrase("new words", old_passphrase="old words")
    assert (d / "vault.json.next").exists()
    w.close()
    w = _service(d, kr)
    with pytest.raises(WrongKey):
        w.unlock("old words")  # the database was already re-keyed
    w.unlock("new words")  # finishes the job from vault.json.next
    assert w.get_setting("n") == 7 and not (d / "vault.json.next").exists()
    w.close()
    w = _service(d, kr)
    w.unlock("new words")
    w.close()


def test_idle_watch_thread_locks(tmp_path: Path) -> None:
    import time

    w = new_wallet(tmp_path / "w")
    w.set_setting("auto_lock_s", 1)
    w.start_idle_watch(interval_s=0.1)
    deadline = time.monotonic() + 5
    while w.state == "unlocked" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert w.state == "locked"
    w.close()

"""Vault intents: fsync'd at once, applied in the vault's next transaction, and applied at the next open when the
process was killed first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.test_keyring import FileKeyring
from tests.support.wallet import FullDisk, file_hash
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService
from wallet_app.vault.errors import VaultDamaged, VaultWriteFailed

ROOT = Path(__file__).resolve().parents[3]


def _note(c: Any, payload: dict[str, Any]) -> None:
    """A test applier: adds the payload's number to a counter setting (so applying twice would show)."""
    row = c.execute("SELECT value_json FROM settings WHERE key = 'notes'").fetchone()
    total = int(row[0]) if row else 0
    c.execute("INSERT OR REPLACE INTO settings VALUES ('notes', ?)", (str(total + payload["n"]),))


def _open(home: Path, keyring_file: Path, note: bool = True) -> WalletService:
    w = WalletService(home, key_store=KeyStore(FileKeyring(keyring_file), kdf=FAST_TEST_KDF))
    if note:
        w.vault.on_intent("note", _note)
    try:
        w.unlock(recover=False)
    except BaseException:
        w.close()
        raise
    return w


def _killed_after_journalling(home: Path, keyring_file: Path, numbers: list[int], at_once: bool = False) -> None:
    """A wallet process journals intents and is killed (SIGKILL) before it applies them (``at_once``: journalled
    applied in their own commit, as a program's payments are)."""
    script = (
        "import os, signal; from pathlib import Path; import wallet_app.vault.store as store;"
        "store.WORKER_DELAY_S = 600;"  # the vault's worker must not apply them first
        "from tests.support.test_keyring import FileKeyring; from wallet_app.keys import FAST_TEST_KDF, KeyStore;"
        "from wallet_app.services import WalletService;"
        "from tests.wallet_app.vault.test_intents import _note;"
        f"w = WalletService(Path({str(home)!r}), key_store=KeyStore(FileKeyring(Path({str(keyring_file)!r})),"
        " kdf=FAST_TEST_KDF)); w.vault.on_intent('note', _note); w.unlock(recover=False);"
        f"[w.vault.journal('note', {{'n': n}}, at_once={at_once!r}) for n in {numbers!r}];"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, Path]:
    home, keyring_file = tmp_path / "w", tmp_path / "keyring.json"
    w = WalletService(home, key_store=KeyStore(FileKeyring(keyring_file), kdf=FAST_TEST_KDF))
    w.create()
    w.close()
    return home, keyring_file


def test_an_intent_is_applied_before_the_next_read_and_only_once(home: tuple[Path, Path]) -> None:
    w = _open(*home)
    w.vault.journal("note", {"n": 5})
    w.vault.journal("note", {"n": 7})
    assert w.get_setting("notes") == 12
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    w.close()
    w = _open(*home)
    assert w.get_setting("notes") == 12  # not applied again
    w.close()


def test_intents_of_a_killed_process_are_applied_at_the_next_open(home: tuple[Path, Path]) -> None:
    _killed_after_journalling(*home, [3, 4])
    w = _open(*home)
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    assert w.get_setting("notes") == 7
    w.close()


def test_intents_applied_at_once_survive_a_kill_in_their_tables(home: tuple[Path, Path]) -> None:
    _killed_after_journalling(*home, [3, 4], at_once=True)
    w = _open(*home, note=False)  # nothing left to apply: no applier is needed to open
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    assert w.get_setting("notes") == 7
    w.close()


def test_an_intent_nobody_can_apply_refuses_the_open_and_loses_nothing(home: tuple[Path, Path]) -> None:
    _killed_after_journalling(*home, [1])
    with pytest.raises(VaultDamaged, match="unfinished work"):
        _open(*home, note=False)
    w = _open(*home)  # the wallet that knows the intent still finishes it
    assert w.get_setting("notes") == 1
    w.close()


def test_journalling_an_unknown_kind_writes_nothing(home: tuple[Path, Path]) -> None:
    w = _open(*home)
    before = w.vault.dump()
    with pytest.raises(KeyError):
        w.vault.journal("nobody-applies-this", {})
    assert w.vault.dump() == before
    w.close()


def test_an_intent_that_cannot_be_applied_stops_the_vault_until_it_can(home: tuple[Path, Path]) -> None:
    w = _open(*home)
    disk = FullDisk(_note)
    w.vault.on_intent("note", disk)
    w.vault.journal("note", {"n": 5})  # durable: the intent row is committed and fsync'd
    with pytest.raises(VaultWriteFailed) as refused:
        w.get_setting("notes")  # nobody reads the tables without it...
    assert refused.value.code == "vault_write_failed" and refused.value.http_status == 503
    with pytest.raises(VaultWriteFailed):
        w.vault.journal("note", {"n": 7})  # ...nor records anything after it
    disk.full = False
    assert w.get_setting("notes") == 5  # applied once the disk has room; the refused intent never was
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    w.close()


def test_closing_while_an_intent_cannot_be_applied_keeps_it_for_the_next_open(home: tuple[Path, Path]) -> None:
    w = _open(*home)
    disk = FullDisk(_note)
    w.vault.on_intent("note", disk)
    w.vault.journal("note", {"n": 3})
    w.lock()  # no error: the intent stays in its table
    disk.full = False
    w.unlock(recover=False)  # the same vault object opens again and applies it...
    assert w.get_setting("notes") == 3  # ...exactly once (nothing of the locked session is left to redo it)
    assert w.vault.one("SELECT COUNT(*) FROM intents")[0] == 0
    w.close()
    w = _open(*home)
    assert w.get_setting("notes") == 3
    w.close()


def _pages_in_log(wal: Path) -> set[int]:
    """Page numbers the write-ahead log holds a frame of (32-byte log header; each frame: 24-byte header whose first
    4 bytes are the page number, then the page)."""
    data = wal.read_bytes()
    frame = 24 + 4096
    return {int.from_bytes(data[at : at + 4], "big") for at in range(32, len(data) - frame + 1, frame)}


def test_a_damaged_vault_left_by_a_killed_process_is_refused_and_left_as_it_was(home: tuple[Path, Path]) -> None:
    """After a crash the log holds transactions only a writer can recover, and a writer that closes writes them into
    the database. The open checks a copy first, so refusing the damaged vault changes neither file."""
    _killed_after_journalling(*home, [2])
    vault_dir = home[0]
    db, wal = vault_dir / "vault.db", vault_dir / "vault.db-wal"
    assert wal.stat().st_size > 0
    in_log = _pages_in_log(wal)
    page = next(n for n in range(2, db.stat().st_size // 4096 + 1) if n not in in_log)  # only the file has it
    data = bytearray(db.read_bytes())
    data[(page - 1) * 4096 + 1000] ^= 0x01
    db.write_bytes(bytes(data))

    def hashes() -> dict[str, str | None]:
        files = ("vault.db", "vault.db-wal", "vault.json")
        return {name: file_hash(vault_dir / name) if (vault_dir / name).exists() else None for name in files}

    before = hashes()
    with pytest.raises(VaultDamaged):
        _open(*home)
    assert hashes() == before
    assert sorted(p.name for p in vault_dir.iterdir() if p.name.startswith(".open-check")) == []


def test_the_version_changes_with_every_write_and_is_unknown_while_one_waits(home: tuple[Path, Path]) -> None:
    """What a cached read (the allowance's spend today) relies on: equal versions mean nothing was written."""
    w = _open(*home)
    v = w.vault.version()
    assert v is not None and w.vault.version() == v
    w.get_setting("notes")  # a read
    assert w.vault.version() == v
    w.set_setting("x", 1)
    assert w.vault.version() not in (None, v)
    w.vault.journal("note", {"n": 5})  # its application waits for the next use of the vault
    assert w.vault.version() is None
    assert w.get_setting("notes") == 5
    after = w.vault.version()
    assert after is not None and after != v
    w.lock()
    assert w.vault.version() is None
    w.unlock(recover=False)
    assert w.vault.version() not in (None, v, after)  # a new open: never equal to a version before it
    w.close()


def test_the_days_allowance_spend_is_read_again_after_any_write(home: tuple[Path, Path]) -> None:
    w = _open(*home)
    book = w.allowance_book
    assert book.spent_today("v", "EUR").amount == 0
    columns = ("payment_id, quote_id, quote_digest, vendor_id, vendor_name, vendor_key, payment_url, item_url, title, "
               "amount, currency, via, origin, payment_json, created_at, api_url_json, status, updated_at")  # fmt: skip
    with w.vault.tx() as c:  # an allowance payment recorded by any path
        c.execute(f"INSERT INTO spends ({columns}) VALUES ('p1', 'q1', 'd1', 'v', 'V', 'k', 'u', 'u', 't', 7, 'EUR',"
                  " 'allowance', NULL, '{}', ?1, '\"u\"', 'pending', ?1)", (int(w.clock()),))  # fmt: skip
    assert book.spent_today("v", "EUR").amount == 7
    assert book.spent_today("v", "EUR").amount == 7  # (from the cache: nothing written since)
    w.close()

"""Deferred vault writes: done by the vault's worker or before anyone's next use of the vault, whichever is first."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.test_keyring import MemoryKeyring
from tests.support.wallet import new_wallet
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService


def _setting_writer(key: str, value: str) -> Any:
    def write(c: Any) -> None:
        c.execute("INSERT INTO settings VALUES (?, ?)", (key, f'"{value}"'))

    return write


def test_the_next_read_from_any_thread_sees_a_deferred_write(wallet: WalletService) -> None:
    wallet.vault.defer(_setting_writer("a", "one"))
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(wallet.get_setting("a")))
    reader.start()
    reader.join()
    assert seen == ["one"]


def test_the_worker_does_it_when_nobody_uses_the_vault(wallet: WalletService) -> None:
    done = threading.Event()
    by: list[str] = []

    def after() -> None:
        by.append(threading.current_thread().name)
        done.set()

    wallet.vault.defer(_setting_writer("b", "two"), after=after)
    assert done.wait(timeout=10)
    assert by == ["vault-writer"]
    assert wallet.get_setting("b") == "two"


def test_a_failing_deferred_write_is_dropped_and_the_rest_go_on(
    wallet: WalletService, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(c: Any) -> None:
        c.execute("INSERT INTO settings VALUES ('c', '\"half\"')")
        raise RuntimeError("disk on fire")

    wallet.vault.defer(broken)
    wallet.vault.defer(_setting_writer("d", "four"))
    with caplog.at_level(logging.ERROR, logger="wallet_app.vault.store"):
        assert wallet.get_setting("d") == "four"
    assert wallet.get_setting("c") is None  # rolled back as a whole
    assert "deferred vault write failed" in caplog.text


def test_closing_runs_pending_deferred_writes(tmp_path: Path) -> None:
    kr = MemoryKeyring()
    w = new_wallet(tmp_path / "w", keyring=kr)
    w.vault.defer(_setting_writer("e", "five"))
    w.close()
    again = WalletService(tmp_path / "w", key_store=KeyStore(kr, kdf=FAST_TEST_KDF))
    again.unlock(recover=False)
    assert again.get_setting("e") == "five"
    again.close()

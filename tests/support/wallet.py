"""Helpers to run a real wallet service against real brokers and vendors in tests, benchmarks and the crash test."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlcipher3

from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from tests.support.broker import TEST_CARD
from tests.support.test_keyring import FileKeyring, MemoryKeyring
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService

__all__ = [
    "FullDisk",
    "WalletOnDisk",
    "file_hash",
    "full_disk_for_spends",
    "funded_wallet",
    "new_wallet",
    "quote_for",
    "vault_files_hash",
]


class FullDisk:
    """Fault injection for the one failure no test disk gives on demand: the disk fills up after an intent's own
    one-row commit went through, so applying the intent to the tables fails. Wraps an intent applier; while
    ``full`` it raises SQLite's own "disk is full" error."""

    def __init__(self, applier: Callable[[Any, dict[str, Any]], None]) -> None:
        self.applier = applier
        self.full = True

    def __call__(self, conn: Any, payload: dict[str, Any]) -> None:
        if self.full:
            raise sqlcipher3.OperationalError("database or disk is full")
        self.applier(conn, payload)


def full_disk_for_spends(wallet: WalletService) -> FullDisk:
    """Make applying the wallet's spend intents fail (a full disk) until ``.full`` is set to False."""
    from wallet_app.services.payments import SPEND_INTENT

    disk = FullDisk(wallet.payments._apply_spend)
    wallet.vault.on_intent(SPEND_INTENT, disk)
    return disk


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def vault_files_hash(data_dir: Path) -> dict[str, str]:
    """SHA-256 of the vault and its header: tests compare them to prove a refused operation wrote nothing."""
    return {name: file_hash(data_dir / name) for name in ("vault.db", "vault.json") if (data_dir / name).exists()}


def new_wallet(data_dir: Path, keyring: Any = None, passphrase: str | None = None, **kwargs: Any) -> WalletService:
    """A created and unlocked wallet: key in ``keyring`` (a fresh in-memory test keyring by default), or from
    ``passphrase`` with fast Argon2 parameters."""
    store = KeyStore(keyring if keyring is not None else MemoryKeyring(), kdf=FAST_TEST_KDF)
    wallet = WalletService(data_dir, key_store=store, **kwargs)
    wallet.create(passphrase)
    return wallet


def funded_wallet(
    wallet: WalletService, broker_url: str, chains: int = 1, coins: int = 100, coin_value: int = 1
) -> str:
    """Trust the broker, open an account and buy ``chains`` chains with the test card; return the broker id."""
    info = wallet.add_broker(broker_url)
    wallet.trust_broker(info.broker_id)
    wallet.register(info.broker_id, "user_" + secrets.token_hex(4), "correct horse battery staple")
    for _ in range(chains):
        wallet.buy_coins(info.broker_id, coins, Money(coin_value, "EUR"), card=TEST_CARD)
    return info.broker_id


def quote_for(vendor_url: str, item_id: str, session: requests.Session | None = None) -> tuple[Any, Any]:
    """``POST /v1/quotes``: the quote wire and the vendor certificate wire."""
    s = session or requests
    resp = s.post(f"{vendor_url}/v1/quotes", json={"item_id": item_id}, timeout=30)
    resp.raise_for_status()
    data = resp.json()
    return data["quote"], data["vendor_certificate"]


def parsed_quote(vendor_url: str, item_id: str) -> tuple[Signed[Quote], Signed[VendorCertificate]]:
    q, c = quote_for(vendor_url, item_id)
    return Signed.from_wire(q, Quote), Signed.from_wire(c, VendorCertificate)


@dataclass(frozen=True)
class WalletOnDisk:
    """A wallet in ``home`` whose key is in a file keyring: opened by this process (:meth:`service`) or by a child
    process that is then killed or ends (:meth:`opener`), as a crash test needs."""

    home: Path
    keyring_file: Path

    @classmethod
    def funded(cls, tmp_path: Path, broker_url: str, coins: int) -> WalletOnDisk:
        """A new wallet under ``tmp_path`` with one chain of ``coins`` one-cent coins, closed."""
        made = cls(tmp_path / "w", tmp_path / "keyring.json")
        w = made.service()
        w.create()
        funded_wallet(w, broker_url, chains=1, coins=coins)
        w.close()
        return made

    def service(self) -> WalletService:
        return WalletService(self.home, key_store=KeyStore(FileKeyring(self.keyring_file), kdf=FAST_TEST_KDF))

    def opener(self) -> str:
        """Python statements (one line) that open and unlock this wallet as ``w`` in a child process."""
        return (
            "from pathlib import Path; from tests.support.test_keyring import FileKeyring;"
            "from wallet_app.keys import FAST_TEST_KDF, KeyStore; from wallet_app.services import WalletService;"
            f"w = WalletService(Path({str(self.home)!r}), key_store=KeyStore(FileKeyring(Path("
            f"{str(self.keyring_file)!r})), kdf=FAST_TEST_KDF)); w.unlock();"
        )

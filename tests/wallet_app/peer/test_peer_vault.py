"""The peer's records live in the wallet's SQLCipher vault (issue 20): nothing in plain files, a one-time import of
the plain files of wallets from before (tampered ones refused whole), sharing stops when the vault locks, and sharing
comes back after a restart of the wallet."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests

from netpay.errors import MalformedMessage, WalletLocked
from netpay.keys import SigningKey
from tests.support.broker import RunningBroker
from tests.support.peer import make_peer
from tests.support.test_keyring import MemoryKeyring
from tests.support.wallet import funded_wallet
from vendor_stub.storage import Store
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.peer.server import PeerServer
from wallet_app.peer.shares import Share
from wallet_app.services import WalletService


@pytest.fixture
def seller_wallet(wallet_factory: Callable[..., WalletService], broker: RunningBroker) -> tuple[WalletService, str]:
    wallet = wallet_factory("seller")
    return wallet, funded_wallet(wallet, broker.url, chains=0)


@pytest.fixture
def seller(seller_wallet: tuple[WalletService, str], broker: RunningBroker, tmp_path: Path) -> Iterator[PeerServer]:
    wallet, broker_id = seller_wallet
    peer = make_peer(wallet, broker_id, broker.url, broker.public_key.hex, tmp_path / "seller-peer")
    yield peer
    peer.stop()


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _buyer(wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path) -> PeerBuyer:
    wallet = wallet_factory("buyer")
    funded_wallet(wallet, broker.url, chains=1, coins=100)
    return PeerBuyer(wallet, tmp_path / "downloads")


def _vault_bytes(wallet: WalletService) -> bytes:
    path = Path(wallet.session.vault.path)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


def test_a_sale_is_recorded_in_the_encrypted_vault_and_in_no_plain_file(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], wallet_factory: Callable[..., WalletService],
    broker: RunningBroker, tmp_path: Path,
) -> None:  # fmt: skip
    title = "Unmistakable-Title-4711"
    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(5000)), price=4, title=title)
    seller.start()
    buyer = _buyer(wallet_factory, broker, tmp_path)
    got = buyer.buy(buyer.search(broker.url)["results"][0])
    assert got.paid_now
    seller.vendor.store.writer.run(lambda c: None)  # the desk's writes are committed
    wallet = seller_wallet[0]
    assert wallet.vault.one("SELECT COUNT(*) FROM peer_payments")[0] == 1
    assert wallet.vault.one("SELECT COUNT(*) FROM peer_shares")[0] == 1
    assert not (tmp_path / "seller-peer").exists() or not any((tmp_path / "seller-peer").iterdir())
    assert title.encode() not in _vault_bytes(wallet) and b"peer_payments" not in _vault_bytes(wallet)
    assert seller.earnings() == {"downloads": 1, "earned": 4, "pending": 4, "redeemed": 0, "rejected": 0}


def _plain_files(folder: Path, shared: Path) -> dict[str, object]:
    """The plain files a wallet from before left in ``folder``: a key, a secret, a share list and the desk's
    database with one redeemed and one pending sale."""
    folder.mkdir(parents=True)
    seed = os.urandom(32)
    (folder / "vendor_key").write_bytes(seed)
    (folder / "access_secret").write_bytes(os.urandom(32))
    (folder / "port").write_text("45678")
    import hashlib

    digest = hashlib.sha256(shared.read_bytes()).hexdigest()
    st = shared.stat()
    share = Share(digest[:32], str(shared), "Old song", "", st.st_size, digest, 6, "EUR", st.st_dev, st.st_ino,
                  st.st_mtime_ns)  # fmt: skip
    (folder / "shares.json").write_text(json.dumps([asdict(share)]))
    store = Store(folder / "vendor.sqlite3")
    chain = os.urandom(32).hex()

    def rows(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO chains(chain_id, certificate, coin_value, currency, status, base_index, base_payword, "
                  "base_source, last_index, last_payword, exact, acquired_at) VALUES "
                  "(?, '{}', 1, 'EUR', 'held', 0, ?, 'touchstone', 9, ?, 1, 1)",
                  (chain, "aa" * 32, "bb" * 32))  # fmt: skip
        for pid, status, frm, to in (("p1", "redeemed", 0, 6), ("p2", "pending", 6, 9)):
            c.execute("INSERT INTO payments VALUES (?, ?, 'd', ?, ?, 'EUR', '{}', 1)", (pid, "q" + pid, digest[:32],
                                                                                           to - frm))  # fmt: skip
            c.execute("INSERT INTO spends(payment_id, chain_id, from_index, to_index, payword, coins, amount, "
                      "currency, created_at, reported_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'EUR', 1, 1, ?)",
                      (pid, chain, frm, to, "cc" * 32, to - frm, to - frm, status))  # fmt: skip

    store.write(rows)
    store.close()
    return {"seed": seed, "share": share}


def test_the_plain_files_of_an_older_wallet_move_into_the_vault_once_and_are_deleted(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], tmp_path: Path
) -> None:
    old = _plain_files(tmp_path / "seller-peer", _file(tmp_path, "old.ogg", os.urandom(3000)))
    counts = seller.import_plain_files()
    assert counts is not None and counts["shares"] == 1 and counts["payments"] == 2 and counts["spends"] == 2
    assert list((tmp_path / "seller-peer").iterdir()) == []
    assert seller.key.public.hex == SigningKey.from_seed(old["seed"]).public.hex  # type: ignore[arg-type]
    assert [s.title for s in seller.shares.all()] == ["Old song"]
    assert seller.earnings() == {"downloads": 2, "earned": 9, "pending": 3, "redeemed": 6, "rejected": 0}
    assert seller.import_plain_files() is None  # once
    seller.start()  # the imported records serve: the desk runs on them
    assert seller.running


@pytest.mark.parametrize("damage", ["short key", "not json", "id not the hash", "price as text", "not a database",
                                    "extra field"])  # fmt: skip
def test_a_tampered_plain_file_is_refused_whole_and_nothing_changes(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "seller-peer"
    _plain_files(folder, _file(tmp_path, "old.ogg", os.urandom(3000)))
    shares = json.loads((folder / "shares.json").read_text())
    if damage == "short key":
        (folder / "vendor_key").write_bytes(os.urandom(31))
    elif damage == "not json":
        (folder / "shares.json").write_text("[{")
    elif damage == "id not the hash":
        shares[0]["item_id"] = "0" * 32
    elif damage == "price as text":
        shares[0]["price"] = "6"
    elif damage == "extra field":
        shares[0]["path_override"] = "/etc/shadow"
    elif damage == "not a database":
        (folder / "vendor.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    if damage in ("id not the hash", "price as text", "extra field"):
        (folder / "shares.json").write_text(json.dumps(shares))
    before = sorted(p.name for p in folder.iterdir())
    wallet = seller_wallet[0]
    with pytest.raises(MalformedMessage, match="nothing was imported"):
        seller.import_plain_files()
    with pytest.raises(MalformedMessage):
        seller.start()  # sharing cannot start on records it could not bring over
    assert not seller.running
    assert sorted(p.name for p in folder.iterdir()) == before
    for table in ("peer_secrets", "peer_shares", "peer_payments", "peer_spends", "peer_chains"):
        assert wallet.vault.one(f"SELECT COUNT(*) FROM {table}")[0] == 0, table


def test_a_shared_file_changed_since_it_was_shared_is_not_imported(seller: PeerServer, tmp_path: Path) -> None:
    shared = _file(tmp_path, "old.ogg", os.urandom(3000))
    _plain_files(tmp_path / "seller-peer", shared)
    shared.write_bytes(os.urandom(3000))  # same name, other content: the old hash no longer holds
    counts = seller.import_plain_files()
    assert counts is not None and counts["shares"] == 0 and seller.shares.all() == []


def test_locking_the_vault_stops_sharing_and_a_locked_wallet_cannot_start_it(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], tmp_path: Path
) -> None:
    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(2000)), price=2)
    url = seller.switch_on()
    wallet = seller_wallet[0]
    wallet.lock()
    assert not seller.running and "locked" in seller.stopped_because
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/catalog", timeout=5)
    with pytest.raises(WalletLocked, match="unlock"):
        seller.start()
    wallet.unlock()
    assert seller.start() == url and seller.running  # same port: kept in the vault


def test_sharing_comes_back_after_the_wallet_restarts_and_a_buyer_can_buy(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], wallet_factory: Callable[..., WalletService],
    broker: RunningBroker, tmp_path: Path, test_keyring: MemoryKeyring,
) -> None:  # fmt: skip
    data = _file(tmp_path, "a.bin", os.urandom(4000))
    seller.shares.add_file(data, price=3, title="Kept")
    url = seller.switch_on()
    wallet, broker_id = seller_wallet
    seller.stop()  # the wallet quits: sharing stops with it, but stays switched on
    wallet.close()

    again = WalletService(wallet.session.directory, key_store=KeyStore(test_keyring, kdf=FAST_TEST_KDF))
    again.unlock()
    try:
        peer = make_peer(again, broker_id, broker.url, broker.public_key.hex, tmp_path / "seller-peer")
        assert peer.resume() and peer.base_url == url
        assert [(s.title, s.price) for s in peer.shares.all()] == [("Kept", 3)]
        buyer = _buyer(wallet_factory, broker, tmp_path)
        got = buyer.buy(buyer.search(broker.url, "Kept")["results"][0])
        assert got.paid_now and got.path.read_bytes() == data.read_bytes()
        # switched off by the user: the next start stays off
        peer.switch_off()
        peer2 = make_peer(again, broker_id, broker.url, broker.public_key.hex, tmp_path / "seller-peer")
        assert not peer2.resume() and not peer2.running
    finally:
        peer.stop()
        again.close()


def test_a_buyer_replaying_a_payment_after_the_seller_restarted_is_not_paid_twice(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(2000)), price=5)
    seller.start()
    buyer = _buyer(wallet_factory, broker, tmp_path)
    buyer.buy(buyer.search(broker.url)["results"][0])
    body = json.loads(buyer.wallet.vault.one("SELECT payment_json FROM spends")[0])
    seller.stop()
    url = seller.start()  # the desk starts again on the records in the vault
    first = requests.post(f"{url}/v1/payments", json=body, timeout=10)
    second = requests.post(f"{url}/v1/payments", json=body, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.json()["receipt"] == second.json()["receipt"]
    assert seller.earnings()["downloads"] == 1 and seller.earnings()["earned"] == 5


def _unspent(wallet: WalletService) -> int:
    return sum(c.unspent * c.coin_value.amount for c in wallet.list_chains())


def test_a_peer_listing_another_hash_than_its_file_sends_is_caught_and_nothing_is_kept(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    import hashlib
    from dataclasses import replace

    real = seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(3000)), price=2, title="Liar")
    fake = hashlib.sha256(b"what the buyer was promised").hexdigest()
    shares = seller.shares._loaded()  # the lying peer lists (and sells) a hash its file does not have
    shares.pop(real.item_id)
    shares[fake[:32]] = replace(real, item_id=fake[:32], sha256=fake)
    seller.start()
    buyer = _buyer(wallet_factory, broker, tmp_path)
    listing = buyer.search(broker.url, "Liar")["results"][0]
    assert listing["sha256"] == fake
    with pytest.raises(MalformedMessage, match="does not have the listed SHA-256"):
        buyer.buy(listing)
    assert list((tmp_path / "downloads").iterdir()) == []  # neither the file nor a part of it is kept
    # the buyer holds the seller's signed receipt for the item it was promised (evidence for a refund request)
    row = buyer.wallet.vault.one("SELECT payment_id FROM spends WHERE vendor_id = ?", (listing["peer_id"],))
    receipt = buyer.wallet.payment_receipt(row[0])
    assert receipt is not None and receipt.receipt.body.item_id == fake[:32]


def test_an_index_entry_with_another_peer_key_is_refused_before_anything_is_paid(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    from netpay.errors import UntrustedSigner

    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(3000)), price=2)
    seller.start()
    buyer = _buyer(wallet_factory, broker, tmp_path)
    listing = dict(buyer.search(broker.url)["results"][0], public_key=SigningKey.generate().public.hex)
    with pytest.raises(UntrustedSigner):
        buyer.buy(listing)
    assert _unspent(buyer.wallet) == 100
    assert buyer.wallet.vault.one("SELECT COUNT(*) FROM peer_downloads")[0] == 0


def test_an_old_plain_receipt_file_moves_into_the_vault_and_a_forged_one_is_dropped(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    data = os.urandom(3000)
    seller.shares.add_file(_file(tmp_path, "song.ogg", data), price=2, title="song.ogg")
    seller.start()
    buyer = _buyer(wallet_factory, broker, tmp_path)
    listing = buyer.search(broker.url)["results"][0]
    got = buyer.buy(listing)
    paid = buyer.wallet.payment_receipt(got.payment_id)
    # as a wallet from before left it: the record in a plain file beside a download that broke off
    quote_id = buyer.wallet.vault.one("SELECT quote_id FROM peer_downloads")[0]
    with buyer.wallet.vault.tx() as c:
        c.execute("DELETE FROM peer_downloads")
    got.path.unlink()
    sidecar = got.path.with_name(f".{got.path.name}.receipt.json")
    sidecar.write_text(json.dumps({"listing": listing, "quote_id": quote_id, "peer_id": listing["peer_id"],
                                   "receipt": paid.receipt.to_wire(), "access_token": paid.access_token}))  # fmt: skip
    again = buyer.buy(listing)
    assert not again.paid_now and again.path.read_bytes() == data and not sidecar.exists()
    assert buyer.wallet.vault.one("SELECT quote_id FROM peer_downloads")[0] == quote_id
    assert _unspent(buyer.wallet) == 98  # paid once
    # a forged or damaged one is dropped: it neither pays nor stops the purchase
    again.path.unlink()
    sidecar.write_text('{"listing": {"sha256": "00"}, "quote_id": 7}')
    third = buyer.buy(listing)
    assert not third.paid_now and third.path.read_bytes() == data and not sidecar.exists()
    assert _unspent(buyer.wallet) == 98


def test_the_vault_holds_every_table_and_column_of_the_vendor_desk(
    seller_wallet: tuple[WalletService, str], tmp_path: Path
) -> None:
    """A vendor migration not mirrored in the vault (a new table or column) fails here, not in a customer's wallet."""
    from wallet_app.peer.vaultdb import PEER_TABLES

    plain = Store(tmp_path / "plain.sqlite3")
    try:
        tables = {r[0] for r in plain.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == set(PEER_TABLES)
        for table in PEER_TABLES:
            want = [tuple(r)[1:] for r in plain.query(f"PRAGMA table_info({table})")]
            got = [tuple(r)[1:] for r in seller_wallet[0].vault.query(f"PRAGMA table_info(peer_{table})")]
            assert got == want, table
    finally:
        plain.close()


def test_a_lock_while_sharing_is_starting_leaves_nothing_running(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], tmp_path: Path
) -> None:
    """The lock cannot wait for a start under way (the start may need the wallet's lock the locking thread holds):
    the start finds out on its way and nothing stays listening on a locked vault."""
    import threading

    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(2000)), price=2)
    listening, go_on = threading.Event(), threading.Event()
    publish = seller.publish

    def slow_publish() -> Any:
        listening.set()  # the port is open, the listings not sent yet
        go_on.wait(30)
        return publish()

    seller.publish = slow_publish  # type: ignore[method-assign]
    outcome: list[BaseException | str] = []

    def start() -> None:
        try:
            outcome.append(seller.start())
        except BaseException as exc:
            outcome.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    assert listening.wait(30)
    url = seller.base_url
    seller_wallet[0].lock()  # returns at once, though the start holds the peer
    go_on.set()
    starter.join(30)
    assert not seller.running and seller.vendor is None
    assert isinstance(outcome[0], WalletLocked) or "locked" in seller.stopped_because
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/catalog", timeout=5)


def test_a_backup_carries_the_peer_records_and_a_restore_stops_sharing_first(
    seller: PeerServer, seller_wallet: tuple[WalletService, str], tmp_path: Path
) -> None:
    wallet = seller_wallet[0]
    seller.shares.add_file(_file(tmp_path, "a.bin", os.urandom(2000)), price=2, title="Backed up")
    key = seller.key.public.hex
    seller.switch_on()
    wallet.backup(tmp_path / "wallet.backup", "backup passphrase")
    seller.shares.remove(seller.shares.all()[0].item_id)
    wallet.restore(tmp_path / "wallet.backup", "backup passphrase")
    assert not seller.running  # its connections to the replaced vault were closed first
    assert [s.title for s in seller.shares.all()] == ["Backed up"] and seller.key.public.hex == key
    seller.start()
    assert seller.running

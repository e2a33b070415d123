"""Selling and buying between two wallets through the broker's CIS (issue 20), on loopback."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from netpay.errors import NetPayError, PeerUnavailable
from tests.support.broker import RunningBroker
from tests.support.peer import make_peer
from tests.support.vendor import RunningVendor
from tests.support.wallet import funded_wallet, parsed_quote
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.peer.server import PeerServer
from wallet_app.services import WalletService


@pytest.fixture
def seller(wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path) -> Iterator[PeerServer]:
    wallet = wallet_factory("seller")
    broker_id = funded_wallet(wallet, broker.url, chains=0)
    peer = make_peer(wallet, broker_id, broker.url, broker.public_key.hex, tmp_path / "seller-peer")
    yield peer
    peer.stop()


def _file(tmp_path: Path, name: str, size: int) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def test_a_wallet_sells_a_file_another_finds_pays_downloads_and_the_money_adds_up(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    path = _file(tmp_path, "song.ogg", 700_000)
    seller.shares.add_file(path, price=7, title="Demo song", description="a song")
    seller.start()
    buyer_wallet = wallet_factory("buyer")
    funded_wallet(buyer_wallet, broker.url, chains=1, coins=100)
    buyer = PeerBuyer(buyer_wallet, tmp_path / "downloads")
    found = buyer.search(broker.url, "song")
    assert found["total"] == 1
    listing = found["results"][0]
    assert listing["seller"] == "Alice's files" and listing["price"] == {"amount": 7, "currency": "EUR"}
    checked = buyer.quote(listing)
    assert checked.vendor_name == "Alice's files" and checked.price.amount == 7
    seen: list[int] = []
    got = buyer.buy(listing, checked, progress=lambda done, total: seen.append(done))
    assert got.paid_now and got.path.read_bytes() == path.read_bytes() and seen[-1] == 700_000
    assert hashlib.sha256(got.path.read_bytes()).hexdigest() == listing["sha256"]
    assert buyer_wallet.payment_receipt(got.payment_id) is not None
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == [got.path.name]  # no plain receipt beside it
    # buying the same file again neither pays nor downloads again
    again = buyer.buy(listing)
    assert not again.paid_now
    assert seller.earnings()["downloads"] == 1 and seller.earnings()["earned"] == 7
    # the seller redeems in a batch; the broker pays the peer's account as a vendor's
    summary = seller.redeem_now()
    assert summary["accepted_amount"] == 7
    assert seller.earnings()["redeemed"] == 7
    payable = broker.session.get(f"{broker.url}/v1/vendors/{seller.peer_id}/account",
                                 headers={"X-Operator-Token": broker.operator_token}).json()  # fmt: skip
    assert payable["payable"]["amount"] == 7
    # the wallet sees the same at the broker, asking with its peer key; another key cannot read it
    assert seller.broker_account()["payable"] == {"amount": 7, "currency": "EUR"}
    from netpay.keys import SigningKey

    real_key, seller._key = seller._key, SigningKey.generate()
    with pytest.raises(NetPayError) as refused:
        seller.broker_account()
    assert refused.value.code in ("forbidden", "bad_signature", "untrusted_signer")
    seller._key = real_key
    assert _unspent(buyer_wallet) == 100 - 7


def _unspent(wallet: WalletService) -> int:
    return sum(c.unspent * c.coin_value.amount for c in wallet.list_chains())


def test_a_broken_download_resumes_without_paying_twice(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    path = _file(tmp_path, "film.mkv", 32 << 20)  # more than loopback socket buffers hold: the stop really cuts it
    seller.shares.add_file(path, price=5)
    seller.start()
    buyer_wallet = wallet_factory("buyer")
    funded_wallet(buyer_wallet, broker.url, chains=1, coins=50)
    buyer = PeerBuyer(buyer_wallet, tmp_path / "downloads")
    listing = buyer.search(broker.url)["results"][0]

    def stop_half_way(done: int, total: int) -> None:
        if done >= 1 << 20 and seller.running:
            seller.stop()  # the seller goes offline mid-download

    with pytest.raises(PeerUnavailable):
        buyer.buy(listing, progress=stop_half_way)
    part = next((tmp_path / "downloads").glob("*.part"))
    assert 0 < part.stat().st_size < 32 << 20
    assert _unspent(buyer_wallet) == 45
    seller.start()  # back online, maybe on another port: the CIS lists the new address
    listing = buyer.search(broker.url)["results"][0]
    got = buyer.buy(listing)
    assert not got.paid_now and got.path.read_bytes() == path.read_bytes()
    assert _unspent(buyer_wallet) == 45  # paid once
    assert seller.earnings()["downloads"] == 1


def test_sharing_is_off_by_default_and_a_download_needs_a_receipt(
    seller: PeerServer, broker: RunningBroker, tmp_path: Path
) -> None:
    from dataclasses import replace

    off = PeerServer(replace(seller.settings, enabled=False), seller._token, seller.records)
    with pytest.raises(Exception, match="switched off"):
        off.start()
    share = seller.shares.add_file(_file(tmp_path, "a.txt", 1000), price=3)
    url = seller.start()
    resp = requests.get(f"{url}/files/{share.item_id}", timeout=10)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "auth_required"
    resp = requests.get(f"{url}/files/{share.item_id}", headers={"Authorization": "Bearer v1.forged.token"}, timeout=10)
    assert resp.status_code == 403


def test_a_chain_used_at_a_shop_pays_a_peer_next_custody_hand_off(
    seller: PeerServer,
    wallet_factory: Callable[..., WalletService],
    broker: RunningBroker,
    vendor: RunningVendor,
    tmp_path: Path,
) -> None:
    path = _file(tmp_path, "notes.pdf", 50_000)
    seller.shares.add_file(path, price=4)
    seller.start()
    third = wallet_factory("third")
    funded_wallet(third, broker.url, chains=1, coins=100)  # one chain: the same one pays the shop and the peer
    quote, cert = parsed_quote(vendor.url, "harbour-bridge-reopens")
    third.pay_quote(quote, cert, None, "prompt")
    shop_price = quote.body.price.amount
    (chain,) = third.list_chains()
    assert _unspent(third) == 100 - shop_price
    buyer = PeerBuyer(third, tmp_path / "downloads")
    got = buyer.buy(buyer.search(broker.url)["results"][0])
    assert got.paid_now and got.path.read_bytes() == path.read_bytes()
    assert _unspent(third) == 100 - shop_price - 4
    custody = broker.broker.core.db.query(
        "SELECT vendor_id FROM custody WHERE chain_id = ? ORDER BY seq", (chain.chain_id,)
    )
    assert [r["vendor_id"] for r in custody] == [vendor.vendor_id, seller.peer_id]  # the shop handed it to the peer
    assert seller.redeem_now()["accepted_amount"] == 4


def test_a_seller_vanishing_during_the_payment_costs_the_buyer_nothing(
    seller: PeerServer, wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path
) -> None:
    path = _file(tmp_path, "map.png", 30_000)
    seller.shares.add_file(path, price=3)
    seller.start()
    buyer_wallet = wallet_factory("buyer")
    funded_wallet(buyer_wallet, broker.url, chains=1, coins=20)
    buyer = PeerBuyer(buyer_wallet, tmp_path / "downloads")
    listing = buyer.search(broker.url)["results"][0]
    checked = buyer.quote(listing)
    seller.stop()  # gone between the quote and the payment
    with pytest.raises(PeerUnavailable):
        buyer.buy(listing, checked)
    with pytest.raises(PeerUnavailable, match="not confirmed"):
        buyer.buy(listing)  # still away: the payment stays pending, nothing new is paid
    assert _unspent(buyer_wallet) == 17  # the 3 coins are reserved by the pending payment, not spent twice
    seller.start()  # back (same port): the pending payment is finished, then the file downloaded
    got = buyer.buy(listing)
    assert got.path.read_bytes() == path.read_bytes()
    assert _unspent(buyer_wallet) == 17 and seller.earnings() == {
        "downloads": 1,
        "earned": 3,
        "pending": 3,
        "redeemed": 0,
        "rejected": 0,
    }

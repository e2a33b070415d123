"""The peer server serves only what is shared, to whom paid for it, and switches off at once (issue 20)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from netpay.errors import MalformedMessage
from tests.support.broker import RunningBroker
from tests.support.peer import make_peer
from tests.support.wallet import funded_wallet
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.peer.server import PeerServer
from wallet_app.peer.shares import Share
from wallet_app.services import WalletService


@dataclass
class Shop:
    peer: PeerServer
    url: str
    share: Share
    token: str
    content: bytes


@pytest.fixture
def shop(wallet_factory: Callable[..., WalletService], broker: RunningBroker, tmp_path: Path) -> Iterator[Shop]:
    """A seller sharing one 32 MB file (more than loopback socket buffers hold), and the access token of one paid
    purchase of it."""
    seller = wallet_factory("seller")
    broker_id = funded_wallet(seller, broker.url, chains=0)
    peer = make_peer(seller, broker_id, broker.url, broker.public_key.hex, tmp_path / "peer", max_downloads=2)
    folder = tmp_path / "shared"
    folder.mkdir()
    content = os.urandom(32 << 20)
    (folder / "big.bin").write_bytes(content)
    share = peer.shares.add_file(folder / "big.bin", price=2)
    url = peer.start()
    buyer_wallet = wallet_factory("buyer")
    funded_wallet(buyer_wallet, broker.url, chains=1, coins=20)
    buyer = PeerBuyer(buyer_wallet, tmp_path / "downloads")
    listing = buyer.search(broker.url)["results"][0]
    got = buyer.buy(listing)
    token = buyer_wallet.payment_receipt(got.payment_id).access_token
    yield Shop(peer, url, share, token, content)
    peer.stop()


def _get(shop: Shop, path: str, **headers: str) -> requests.Response:
    return requests.get(shop.url + path, headers={"Authorization": f"Bearer {shop.token}", **headers}, timeout=20)


def test_only_shared_files_by_id_never_a_path(shop: Shop, tmp_path: Path) -> None:
    for path in ("/files/../../vault.db", "/files/..%2F..%2Fvault.db", "/files/%2e%2e%2fshares.json",
                 "/files/" + "0" * 32, "/files/" + shop.share.item_id.upper(), "/shares.json", "/vendor.sqlite3",
                 "/vendor_key", "/docs", "/openapi.json", "/callback", "/v1/pay"):  # fmt: skip
        resp = _get(shop, path)
        assert resp.status_code in (401, 403, 404, 405), (path, resp.status_code)
        assert shop.content[:64] not in resp.content
    # the token of one file opens no other file, even a shared one
    other = tmp_path / "shared" / "other.txt"
    other.write_bytes(b"other")
    second = shop.peer.shares.add_file(other, price=1)
    shop.peer.publish()
    assert _get(shop, f"/files/{second.item_id}").status_code == 403
    assert _get(shop, f"/files/{shop.share.item_id}").content == shop.content


def test_routes_are_the_peer_api_only(shop: Shop) -> None:
    assert shop.peer._server is not None
    app = shop.peer._server.server.config.app
    paths = set(app.openapi()["paths"])  # every route, also those of the included vendor API router
    assert {type(r).__name__ for r in app.routes} <= {"Route", "APIRoute", "_IncludedRouter"}  # no mounts
    assert "/files/{item_id}" in paths and "/v1/quotes" in paths and "/v1/payments" in paths
    assert not {p for p in paths if "callback" in p or "vault" in p or "wallet" in p}
    assert not any(p.startswith(("/docs", "/openapi", "/static")) for p in paths)


def test_symlinks_and_changed_files_are_not_served(shop: Shop, tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    outside = tmp_path / "secret.txt"
    outside.write_text("the vault passphrase")
    (folder / "link-out").symlink_to(outside)
    (folder / "sub").mkdir()
    (folder / "sub" / "real.txt").write_text("fine")
    added = shop.peer.shares.add_folder(folder, price=1)
    assert sorted(Path(s.path).name for s in added) == ["big.bin", "real.txt"]  # the link out is skipped
    assert all(Path(s.path).resolve().is_relative_to(folder.resolve()) for s in added)
    with pytest.raises(MalformedMessage):
        shop.peer.shares.add_file(folder / "link-out", price=1)
    # the shared file is swapped for a symlink to a secret after sharing: refused, not followed
    target = Path(shop.share.path)
    target.rename(tmp_path / "moved.bin")
    target.symlink_to(outside)
    resp = _get(shop, f"/files/{shop.share.item_id}")
    assert resp.status_code == 404 and b"passphrase" not in resp.content
    # a file changed after it was hashed is refused too (its hash would be a lie)
    target.unlink()
    target.write_bytes(b"changed")
    assert _get(shop, f"/files/{shop.share.item_id}").status_code == 404


def test_ranges_resume_and_huge_or_bad_ranges_are_safe(shop: Shop) -> None:
    size = len(shop.content)
    resp = _get(shop, f"/files/{shop.share.item_id}", Range="bytes=100-199")
    assert resp.status_code == 206 and resp.content == shop.content[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{size}"
    assert resp.headers["X-Content-SHA256"] == shop.share.sha256
    resp = _get(shop, f"/files/{shop.share.item_id}", Range=f"bytes={size - 10}-{10**40}")
    assert resp.status_code == 206 and resp.content == shop.content[-10:]
    resp = _get(shop, f"/files/{shop.share.item_id}", Range=f"bytes=-{10**40}")
    assert resp.status_code == 206 and len(resp.content) == size
    for bad in (f"bytes={size}-", f"bytes={10**40}-", "bytes=9-3", "bytes=-"):
        resp = _get(shop, f"/files/{shop.share.item_id}", Range=bad)
        assert resp.status_code == 416 and resp.headers["Content-Range"] == f"bytes */{size}", bad
    resp = _get(shop, f"/files/{shop.share.item_id}", Range="bytes=0-1,5-9")  # multiple ranges: the whole file
    assert resp.status_code == 200 and len(resp.content) == size


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_slow_clients_and_floods_are_bounded(shop: Shop) -> None:
    slow = [requests.get(f"{shop.url}/files/{shop.share.item_id}", headers={"Authorization": f"Bearer {shop.token}"},
                         stream=True, timeout=20) for _ in range(2)]  # fmt: skip
    try:
        assert all(r.status_code == 200 for r in slow)  # two readers that never read: both slots held
        flood = [_get(shop, f"/files/{shop.share.item_id}", Range="bytes=0-0") for _ in range(20)]
        # refused: 429 by the download slots, or 503 by uvicorn's connection cap when the flood comes faster
        assert {r.status_code for r in flood} <= {429, 503} and flood[0].status_code == 429
        assert flood[0].json()["error"]["code"] == "rate_limited" and flood[0].headers["Retry-After"] == "2"
        # paying and quoting still work while downloads are saturated
        assert requests.get(f"{shop.url}/v1/info", timeout=10).status_code == 200
    finally:
        for r in slow:
            r.close()
    _wait_until(lambda: _get(shop, f"/files/{shop.share.item_id}", Range="bytes=0-0").status_code == 206,
                "the slots of the closed slow downloads to be released")  # fmt: skip


def test_switching_off_stops_downloads_at_once_and_closes_the_port(shop: Shop, broker: RunningBroker) -> None:
    resp = requests.get(f"{shop.url}/files/{shop.share.item_id}", headers={"Authorization": f"Bearer {shop.token}"},
                        stream=True, timeout=20)  # fmt: skip
    first = next(resp.iter_content(65536))
    assert first
    started = time.monotonic()
    shop.peer.stop()
    assert time.monotonic() - started < 10
    received = len(first)
    with pytest.raises(requests.RequestException):
        for chunk in resp.iter_content(65536):
            received += len(chunk)
        if received < len(shop.content):
            raise requests.ConnectionError("short")
    assert received < len(shop.content)
    host, port = shop.url.split("//")[1].split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass
    assert requests.get(f"{broker.url}/v1/cis/search", timeout=10).json()["total"] == 0

"""P2P-NetPay (issue 20): ``peer_pay_ms`` and ``peer_download_ratio``.

A real broker (the CIS), a seller wallet with its peer server and a buyer wallet run on loopback.

- ``peer_pay_ms``: median time for the buyer to get and check a peer's quote for a listed file and pay it (the
  wallet's usual engine: journal, send, verify the receipt) -- what a click on "Buy and download" costs before the
  first byte of the file.
- ``peer_download_ratio``: throughput of downloading a 32 MB paid file from the peer server (``GET /files/{id}``
  with the receipt's token, through the token check, the share's no-follow open and identity check, and the
  server's chunked stream) divided by the throughput of a plain HTTP download of the same file from the same
  machine (Starlette's ``FileResponse`` under the same uvicorn; it reads 64 KB chunks, the peer 256 KB, which is
  why the peer can be faster). Both are fetched by the same client loop (stream to
  disk in 256 KB chunks, then SHA-256 of the file), interleaved, medians of the repetitions. Target >= 0.8.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

from netpay_web.live import LiveServer
from tests.support.broker import start_broker
from tests.support.peer import make_peer
from tests.support.wallet import funded_wallet, new_wallet
from wallet_app.peer.buyer import PeerBuyer

PAYMENTS = 40
DOWNLOADS = 7
SIZE = 32 << 20


def _fetch(session: requests.Session, url: str, headers: dict[str, str], dest: Path) -> float:
    started = time.perf_counter()
    with session.get(url, headers=headers, stream=True, timeout=60) as resp, open(dest, "wb") as out:
        resp.raise_for_status()
        for chunk in resp.iter_content(256 * 1024):
            out.write(chunk)
    h = hashlib.sha256()
    with open(dest, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    elapsed = time.perf_counter() - started
    assert dest.stat().st_size == SIZE
    return elapsed


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        root = Path(tmp)
        broker = start_broker(root / "broker")
        seller = new_wallet(root / "seller")
        buyer_wallet = new_wallet(root / "buyer")
        try:
            broker_id = funded_wallet(seller, broker.url, chains=0)
            peer = make_peer(seller, broker_id, broker.url, broker.public_key.hex, root / "peer")
            big = root / "shared" / "big.bin"
            big.parent.mkdir()
            big.write_bytes(os.urandom(SIZE))
            small = root / "shared" / "small.txt"
            small.write_bytes(b"a small file\n")
            share = peer.shares.add_file(big, price=1)
            peer.shares.add_file(small, price=1)
            peer.start()
            funded_wallet(buyer_wallet, broker.url, chains=1, coins=PAYMENTS + 20)
            buyer = PeerBuyer(buyer_wallet, root / "downloads")
            listings = {r["title"]: r for r in buyer.search(broker.url)["results"]}
            pay_s = []
            for i in range(PAYMENTS + 3):
                t0 = time.perf_counter()
                checked = buyer.quote(listings["small.txt"])
                buyer_wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
                if i >= 3:
                    pay_s.append(time.perf_counter() - t0)
            checked = buyer.quote(listings["big.bin"])
            big_token = buyer_wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt").access_token

            plain = LiveServer(Starlette(routes=[Route("/big.bin", lambda _r: FileResponse(big))])).start()
            try:
                session = requests.Session()
                peer_url = f"{peer.base_url}/files/{share.item_id}"
                auth = {"Authorization": f"Bearer {big_token}"}
                peer_s, plain_s = [], []
                _fetch(session, peer_url, auth, root / "warm1")
                _fetch(session, f"{plain.url}/big.bin", {}, root / "warm2")
                for _ in range(DOWNLOADS):
                    peer_s.append(_fetch(session, peer_url, auth, root / "peer.bin"))
                    plain_s.append(_fetch(session, f"{plain.url}/big.bin", {}, root / "plain.bin"))
            finally:
                plain.stop()
            peer.stop()
        finally:
            buyer_wallet.close()
            seller.close()
            broker.stop()
    peer_t, plain_t = statistics.median(peer_s), statistics.median(plain_s)
    return {
        "peer_pay_ms": round(statistics.median(pay_s) * 1000, 2),
        "peer_download_ratio": round(plain_t / peer_t, 3),
        "peer_download_mb_s": round(SIZE / peer_t / 1e6, 1),
        "plain_download_mb_s": round(SIZE / plain_t / 1e6, 1),
    }


if __name__ == "__main__":
    print(run())

"""P2P-NetPay end to end (issue 20): two wallets on two test hosts (network namespaces with their own addresses and
a direct link between them), a broker on this machine and no vendor. The seller shares a file, the buyer finds it
on the CIS, pays, downloads and verifies it across the direct link; the seller redeems; the broker's ledger, both
wallets and the seller's earnings agree to the cent. Then a third wallet pays a shop and, with the same chain, the
seller (the custody of the chain passes from the shop to the peer). All traffic is HTTPS, checked against a test CA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import pytest
import trustme

from broker_stub.app import create_app
from broker_stub.ledger import trial_balance
from broker_stub.services import Broker
from netpay_web.live import LiveServer, free_port
from tests.support.broker import broker_settings
from tests.support.netns import TestHost
from tests.support.netns_pair import host_pair
from vendor_stub.app import create_app as create_vendor_app
from vendor_stub.service import key_path
from vendor_stub.settings import VendorSettings

NEWSPAPER = Path(__file__).resolve().parents[2] / "vendor_stub" / "catalogs" / "daily_planet.json"
PRICE = 6


class Proc:
    """A wallet process in a namespace; ``read()`` is its next JSON line."""

    def __init__(self, host: TestHost, role: str, cfg: dict[str, Any], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._err: IO[bytes] = log.open("wb")
        argv = [sys.executable, "-m", "tests.support.peer_host", role, json.dumps(cfg)]
        self.proc = subprocess.Popen(host.command(argv), stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                     stderr=self._err, env=env, text=True)  # fmt: skip

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(30)
            raise AssertionError(f"the wallet process ended:\n{self.log.read_text(errors='replace')[-3000:]}")
        data: dict[str, Any] = json.loads(line)
        return data

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def test_two_wallets_trade_a_file_across_two_hosts_and_the_books_agree(tmp_path: Path, stack: ExitStack) -> None:
    pair = stack.enter_context(host_pair())
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def leaf(name: str, *hosts: str) -> tuple[str, str]:
        cert = ca.issue_cert(*hosts)
        c, k = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
        cert.cert_chain_pems[0].write_to_path(str(c))
        cert.private_key_pem.write_to_path(str(k))
        return str(c), str(k)

    # the broker: one instance, listening (HTTPS) on this machine's end of each host's link
    b_cert, b_key = leaf("broker", pair.a.gateway, pair.b.gateway, "127.0.0.1")
    port_a, port_b = free_port(pair.a.gateway), free_port(pair.b.gateway)
    settings = broker_settings(tmp_path / "broker", tls=True, public_url=f"https://{pair.a.gateway}:{port_a}")
    broker = Broker(settings)
    stack.callback(broker.close)
    app = create_app(settings, broker)
    for host, port in ((pair.a.gateway, port_a), (pair.b.gateway, port_b)):
        server = LiveServer(app, host=host, port=port, ssl_certfile=b_cert, ssl_keyfile=b_key).start()
        stack.callback(server.stop)
    url_a, url_b = f"https://{pair.a.gateway}:{port_a}", f"https://{pair.b.gateway}:{port_b}"
    env = {**os.environ, "NETPAY_WALLET_CA_FILE": str(ca_file), "REQUESTS_CA_BUNDLE": str(ca_file),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # fmt: skip

    content = os.urandom(3 << 20)
    shared = tmp_path / "lecture.mp4"
    shared.write_bytes(content)
    p_cert, p_key = leaf("peer", pair.a_direct)
    seller = Proc(pair.a, "seller", {
        "data": str(tmp_path / "seller"), "broker": url_a, "broker_key": broker.core.key.public.hex,
        "bind": pair.a_direct, "port": 8443, "cert": p_cert, "key": p_key, "name": "Alice's lectures",
        "file": str(shared), "price": PRICE, "title": "Lecture 1 video"}, env, tmp_path / "seller.log")  # fmt: skip
    stack.callback(seller.close)
    started = seller.read()
    assert started["url"] == f"https://{pair.a_direct}:8443"

    buyer = Proc(pair.b, "buyer", {"data": str(tmp_path / "buyer"), "broker": url_b, "coins": 100,
                                   "query": "lecture"}, env, tmp_path / "buyer.log")  # fmt: skip
    stack.callback(buyer.close)
    bought = buyer.read()
    assert bought["paid_now"] and bought["file_ok"] and bought["sha256"] == started["sha256"]
    assert bought["price"] == PRICE and bought["seller"] == "Alice's lectures"
    assert bought["unspent"] == 100 - PRICE

    seller.send("redeem")
    earned = seller.read()
    assert earned["redeemed_now"] == earned["redeemed"] == earned["earned"] == PRICE and earned["downloads"] == 1

    db = broker.core.db
    with db.tx() as c:
        tb = trial_balance(c)
    assert tb.balanced
    peer_id = started["peer_id"]
    redeemed = db.one("SELECT COALESCE(SUM(amount), 0) FROM redeemed WHERE vendor_id = ?", (peer_id,))[0]  # type: ignore[index]
    assert redeemed == PRICE == earned["standing"]["supplied"]["amount"]

    # a shop on this machine (reachable from the buyers' host); a third wallet pays it, then the peer, with one chain
    s_cert, s_key = leaf("shop", pair.b.gateway)
    shop_port = free_port(pair.b.gateway)
    shop_url = f"https://{pair.b.gateway}:{shop_port}"
    shop_data = tmp_path / "shop"
    from netpay.keys import load_or_create_key

    shop_key = load_or_create_key(key_path(shop_data))
    broker.vendors.register({"vendor_id": "daily-planet", "display_name": "Daily Planet",
                             "public_key": shop_key.public.hex, "origins": [shop_url], "api_url": shop_url,
                             "payment_url": f"{shop_url}/v1/payments"})  # fmt: skip
    vs = VendorSettings(name="Daily Planet", catalog=NEWSPAPER, data_dir=shop_data, broker_url=url_b,
                        host=pair.b.gateway, port=shop_port, vendor_id="daily-planet", public_url=shop_url,
                        broker_public_key=broker.core.key.public.hex, tls=True)  # fmt: skip
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(ca_file)  # the shop (in this process) checks the broker's certificate
    stack.callback(lambda: os.environ.__setitem__("REQUESTS_CA_BUNDLE", old) if old else
                   os.environ.pop("REQUESTS_CA_BUNDLE", None))  # fmt: skip
    shop = LiveServer(create_vendor_app(vs), host=pair.b.gateway, port=shop_port, ssl_certfile=s_cert,
                      ssl_keyfile=s_key).start()  # fmt: skip
    stack.callback(shop.stop)
    third = Proc(pair.b, "buyer", {"data": str(tmp_path / "third"), "broker": url_b, "coins": 100,
                                   "query": "lecture", "shop": shop_url, "shop_item": "harbour-bridge-reopens"},
                 env, tmp_path / "third.log")  # fmt: skip
    stack.callback(third.close)
    got = third.read()
    assert got["paid_now"] and got["sha256"] == started["sha256"] and len(got["chains"]) == 1
    assert got["shop_paid"] > 0 and got["unspent"] == 100 - got["shop_paid"] - PRICE
    custody = db.query("SELECT vendor_id FROM custody WHERE chain_id = ? ORDER BY seq", (got["chains"][0],))
    assert [r["vendor_id"] for r in custody] == ["daily-planet", peer_id]
    seller.send("redeem")
    again = seller.read()
    assert again["redeemed_now"] == PRICE and again["redeemed"] == again["earned"] == 2 * PRICE
    with db.tx() as c:
        assert trial_balance(c).balanced
    payable = broker.payouts.account(peer_id)
    assert payable["payable"]["amount"] == 2 * PRICE
    seller.send("quit")
    assert seller.read() == {"stopped": True}

"""A wallet running in a test host's namespace for the P2P end-to-end test: ``python -m tests.support.peer_host
seller|buyer '<json config>'``. It prints one JSON line per step on stdout; the seller then waits for commands on
stdin (``redeem``, ``quit``). Certificates are checked against ``NETPAY_WALLET_CA_FILE`` / ``REQUESTS_CA_BUNDLE``."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import requests

from netpay.messages import Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from tests.support.broker import TEST_CARD
from tests.support.peer import make_peer
from tests.support.wallet import new_wallet
from wallet_app.peer.buyer import PeerBuyer
from wallet_app.services import WalletService


def _say(data: dict[str, Any]) -> None:
    print(json.dumps(data), flush=True)


def _wallet(cfg: dict[str, Any], coins: int) -> tuple[WalletService, str]:
    wallet = new_wallet(Path(cfg["data"]) / "wallet")
    info = wallet.add_broker(cfg["broker"])
    wallet.trust_broker(info.broker_id)
    wallet.register(info.broker_id, "user_" + secrets.token_hex(4), "correct horse battery staple")
    if coins:
        wallet.buy_coins(info.broker_id, coins, Money(1, "EUR"), card=TEST_CARD)
    return wallet, info.broker_id


def _unspent(wallet: WalletService) -> int:
    return sum(c.unspent * c.coin_value.amount for c in wallet.list_chains())


def seller(cfg: dict[str, Any]) -> None:
    wallet, broker_id = _wallet(cfg, 0)
    peer = make_peer(wallet, broker_id, cfg["broker"], cfg["broker_key"], Path(cfg["data"]) / "peer",
                     host=cfg["bind"], port=cfg["port"], tls_cert=cfg["cert"], tls_key=cfg["key"],
                     display_name=cfg["name"])  # fmt: skip
    share = peer.shares.add_file(cfg["file"], price=cfg["price"], title=cfg["title"])
    _say({"url": peer.start(), "peer_id": peer.peer_id, "sha256": share.sha256})
    for line in sys.stdin:
        if line.strip() == "redeem":
            summary = peer.redeem_now()
            _say({"redeemed_now": summary["accepted_amount"], **peer.earnings(), "standing": peer.standing()})
        elif line.strip() == "quit":
            break
    peer.stop()
    wallet.close()
    _say({"stopped": True})


def buyer(cfg: dict[str, Any]) -> None:
    wallet, _ = _wallet(cfg, cfg["coins"])
    shop_paid = 0
    if cfg.get("shop"):
        data = requests.post(f"{cfg['shop']}/v1/quotes", json={"item_id": cfg["shop_item"]}, timeout=30).json()
        quote = Signed.from_wire(data["quote"], Quote)
        cert = Signed.from_wire(data["vendor_certificate"], VendorCertificate)
        wallet.pay_quote(quote, cert, None, "prompt")
        shop_paid = quote.body.price.amount
    buy = PeerBuyer(wallet, Path(cfg["data"]) / "downloads")
    listing = buy.search(cfg["broker"], cfg["query"])["results"][0]
    checked = buy.quote(listing)
    got = buy.buy(listing, checked)
    _say({"paid_now": got.paid_now, "sha256": got.sha256, "file_ok": got.path.exists(), "price": checked.price.amount,
          "seller": checked.vendor_name, "unspent": _unspent(wallet), "shop_paid": shop_paid,
          "chains": [c.chain_id for c in wallet.list_chains()]})  # fmt: skip
    wallet.close()


if __name__ == "__main__":
    {"seller": seller, "buyer": buyer}[sys.argv[1]](json.loads(sys.argv[2]))

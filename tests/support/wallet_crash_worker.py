"""A wallet process for the crash test: unlock (which recovers pending spends), then pay quotes from the given
vendors in turn until ``--payments`` payments are settled. The test kills it with SIGKILL at random moments, or
the engine kills itself at a named step (``NETPAY_WALLET_CRASH_AT`` / ``NETPAY_WALLET_CRASH_HIT``).

Every payment is appended to ``--sent-log`` (fsync'd) *before* it goes on the wire, so the test can prove from the
outside that no index was ever sent to two vendors.

Usage: python -m tests.support.wallet_crash_worker --data-dir D --keyring-file K --sent-log L --payments N
       --vendor URL:ITEM [--vendor URL:ITEM ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from netpay.errors import PeerUnavailable
from tests.support.test_keyring import FileKeyring
from wallet_app.clients.vendor import VendorClient
from wallet_app.keys import FAST_TEST_KDF, KeyStore
from wallet_app.services import WalletService


class LoggingVendorClient(VendorClient):
    """Writes each payment's segments to the sent log before sending it."""

    log_path: Path

    def pay(self, payment_wire: dict[str, Any], payment_url: str | None = None) -> dict[str, Any]:
        vendor_id = payment_wire["quote"]["body"]["vendor_id"]
        line = json.dumps(
            {
                "payment_id": payment_wire["payment_id"],
                "vendor_id": vendor_id,
                "segments": [[s["chain_id"], s["from_index"], s["to_index"]] for s in payment_wire["segments"]],
            }
        )
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return super().pay(payment_wire, payment_url)


def settled_count(wallet: WalletService) -> int:
    return int(wallet.vault.one("SELECT COUNT(*) FROM spends WHERE status = 'settled'")[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--keyring-file", required=True)
    ap.add_argument("--sent-log", required=True)
    ap.add_argument("--payments", type=int, required=True)
    ap.add_argument("--vendor", action="append", required=True)
    args = ap.parse_args(argv)
    LoggingVendorClient.log_path = Path(args.sent_log)
    store = KeyStore(FileKeyring(Path(args.keyring_file)), kdf=FAST_TEST_KDF)
    wallet = WalletService(Path(args.data_dir), key_store=store, vendor_client_factory=LoggingVendorClient)
    wallet.unlock()  # recovers pending spends
    vendors = [v.rsplit(":", 1) for v in args.vendor]
    clients = {url: VendorClient(url) for url, _ in vendors}
    done = settled_count(wallet)
    while done < args.payments:
        url, item = vendors[done % len(vendors)]
        offer = clients[url].quote(item)
        checked = wallet.check_quote(offer["quote"], offer["vendor_certificate"], None)
        try:
            wallet.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
        except PeerUnavailable:  # a slow hand-off between the vendors: the spend stays pending; finish it
            time.sleep(0.2)
            wallet.recover_pending()
        done = settled_count(wallet)
        print(done, flush=True)
    wallet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

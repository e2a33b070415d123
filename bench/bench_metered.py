"""Metered sessions: the cost of one more unit in a running session (``metered_unit_us``), the wallet's and the
vendor's.

A real broker and the Daily Planet on loopback (the podcast's cap raised so a session lasts the whole run), a real
wallet service with its SQLCipher vault. Per round, interleaved, medians after a warm-up:

- ``metered_unit_us``: ``WalletService.pay_metered_unit`` for the session's next unit, as the page's request makes
  it: the shop's quote for that unit (a round trip), the wallet's checks that it is exactly the next unit, the spend
  journalled (fsync'd) before its payword leaves, the payment (a round trip, durable at the shop) and its receipt;
- ``metered_unit_vendor_us``: the vendor's own part of a unit, in its process without HTTP: the next unit's quote
  (session read, token check), signing it, and taking its payment (checks, the unit counted in the payment's own
  durable transaction, the signed receipt);
- ``metered_unit_wallet_us``: ``metered_unit_us`` less the vendor's part and two echo round trips to the same shop
  (``metered_echo_us``): what the wallet itself adds;
- ``metered_unit_ratio``: ``metered_unit_us`` ÷ buying a one-off article the same way through the same engine
  (quote, check, pay: also two round trips, ``metered_one_off_us``). Target ≤ 1.2: a unit costs no more than an
  ordinary purchase, although the wallet also checks it against the approved session and counts it.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.broker import start_broker
from tests.support.vendor import NEWSPAPER, buy_chain, start_vendor
from tests.support.wallet import funded_wallet, new_wallet

ROUNDS = 120
WARM_UP = 10
PODCAST = "planet-podcast"
ARTICLE = "night-market-returns"  # 3 cents


def _catalog(tmp: Path) -> Path:
    data = json.loads(NEWSPAPER.read_text())
    next(i for i in data["items"] if i["item_id"] == PODCAST)["model"]["cap_units"] = 10_000
    path = tmp / "catalog.json"
    path.write_text(json.dumps(data))
    return path


def run() -> dict[str, float | int]:
    from netpay.messages import Payment, Quote, Segment
    from netpay.signed import Signed

    with tempfile.TemporaryDirectory(prefix="bench-metered-") as d:
        tmp = Path(d)
        broker = start_broker(tmp / "broker")
        vendor = start_vendor(broker, tmp / "vendor", catalog=_catalog(tmp))
        w = new_wallet(tmp / "wallet")
        try:
            funded_wallet(w, broker.url, chains=1, coins=5000, coin_value=1)
            client = w.payments.vendor_client(vendor.url)
            offer = client.quote(PODCAST)
            checked = w.check_quote(offer["quote"], offer["vendor_certificate"], None)
            sid = w.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt").receipt.body.receipt_id
            # a second session, paid by hand, for the vendor's part in its own process
            cert, traversal = buy_chain(broker, 5000, 1)
            v = vendor.vendor
            first = Signed.from_wire(client.quote(PODCAST)["quote"], Quote, "quote")
            start = traversal.position
            to, word = traversal.advance(1)
            opened = v.desk.pay(Payment(secrets.token_hex(16), first, (Segment(cert, start, to, word),)).to_wire())
            vsid, vtoken = opened["receipt"]["body"]["receipt_id"], opened["receipt"]["body"]["access_token"]

            unit_us, vendor_us, echo_us, one_off_us = [], [], [], []
            n = 1
            for i in range(ROUNDS + WARM_UP):
                for step in ((0, 1, 2, 3), (1, 2, 3, 0), (2, 3, 0, 1), (3, 0, 1, 2))[i % 4]:
                    if step == 0:
                        n += 1
                        t0 = time.perf_counter()
                        w.pay_metered_unit(sid, n, None)
                        unit_us.append((time.perf_counter() - t0) * 1e6)
                        w.vault.flush()  # the vault's deferred work, outside the timing (as bench_wallet does)
                    elif step == 1:
                        start = traversal.position
                        to, word = traversal.advance(1)
                        t0 = time.perf_counter()
                        q = v.metered.next_quote(vsid, vtoken, v.vendor_id, vendor.url, 600)
                        wire = v.desk.issue_quote(q)
                        signed = Signed.from_wire(wire, Quote, "quote", verify=False)
                        v.desk.pay(Payment(secrets.token_hex(16), signed, (Segment(cert, start, to, word),)).to_wire())
                        vendor_us.append((time.perf_counter() - t0) * 1e6)
                    elif step == 2:
                        t0 = time.perf_counter()
                        client.echo({"x": 1})
                        client.echo({"x": 2})
                        echo_us.append((time.perf_counter() - t0) * 1e6)
                    else:
                        t0 = time.perf_counter()
                        o = client.quote(ARTICLE)
                        c = w.check_quote(o["quote"], o["vendor_certificate"], None)
                        w.pay_quote(c.quote, c.vendor_certificate, None, "prompt")
                        one_off_us.append((time.perf_counter() - t0) * 1e6)
                        w.vault.flush()
            unit, vend, echo, one_off = (statistics.median(x[WARM_UP:]) for x in (unit_us, vendor_us, echo_us,
                                                                                   one_off_us))  # fmt: skip
            return {
                "metered_unit_us": round(unit, 1),
                "metered_unit_vendor_us": round(vend, 1),
                "metered_unit_wallet_us": round(unit - vend - echo, 1),
                "metered_echo_us": round(echo, 1),
                "metered_one_off_us": round(one_off, 1),
                "metered_unit_ratio": round(unit / one_off, 3),
            }
        finally:
            w.close()
            vendor.stop()
            broker.stop()


if __name__ == "__main__":
    print(run())

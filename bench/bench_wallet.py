"""Wallet core benchmarks.

- ``vault_open_ms``: unlock the vault (raw key from the keyring, verify-first open) and read the balance; median.
- ``next_payword_us``: the next payword of a 2^20 chain *including* persisting the traversal state to the vault
  (one durable transaction per payword); median over many steps.
- ``next_payword_fsync_us``: the same with the write-ahead log fsync'd (what a payment's journal write costs).
- ``disk_flush_4k_us`` / ``disk_flush_32k_us``: a ``pwrite`` + ``fsync`` of 4 KiB / 32 KiB into a file on the
  benchmark's disk, back to back, median (reports: what the durable writes on the payment path cost here, by size).
- ``disk_flush_after_idle_us``: the same 4 KiB flush after the disk was left idle for 5 ms, as a payment's
  journal fsync finds it (a report: on this VM a flush after idle costs two to three times one back to back).
- ``pay_core_ratio``: a payment through the engine (quote check, durable journal, send, verify and store the
  receipt) to a vendor on loopback, divided by a plain JSON round trip of a payment-sized body to the vendor's
  ``POST /v1/echo`` with the same client; interleaved in one run, medians. ``pay_core_bare_vendor_ratio`` is a
  hand-built payment sent with the same client divided by the same echo: the vendor's own share of the ratio.
  A payment is done when its journal intent is fsync'd and the vendor's receipt verified; applying the intent to
  the tables, storing the receipt and fsyncing those writes happen on the vault's worker thread after answering.
  That work is done (timed apart) right after each payment so it never overlaps an echo;
  ``pay_core_with_background_ratio`` counts it in.
- ``pay_core_ram_disk_ratio``: ``pay_core_ratio`` measured again with the broker's, the vendor's and the wallet's
  files on a RAM disk (``/dev/shm``), where an fsync costs next to nothing: what the code costs apart from the two
  device flushes of a payment (the wallet's journal, the vendor's commit). A report; absent without ``/dev/shm``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from netpay.chain import MAX_CHAIN_LENGTH, new_chain_id  # noqa: E402
from netpay.traversal import create_chain  # noqa: E402
from tests.support.test_keyring import MemoryKeyring  # noqa: E402
from tests.support.wallet import funded_wallet, new_wallet  # noqa: E402
from wallet_app.keys import FAST_TEST_KDF, KeyStore  # noqa: E402
from wallet_app.services import WalletService  # noqa: E402


def _vault_open_ms(tmp: Path) -> float:
    kr = MemoryKeyring()
    w = new_wallet(tmp / "open", keyring=kr)
    now = int(time.time())
    with w.vault.tx() as c:  # a lived-in vault: 20 chains, 500 spends
        for i in range(20):
            cid = new_chain_id().hex()
            c.execute(
                """INSERT INTO chains (chain_id, broker_id, length, coin_amount, currency, seed, traversal, position,
                   idempotency_key, request_json, status, created_at) VALUES (?, 'b', 1000, 1, 'EUR', ?, ?, ?, 'k',
                   '{}', 'active', ?)""",
                (cid, b"s" * 32, b"t" * 600, i * 10, now),
            )
        for i in range(500):
            c.execute(
                """INSERT INTO spends (payment_id, quote_id, quote_digest, vendor_id, vendor_name, vendor_key,
                   payment_url, item_url, title, amount, currency, via, payment_json, status, api_url_json,
                   created_at, updated_at) VALUES (?, ?, 'd', 'v', 'V', 'k', 'u', 'u', 't', 5, 'EUR', 'prompt',
                   ?, 'settled', '""', ?, ?)""",
                (f"p{i}", f"q{i}", "x" * 1500, now, now),
            )
    w.close()
    times = []
    for _ in range(40):
        svc = WalletService(tmp / "open", key_store=KeyStore(kr, kdf=FAST_TEST_KDF))
        t0 = time.perf_counter()
        svc.unlock(recover=False)
        balance = svc.balance()
        times.append((time.perf_counter() - t0) * 1000)
        assert balance and balance[0].unspent.amount > 0
        svc.close()
    return statistics.median(times)


def _next_payword_us(tmp: Path) -> tuple[float, float]:
    """Median µs per payword of a 2^20 chain with the traversal state persisted: (committed to the write-ahead
    log, which survives the process being killed; additionally fsync'd, which survives a power cut)."""
    w = new_wallet(tmp / "payword")
    cid = new_chain_id()
    seed = b"\x07" * 32
    _, traversal = create_chain(cid, MAX_CHAIN_LENGTH, seed)
    with w.vault.tx() as c:
        c.execute(
            """INSERT INTO chains (chain_id, broker_id, length, coin_amount, currency, seed, traversal, position,
               idempotency_key, request_json, status, created_at) VALUES (?, 'b', ?, 1, 'EUR', ?, ?, 0, 'k', '{}',
               'active', 0)""",
            (cid.hex(), MAX_CHAIN_LENGTH, seed, traversal.to_bytes()),
        )
    out = []
    for durable, steps in ((False, 3000), (True, 300)):
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            _, to, _, state = w.chains.advance(cid.hex(), 1)  # what a payment does: advance, persist the state
            with w.vault.tx(durable=durable) as c:
                w.chains.store_state(c, cid.hex(), state, to)
            times.append((time.perf_counter() - t0) * 1e6)
        out.append(statistics.median(times))
    w.close()
    return out[0], out[1]


def _disk_flush_us(tmp: Path, size: int, steps: int = 150, idle_s: float = 0.0) -> float:
    """Median µs of writing ``size`` bytes (at a moving offset of a preallocated file) and fsyncing the file;
    ``idle_s``: the disk is left idle this long before each write (not timed)."""
    path = tmp / f"flush-{size}-{idle_s}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        span = 1 << 20
        os.pwrite(fd, b"\0" * span, 0)
        os.fsync(fd)
        block = os.urandom(size)
        times = []
        for i in range(steps):
            if idle_s:
                time.sleep(idle_s)
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i * size) % (span - size))
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(times)
    finally:
        os.close(fd)


#: Idle time before each flush of ``disk_flush_after_idle_us``: about what a payment's journal fsync follows (the
#: previous disk write was the last payment's, a few milliseconds earlier).
IDLE_BEFORE_FLUSH_S = 0.005


#: Rounds of (payment, echo, bare payment), in rotating order; the first WARM_UP of each are not counted.
PAY_CORE_ROUNDS = 240
WARM_UP = 6


def _pay_core_ratio(tmp: Path) -> tuple[float, float, float, float, float]:
    """(engine payment / echo, engine payment ms, echo ms, bare vendor payment / echo, engine payment including its
    deferred vault work / echo), interleaved."""
    from tests.support.broker import start_broker
    from tests.support.vendor import buy_chain, make_payment, start_vendor

    broker = start_broker(tmp / "broker")
    vendor = start_vendor(broker, tmp / "vendor")
    w = new_wallet(tmp / "pay")
    try:
        funded_wallet(w, broker.url, chains=1, coins=5000, coin_value=1)
        cert, traversal = buy_chain(broker, 5000, 1)
        client = w.payments.vendor_client(vendor.url)
        pay_ms, echo_ms, bare_ms, background_ms = [], [], [], []
        for i in range(PAY_CORE_ROUNDS):
            offer = client.quote("night-market-returns")
            checked = w.check_quote(offer["quote"], offer["vendor_certificate"], None)
            bare = make_payment(client.quote("night-market-returns")["quote"], [(cert, traversal, 3)])
            for step in ((0, 1, 2), (1, 2, 0), (2, 0, 1))[i % 3]:
                t0 = time.perf_counter()
                if step == 0:
                    w.pay_quote(checked.quote, checked.vendor_certificate, None, "prompt")
                    pay_ms.append((time.perf_counter() - t0) * 1000)
                    # The wallet applies the spend, stores the receipt, fsyncs them (and checkpoints) on its vault
                    # worker after answering; do that work here, timed apart, so it cannot run during (and slow
                    # down) the next echo or bare call.
                    t1 = time.perf_counter()
                    w.vault.flush()
                    background_ms.append((time.perf_counter() - t1) * 1000)
                elif step == 1:
                    client.echo(bare)
                    echo_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    client.pay(bare)
                    bare_ms.append((time.perf_counter() - t0) * 1000)
        pay, echo, vend = (statistics.median(x[WARM_UP:]) for x in (pay_ms, echo_ms, bare_ms))
        with_background = statistics.median(
            p + b for p, b in zip(pay_ms[WARM_UP:], background_ms[WARM_UP:], strict=True)
        )
        return pay / echo, pay, echo, vend / echo, with_background / echo
    finally:
        w.close()
        vendor.stop()
        broker.stop()


def _ram_disk() -> Path | None:
    """A RAM-backed directory to write in, if this system has one."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else None


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ratio, pay_ms, echo_ms, bare_ratio, with_background_ratio = _pay_core_ratio(tmp)
        payword_us, payword_fsync_us = _next_payword_us(tmp)
        flush_4k, flush_32k = _disk_flush_us(tmp, 4096), _disk_flush_us(tmp, 32768)
        flush_idle = _disk_flush_us(tmp, 4096, steps=100, idle_s=IDLE_BEFORE_FLUSH_S)
        out: dict[str, float | int] = {
            "vault_open_ms": round(_vault_open_ms(tmp), 3),
            "next_payword_us": round(payword_us, 1),
            "next_payword_fsync_us": round(payword_fsync_us, 1),
            "disk_flush_4k_us": round(flush_4k, 1),
            "disk_flush_32k_us": round(flush_32k, 1),
            "disk_flush_after_idle_us": round(flush_idle, 1),
            "pay_core_ratio": round(ratio, 3),
            "pay_core_payment_ms": round(pay_ms, 3),
            "pay_core_echo_ms": round(echo_ms, 3),
            "pay_core_bare_vendor_ratio": round(bare_ratio, 3),
            "pay_core_with_background_ratio": round(with_background_ratio, 3),
        }
    ram = _ram_disk()
    if ram is not None:
        with tempfile.TemporaryDirectory(dir=ram) as d:
            out["pay_core_ram_disk_ratio"] = round(_pay_core_ratio(Path(d))[0], 3)
    return out


if __name__ == "__main__":
    t0 = time.perf_counter()
    print(run(), f"{time.perf_counter() - t0:.1f}s")

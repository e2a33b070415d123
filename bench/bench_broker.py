"""Broker redemption cost: ``redeem_ratio`` = redeeming 1,000 chains x 1,000 spent coins (10^6 hashes, through the
real redemption service and SQLite storage, one signed batch) / a bare loop of 10^6 SHA-256 steps, same run.

Each repetition prepares 1,000 freshly bought chains held by one vendor (not timed), then times the bare hash loop,
the redemption of one batch claiming coins 1..1000 of every chain (parse, signature check, hashing, SQLite commit,
signed answer), and the bare loop again; a repetition's baseline is the mean of its two bare loops. Figures are
medians over the repetitions.
"""

from __future__ import annotations

import hashlib
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker_stub.services import Broker
from broker_stub.settings import BrokerSettings
from netpay.chain import ChainHasher
from netpay.keys import SigningKey
from netpay.messages import CustodyClaim, RedemptionBatch, RedemptionClaim
from netpay.signed import Signed

CHAINS = 1000
COINS = 1000
REPETITIONS = 5


def _bare(n: int) -> float:
    """The bare loop, as in bench_chain: ``x = sha256(x).digest()`` n times."""
    sha, value = hashlib.sha256, secrets.token_bytes(32)
    start = time.perf_counter()
    for _ in range(n):
        value = sha(value).digest()
    return time.perf_counter() - start


def _prepare(broker: Broker, vendor: SigningKey, rep: int) -> dict[str, Any]:
    """Buy CHAINS chains, let the vendor claim them; return the signed redemption batch (wire form)."""
    token_user = f"bench{rep}"
    broker.accounts.register({"username": token_user, "password": "bench password"})
    account_id = broker.accounts.login({"username": token_user, "password": "bench password"})["account_id"]
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    broker.accounts.topup(account_id, {"amount": {"amount": CHAINS * COINS, "currency": "EUR"}, "card": card}, "t")
    claims = []
    now = int(time.time())
    for i in range(CHAINS):
        chain_id = secrets.token_bytes(16)
        seed = secrets.token_bytes(32)
        touchstone = ChainHasher(chain_id).walk(seed, COINS, 0)
        broker.issuing.purchase(
            account_id,
            {
                "chain_id": chain_id.hex(),
                "touchstone": touchstone.hex(),
                "length": COINS,
                "coin_value": {"amount": 1, "currency": "EUR"},
            },
            f"buy{i}",
        )
        claim = Signed.sign(CustodyClaim("bench-shop", chain_id, f"{rep}-{i}", now), vendor)
        broker.custody.claim(claim.to_wire())
        claims.append(RedemptionClaim(chain_id, 0, COINS, seed))
    batch = RedemptionBatch(f"batch-{rep}", "bench-shop", tuple(claims), now)
    return Signed.sign(batch, vendor).to_wire()


def run() -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(
            BrokerSettings(
                data_dir=Path(tmp), argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1, max_charge=10**9
            )
        )
        vendor = SigningKey.generate()
        broker.vendors.register(
            {
                "vendor_id": "bench-shop",
                "display_name": "Bench",
                "public_key": vendor.public.hex,
                "origins": ["http://127.0.0.1:8201"],
                "api_url": "http://127.0.0.1:8201",
                "payment_url": "http://127.0.0.1:8201/v1/payments",
            }
        )
        bare: list[float] = []
        redeem: list[float] = []
        ratios: list[float] = []
        try:
            for rep in range(REPETITIONS):
                wire = _prepare(broker, vendor, rep)
                before = _bare(CHAINS * COINS)
                start = time.perf_counter()
                status, result = broker.redemption.redeem(wire)
                r = time.perf_counter() - start
                b = (before + _bare(CHAINS * COINS)) / 2  # bare loop on both sides: drift hits both alike
                accepted = sum(1 for c in result["body"]["results"] if c["status"] == "accepted")
                if status != 200 or accepted != CHAINS:
                    raise RuntimeError(f"benchmark redemption failed: {status}, {accepted} accepted")
                bare.append(b)
                redeem.append(r)
                ratios.append(r / b)
        finally:
            broker.close()
    return {
        "redeem_ratio": round(statistics.median(ratios), 3),
        "redeem_seconds": round(statistics.median(redeem), 4),
        "redeem_bare_hash_seconds": round(statistics.median(bare), 4),
        "redeem_hashes": CHAINS * COINS,
    }


if __name__ == "__main__":
    print(run())

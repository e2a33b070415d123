"""Write the known-answer vectors in tests/vectors/ (run once; the tests check the code still reproduces them).

Fixed inputs: chain id 00 01 .. 0f, seed 20 21 .. 3f, broker key seed 00 01 .. 1f (Ed25519 is deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

from netpay.keys import SigningKey
from netpay.messages import CoinCertificate
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import create_chain

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors"


def main() -> None:
    chain_id = bytes(range(16))
    seed = bytes(range(0x20, 0x40))
    length = 16
    touchstone, walker = create_chain(chain_id, length, seed)
    paywords = [walker.next()[1].hex() for _ in range(length)]
    chain = {
        "description": "W_i = SHA-256('NPW' || chain_id || u32be(i) || W_{i+1}); W_n = seed",
        "chain_id": chain_id.hex(),
        "seed": seed.hex(),
        "length": length,
        "touchstone": touchstone.hex(),
        "paywords": paywords,
    }
    key = SigningKey.from_seed(bytes(range(32)))
    cert = CoinCertificate(chain_id, "demo-broker", touchstone, length, Money(1, "EUR"), 1767225600, 1798761600)
    signed = Signed.sign(cert, key)
    certificate = {
        "description": "a coin certificate signed with the Ed25519 key whose seed is 00 01 .. 1f",
        "broker_key_seed": bytes(range(32)).hex(),
        "broker_public_key": key.public.hex,
        "signed_bytes": signed.signed_bytes().decode(),
        "digest": signed.digest,
        "wire": signed.to_wire(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "chain.json").write_text(json.dumps(chain, indent=2) + "\n")
    (OUT / "coin_certificate.json").write_text(json.dumps(certificate, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

"""Known-answer vectors: the code must reproduce tests/vectors/ byte for byte (docs/protocol.md quotes them)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from netpay.chain import verify_paywords
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import CoinCertificate
from netpay.signed import Signed
from netpay.traversal import create_chain

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def test_chain_vector() -> None:
    v = json.loads((VECTORS / "chain.json").read_text())
    chain_id, seed = bytes.fromhex(v["chain_id"]), bytes.fromhex(v["seed"])
    touchstone, walker = create_chain(chain_id, v["length"], seed)
    assert touchstone.hex() == v["touchstone"]
    assert [walker.next()[1].hex() for _ in range(v["length"])] == v["paywords"]
    # Independently of the package: W_15 = SHA-256("NPW" || id || u32be(15) || seed).
    assert hashlib.sha256(b"NPW" + chain_id + struct.pack(">I", 15) + seed).hexdigest() == v["paywords"][14]
    verify_paywords(chain_id, 0, touchstone, 3, bytes.fromhex(v["paywords"][2]))


def test_certificate_vector() -> None:
    v = json.loads((VECTORS / "coin_certificate.json").read_text())
    key = SigningKey.from_seed(bytes.fromhex(v["broker_key_seed"]))
    assert key.public.hex == v["broker_public_key"]
    parsed = Signed.from_wire(v["wire"], CoinCertificate)
    assert parsed.signed_bytes().decode() == v["signed_bytes"]
    assert parsed.digest == v["digest"]
    assert Signed.sign(parsed.body, key).to_wire() == v["wire"]  # Ed25519 is deterministic
    VerifyKey.from_hex(v["broker_public_key"]).verify(bytes.fromhex(v["wire"]["signature"]), parsed.signed_bytes())

"""Known-answer vectors: the code must reproduce tests/vectors/ byte for byte (docs/protocol.md quotes them)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from netpay.chain import verify_paywords
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import CoinCertificate, Receipt, VendorRequest
from netpay.signed import Body, Signed
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


def test_optional_field_vectors() -> None:
    """A signed object verifies with its optional field present and with it left out: the signature covers the
    body as sent. The parsed object keeps that form (digest, wire) and reads an absent field as None."""
    v = json.loads((VECTORS / "optional_fields.json").read_text())
    key = SigningKey.from_seed(bytes.fromhex(v["vendor_key_seed"]))
    assert key.public.hex == v["vendor_public_key"]
    kinds: dict[str, type[Body]] = {"vendor_request": VendorRequest, "receipt": Receipt}
    seen = set()
    for case in v["cases"]:
        wire, name = case["wire"], case["optional_field"]
        assert (name in wire["body"]) is case["present"]
        seen.add((case["type"], case["present"]))
        VerifyKey.from_hex(v["vendor_public_key"]).verify(
            bytes.fromhex(wire["signature"]), case["signed_bytes"].encode()
        )
        parsed = Signed.from_wire(wire, kinds[case["type"]])
        parsed.require_signer(key.public)
        assert parsed.signed_bytes().decode() == case["signed_bytes"]
        assert parsed.digest == case["digest"]
        assert parsed.to_wire() == wire
        assert (getattr(parsed.body, name) is not None) is case["present"]
        if case["present"]:
            assert Signed.sign(parsed.body, key).to_wire() == wire  # netpay signs this form itself
    assert seen == {(t, p) for t in kinds for p in (True, False)}

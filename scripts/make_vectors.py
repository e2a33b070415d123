"""Write the known-answer vectors in tests/vectors/ (run once; the tests check the code still reproduces them).

Fixed inputs: chain id 00 01 .. 0f, seed 20 21 .. 3f, broker key seed 00 01 .. 1f, vendor key seed 01 02 .. 20
(Ed25519 is deterministic).

``optional_fields.json`` holds objects with an optional field present and the same objects with it left out, each
signed over the body exactly as it is sent (docs/protocol.md §3): a receiver must verify both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from netpay.encoding import canonical_json
from netpay.keys import SigningKey
from netpay.messages import CoinCertificate
from netpay.money import Money
from netpay.signed import SIGNING_DOMAIN, Signed
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
    (OUT / "optional_fields.json").write_text(json.dumps(optional_fields(), indent=2, ensure_ascii=False) + "\n")
    (OUT / "chain.json").write_text(json.dumps(chain, indent=2) + "\n")
    (OUT / "coin_certificate.json").write_text(json.dumps(certificate, indent=2, ensure_ascii=False) + "\n")


def _signed_as_sent(type_: str, body: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """Sign ``body`` exactly as it will be sent: the envelope's canonical JSON after the domain string."""
    envelope = {"type": type_, "version": 1, "signer": key.public.hex, "body": body}
    signed = SIGNING_DOMAIN + canonical_json(envelope)
    return {
        "signed_bytes": signed.decode(),
        "digest": hashlib.sha256(signed).hexdigest(),
        "wire": {**envelope, "signature": key.sign(signed).hex()},
    }


def optional_fields() -> dict[str, Any]:
    vendor = SigningKey.from_seed(bytes(range(1, 33)))
    request = {"vendor_id": "daily-planet", "action": "payout", "nonce": "n-5e1a", "requested_at": 1767225600}
    receipt = {
        "receipt_id": "rcpt-19ab",
        "payment_id": "pay-7c1e",
        "quote_id": "3f2a9c0d5e6b4a71",
        "quote_digest": "11" * 32,
        "vendor_id": "daily-planet",
        "item_id": "day-pass",
        "amount": {"amount": 50, "currency": "EUR"},
        "segments": [{"chain_id": bytes(range(16)).hex(), "from_index": 0, "to_index": 50}],
        "access_token": "v1.e30.AAAA",
        "issued_at": 1767225602,
    }
    cases = [
        ("vendor_request with its optional amount present", "vendor_request",
         {**request, "amount": {"amount": 40, "currency": "EUR"}}, "amount", True),
        ("vendor_request with its optional amount left out", "vendor_request", request, "amount", False),
        ("receipt with its optional valid_until present", "receipt",
         {**receipt, "valid_until": 1767312002}, "valid_until", True),
        ("receipt with its optional valid_until left out", "receipt", receipt, "valid_until", False),
    ]  # fmt: skip
    return {
        "description": "signed objects with an optional field present and left out; each signature covers the "
        "body exactly as sent, so both verify; vendor key seed 01 02 .. 20",
        "vendor_key_seed": bytes(range(1, 33)).hex(),
        "vendor_public_key": vendor.public.hex,
        "cases": [
            {"description": d, "type": t, "optional_field": f, "present": p, **_signed_as_sent(t, b, vendor)}
            for d, t, b, f, p in cases
        ],
    }


if __name__ == "__main__":
    main()

"""Print one example of every protocol object as it travels on the wire (used to write docs/protocol.md §3)."""

from __future__ import annotations

import json

from netpay.keys import SigningKey
from netpay.messages import (
    BusinessModel,
    ClaimResult,
    CloseRequest,
    CoinCertificate,
    CustodyClaim,
    CustodyRelease,
    Payment,
    PaymentRefusal,
    Quote,
    Receipt,
    RedemptionBatch,
    RedemptionClaim,
    RedemptionResult,
    ReleaseRequest,
    RevocationList,
    Segment,
    SegmentRef,
    SpendEntry,
    SpendReport,
    VendorCertificate,
)
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import create_chain

BROKER = SigningKey.from_seed(bytes(range(32)))
VENDOR = SigningKey.from_seed(bytes(range(1, 33)))
T = 1767225600


def examples() -> dict[str, object]:
    chain = bytes(range(16))
    touchstone, walker = create_chain(chain, 16, bytes(range(0x20, 0x40)))
    _, w5 = walker.advance(5)
    cert = Signed.sign(CoinCertificate(chain, "demo-broker", touchstone, 16, Money(1, "EUR"), T, T + 31536000), BROKER)
    origin = "http://127.0.0.1:8201"
    vcert = Signed.sign(
        VendorCertificate(
            "daily-planet",
            "Daily Planet",
            VENDOR.public,
            (origin, "http://localhost:8201"),
            origin,
            f"{origin}/v1/payments",
            "demo-broker",
            T,
            T + 31536000,
        ),
        BROKER,
    )
    quote = Signed.sign(
        Quote(
            "3f2a9c0d5e6b4a71",
            "daily-planet",
            "harbour-bridge",
            "Harbour bridge reopens",
            Money(5, "EUR"),
            BusinessModel(),
            f"{origin}/v1/payments",
            f"{origin}/items/harbour-bridge",
            T,
            T + 300,
        ),
        VENDOR,
    )
    payment = Payment("pay-7c1e", quote, (Segment(cert, 0, 5, w5),))
    receipt = Signed.sign(
        Receipt(
            "rcpt-19ab",
            "pay-7c1e",
            quote.body.quote_id,
            bytes.fromhex(quote.digest),
            "daily-planet",
            "harbour-bridge",
            Money(5, "EUR"),
            (SegmentRef(chain, 0, 5),),
            "v1.harbour-bridge.0.3b9f…",
            None,
            T + 2,
        ),
        VENDOR,
    )
    release = Signed.sign(CustodyRelease(chain, "daily-planet", "card-corner", 5, w5, T + 60), VENDOR)
    out: dict[str, object] = {
        "coin_certificate": cert.to_wire(),
        "vendor_certificate": vcert.to_wire(),
        "quote": quote.to_wire(),
        "payment": payment.to_wire(),
        "receipt": receipt.to_wire(),
        "payment_refusal": Signed.sign(
            PaymentRefusal("pay-7c1e", quote.body.quote_id, "daily-planet", "index_conflict", ((chain, 5),), T + 3),
            VENDOR,
        ).to_wire(),
        "custody_claim": Signed.sign(CustodyClaim("card-corner", chain, "n-81f2", T + 59), VENDOR).to_wire(),
        "release_request": Signed.sign(ReleaseRequest(chain, vcert, "n-22c1", T + 59), VENDOR).to_wire(),
        "custody_release": release.to_wire(),
        "close_request": Signed.sign(CloseRequest("demo-broker", chain, "n-9d0e", T + 900), BROKER).to_wire(),
        "spend_report": Signed.sign(
            SpendReport("rep-1", "daily-planet", (SpendEntry(chain, 0, 5, w5),), T + 4), VENDOR
        ).to_wire(),
        "redemption_batch": Signed.sign(
            RedemptionBatch("batch-1", "card-corner", (RedemptionClaim(chain, 0, 5, w5, None),), T + 3600), VENDOR
        ).to_wire(),
        "redemption_result": Signed.sign(
            RedemptionResult(
                "batch-1", "card-corner", (ClaimResult(chain, 0, 5, "accepted", Money(5, "EUR"), None, {}),), T + 3601
            ),
            BROKER,
        ).to_wire(),
        "revocation_list": Signed.sign(RevocationList("demo-broker", 4, T + 7200, (chain,), ()), BROKER).to_wire(),
    }
    return out


if __name__ == "__main__":
    for name, wire in examples().items():
        print(f"### {name}\n\n```json\n{json.dumps(wire, indent=2, ensure_ascii=False)}\n```\n")

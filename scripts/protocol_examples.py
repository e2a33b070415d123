"""Write docs/protocol.md §3.2: one example of every protocol object as it travels on the wire.

Every example is made here from fixed key seeds, so anyone can regenerate and check it (Ed25519 is deterministic):

    .venv/bin/python scripts/protocol_examples.py           # print §3.2
    .venv/bin/python scripts/protocol_examples.py --write   # replace §3.2 in docs/protocol.md

tests/netpay/test_protocol_examples.py checks that the document holds exactly this output and that every signed
example verifies under the key of the party it names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from netpay.keys import SigningKey  # noqa: E402
from netpay.messages import (  # noqa: E402
    BusinessModel,
    ClaimResult,
    CloseRequest,
    CoinCertificate,
    CustodyClaim,
    CustodyGrant,
    CustodyRelease,
    GrantRequest,
    HostedGrant,
    Payment,
    PaymentRefusal,
    Quote,
    Receipt,
    RedemptionBatch,
    RedemptionClaim,
    RedemptionResult,
    RefundDecision,
    ReleaseRequest,
    RevocationList,
    Segment,
    SegmentRef,
    SpendEntry,
    SpendReport,
    VendorCertificate,
    VendorRequest,
)
from netpay.money import Money  # noqa: E402
from netpay.signed import Signed  # noqa: E402
from netpay.traversal import create_chain  # noqa: E402
from vendor_stub.access import AccessTokens  # noqa: E402

DOC = ROOT / "docs" / "protocol.md"
HEADING = "### 3.2 Examples"

#: The parties of the examples and the seeds of their Ed25519 keys.
SEEDS = {
    "demo-broker": bytes(range(0, 32)),
    "daily-planet": bytes(range(1, 33)),
    "paper-lantern-cards": bytes(range(2, 34)),
}
KEYS = {party: SigningKey.from_seed(seed) for party, seed in SEEDS.items()}
BROKER, PLANET, CARDS = KEYS["demo-broker"], KEYS["daily-planet"], KEYS["paper-lantern-cards"]
ACCESS_SECRET = bytes(range(3, 35))
T = 1767225600
YEAR = 31536000


def _vendor_certificate(vendor_id: str, name: str, key: SigningKey, port: int) -> Signed[VendorCertificate]:
    origin = f"http://127.0.0.1:{port}"
    body = VendorCertificate(
        vendor_id, name, key.public, (origin, f"http://localhost:{port}"), origin, f"{origin}/v1/payments",
        "demo-broker", T, T + YEAR,
    )  # fmt: skip
    return Signed.sign(body, BROKER)


def examples() -> dict[str, object]:
    """The wire form of each example, in the order §3.1 lists the objects."""
    chain = bytes(range(16))
    touchstone, walker = create_chain(chain, 16, bytes(range(0x20, 0x40)))
    _, w5 = walker.advance(5)
    _, w8 = walker.advance(3)
    cert = Signed.sign(CoinCertificate(chain, "demo-broker", touchstone, 16, Money(1, "EUR"), T, T + YEAR), BROKER)
    planet = _vendor_certificate("daily-planet", "Daily Planet", PLANET, 8201)
    cards = _vendor_certificate("paper-lantern-cards", "Paper Lantern Cards", CARDS, 8202)
    origin = "http://127.0.0.1:8201"
    quote = Signed.sign(
        Quote(
            "3f2a9c0d5e6b4a71", "daily-planet", "harbour-bridge", "Harbour bridge reopens", Money(5, "EUR"),
            BusinessModel(), f"{origin}/v1/payments", f"{origin}/items/harbour-bridge", T, T + 300,
        ),
        PLANET,
    )  # fmt: skip
    payment = Payment("pay-7c1e", quote, (Segment(cert, 0, 5, w5),))
    token = AccessTokens(ACCESS_SECRET).issue("harbour-bridge", "rcpt-19ab", False, None)
    receipt = Receipt(
        "rcpt-19ab", "pay-7c1e", quote.body.quote_id, bytes.fromhex(quote.digest), "daily-planet", "harbour-bridge",
        Money(5, "EUR"), (SegmentRef(chain, 0, 5),), token, None, T + 2,
    )  # fmt: skip
    refusal = PaymentRefusal("pay-7c1e", quote.body.quote_id, "daily-planet", "index_conflict", ((chain, 5),), T + 3)
    grant = Signed.sign(CustodyGrant(chain, "paper-lantern-cards", "daily-planet", 2, 5, T + 59), BROKER)
    # The card shop takes the chain over from the newspaper at index 5, is paid coins 6..8, and redeems them with
    # the newspaper's release attached.
    release = Signed.sign(CustodyRelease(chain, "daily-planet", "paper-lantern-cards", 5, w5, T + 60), PLANET)
    batch = RedemptionBatch("batch-1", "paper-lantern-cards", (RedemptionClaim(chain, 5, 8, w8, release),), T + 3600)
    result = RedemptionResult(
        "batch-1", "paper-lantern-cards", (ClaimResult(chain, 5, 8, "accepted", Money(3, "EUR"), None, {}),), T + 3601
    )
    return {
        "coin_certificate": cert.to_wire(),
        "vendor_certificate": planet.to_wire(),
        "quote": quote.to_wire(),
        "payment": payment.to_wire(),
        "receipt": Signed.sign(receipt, PLANET).to_wire(),
        "payment_refusal": Signed.sign(refusal, PLANET).to_wire(),
        "custody_claim": Signed.sign(CustodyClaim("paper-lantern-cards", chain, "n-81f2", T + 59), CARDS).to_wire(),
        # The broker's answer to that claim carries this grant (window 2, after the newspaper's window 1, from the
        # index the newspaper reported); the card shop shows it to the newspaper in its release request.
        "custody_grant": grant.to_wire(),
        "release_request": Signed.sign(ReleaseRequest(chain, cards, "n-22c1", T + 59, grant), CARDS).to_wire(),
        "custody_release": release.to_wire(),
        # A hosted e-wallet: the newspaper redeems the customer's authorization code (with its PKCE verifier) and
        # the broker grants it coins 9..16 of a hosted chain as W_16 (here the chain's seed, as the grant ends at
        # the top).
        "grant_request": Signed.sign(
            GrantRequest(
                "daily-planet",
                "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                f"{origin}/hosted/callback",
                "n-4b7d",
                T + 30,
            ),
            PLANET,
        ).to_wire(),
        "hosted_grant": Signed.sign(
            HostedGrant(
                "grant_5c0f1e2d",
                "demo-broker",
                "daily-planet",
                chain,
                8,
                16,
                bytes(range(0x20, 0x40)),
                T + 31,
                T + 86400,
            ),
            BROKER,
        ).to_wire(),
        "close_request": Signed.sign(CloseRequest("demo-broker", chain, "n-9d0e", T + 900), BROKER).to_wire(),
        "spend_report": Signed.sign(
            SpendReport("rep-1", "daily-planet", (SpendEntry(chain, 0, 5, w5),), T + 4), PLANET
        ).to_wire(),
        "redemption_batch": Signed.sign(batch, CARDS).to_wire(),
        "redemption_result": Signed.sign(result, BROKER).to_wire(),
        "vendor_request": Signed.sign(
            VendorRequest("daily-planet", "payout", "n-5e1a", T + 7200, Money(5, "EUR")), PLANET
        ).to_wire(),
        "revocation_list": Signed.sign(RevocationList("demo-broker", 4, T + 7200, (chain,), ()), BROKER).to_wire(),
        "refund_decision": Signed.sign(
            RefundDecision(
                "ref-4b2d",
                "daily-planet",
                "rcpt-19ab",
                bytes.fromhex(Signed.sign(receipt, PLANET).digest),
                "granted",
                Money(5, "EUR"),
                (SegmentRef(chain, 0, 5),),
                "never opened: refunded automatically",
                T + 86400,
            ),
            PLANET,
        ).to_wire(),
    }


def _seed_text(seed: bytes) -> str:
    return f"`{seed[0]:02x} {seed[1]:02x} … {seed[-1]:02x}`"


def section() -> str:
    """§3.2 as it stands in docs/protocol.md, from its heading up to the next chapter."""
    parties = ", ".join(f"{party} {_seed_text(seed)}" for party, seed in SEEDS.items())
    out = [
        HEADING,
        "",
        "Generated by `scripts/protocol_examples.py` (`--write` regenerates this section) from fixed Ed25519 key",
        f"seeds ({parties}),",
        f"the access-token secret {_seed_text(ACCESS_SECRET)} and the chain of `tests/vectors/chain.json`. Each",
        "signed example is signed by the party it names (`tests/netpay/test_protocol_examples.py` checks every",
        "signature under that party's key). The story: the wallet pays the Daily Planet coins 1–5 of a chain; the",
        "card shop Paper Lantern Cards then takes the chain over (custody claim at the broker, release request to the",
        "Daily Planet, release at index 5), is paid coins 6–8 and redeems them with the release attached.",
        "",
    ]
    for name, wire in examples().items():
        out += [f"#### {name}", "", "```json", json.dumps(wire, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(out) + "\n"


def replace_section(doc: str, new: str) -> str:
    start = doc.index(HEADING)
    end = doc.index("\n## ", start) + 1
    return doc[:start] + new + doc[end:]


def current_section(doc: str) -> str:
    start = doc.index(HEADING)
    return doc[start : doc.index("\n## ", start) + 1]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.write_text(replace_section(DOC.read_text(), section()))
    else:
        sys.stdout.write(section())

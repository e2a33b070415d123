"""The wallet pays a shop built by a second team from docs/protocol.md alone, which leaves optional fields out.

The shop is the reference vendor on loopback behind a client that does what such a shop does: its receipts carry
no ``valid_until`` for a one-off item (the field is optional), signed by the shop's certified key over the body it
sends. The wallet must settle, store and show that receipt like any other.
"""

from __future__ import annotations

from typing import Any

from netpay.encoding import canonical_json
from netpay.keys import SigningKey
from netpay.money import Money
from netpay.signed import SIGNING_DOMAIN
from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor
from tests.support.wallet import funded_wallet, quote_for
from wallet_app.clients.vendor import VendorClient

ITEM = "harbour-bridge-reopens"


def _without_valid_until(wire: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    body = {k: v for k, v in wire["body"].items() if k != "valid_until"}
    envelope = {"type": wire["type"], "version": wire["version"], "signer": key.public.hex, "body": body}
    return {**envelope, "signature": key.sign(SIGNING_DOMAIN + canonical_json(envelope)).hex()}


def test_a_receipt_without_valid_until_settles(
    wallet_factory: Any, broker: RunningBroker, vendor: RunningVendor
) -> None:
    shop_key = vendor.vendor.key
    sent: list[dict[str, Any]] = []

    class SecondTeamShop(VendorClient):
        def pay(self, payment_wire: dict[str, Any], payment_url: str | None = None) -> dict[str, Any]:
            answer = super().pay(payment_wire, payment_url)
            receipt = _without_valid_until(answer["receipt"], shop_key)
            sent.append(receipt)
            return {"receipt": receipt}

    wallet = wallet_factory(vendor_client_factory=SecondTeamShop)
    funded_wallet(wallet, broker.url, coins=50)
    q, c = quote_for(vendor.url, ITEM)
    checked = wallet.check_quote(q, c, vendor.url)
    paid = wallet.pay_quote(checked.quote, checked.vendor_certificate, vendor.url, "prompt")

    assert "valid_until" not in sent[0]["body"]
    assert paid.receipt.body.valid_until is None and paid.access_token
    assert paid.receipt.to_wire() == sent[0]  # kept exactly as the shop signed it
    assert wallet.balance()[0].unspent == Money(45, "EUR")
    assert [e.status for e in wallet.activity() if e.kind == "payment"] == ["settled"]
    stored = wallet.receipt_for(checked.quote.body.quote_id, vendor.vendor_id)
    assert stored is not None and stored.receipt.to_wire() == sent[0]

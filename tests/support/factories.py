"""Builders for protocol objects with sensible defaults, shared by every test package."""

from __future__ import annotations

import time

from netpay.chain import new_chain_id
from netpay.keys import SigningKey
from netpay.messages import BusinessModel, CoinCertificate, Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from netpay.traversal import PaywordTraversal, create_chain


def coin_certificate(
    key: SigningKey, length: int = 100, coin_value: Money | None = None, expires_in: int = 86400
) -> tuple[Signed[CoinCertificate], PaywordTraversal]:
    """A chain and its broker-signed certificate."""
    chain_id = new_chain_id()
    touchstone, traversal = create_chain(chain_id, length)
    now = int(time.time())
    body = CoinCertificate(
        chain_id=chain_id,
        broker_id="test-broker",
        touchstone=touchstone,
        length=length,
        coin_value=coin_value or Money(1, "EUR"),
        issued_at=now,
        expires_at=now + expires_in,
    )
    return Signed.sign(body, key), traversal


def vendor_certificate(
    broker: SigningKey, vendor: SigningKey, origin: str = "http://127.0.0.1:8201"
) -> Signed[VendorCertificate]:
    now = int(time.time())
    body = VendorCertificate(
        vendor_id="daily-planet",
        display_name="Daily Planet",
        public_key=vendor.public,
        origins=(origin,),
        api_url=origin,
        payment_url=f"{origin}/v1/payments",
        broker_id="test-broker",
        issued_at=now,
        expires_at=now + 365 * 86400,
    )
    return Signed.sign(body, broker)


def quote(
    vendor: SigningKey, price: Money | None = None, quote_id: str = "q-1", expires_in: int = 300
) -> Signed[Quote]:
    now = int(time.time())
    body = Quote(
        quote_id=quote_id,
        vendor_id="daily-planet",
        item_id="article-1",
        title="Harbour bridge reopens",
        price=price or Money(5, "EUR"),
        model=BusinessModel(),
        payment_url="http://127.0.0.1:8201/v1/payments",
        item_url="http://127.0.0.1:8201/items/article-1",
        issued_at=now,
        expires_at=now + expires_in,
    )
    return Signed.sign(body, vendor)

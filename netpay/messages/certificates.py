"""Certificates the broker signs: a chain's coin certificate (its touchstone), a vendor's certificate, and the
revocation list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader, from_hex
from netpay.errors import MalformedMessage
from netpay.keys import VerifyKey
from netpay.messages.fields import ID_LEN, check_origin, check_url, read_time
from netpay.money import Money
from netpay.signed import Body

__all__ = [
    "CoinCertificate",
    "RevocationList",
    "VendorCertificate",
]


@dataclass(frozen=True, slots=True)
class CoinCertificate(Body):
    """The broker's signature over a chain's touchstone: chain id, W_0, length, coin value, validity."""

    TYPE = "coin_certificate"
    chain_id: bytes
    broker_id: str
    touchstone: bytes
    length: int
    coin_value: Money
    issued_at: int
    expires_at: int

    @property
    def face_value(self) -> Money:
        return self.coin_value * self.length

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "broker_id": self.broker_id,
            "touchstone": self.touchstone.hex(),
            "length": self.length,
            "coin_value": self.coin_value.to_json(),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            chain_id=r.hex("chain_id", CHAIN_ID_BYTES),
            broker_id=r.text("broker_id", ID_LEN),
            touchstone=r.hex("touchstone", PAYWORD_BYTES),
            length=r.integer("length", 1, MAX_CHAIN_LENGTH),
            coin_value=Money.from_json(r.raw("coin_value"), f"{where}.coin_value"),
            issued_at=read_time(r, "issued_at"),
            expires_at=read_time(r, "expires_at"),
        )
        r.done()
        if obj.coin_value.amount <= 0:
            raise MalformedMessage(f"{where}.coin_value must be positive", field=f"{where}.coin_value")
        return obj


@dataclass(frozen=True, slots=True)
class VendorCertificate(Body):
    """The broker's signature binding a vendor id and name to its key, web origins and endpoints."""

    TYPE = "vendor_certificate"
    vendor_id: str
    display_name: str
    public_key: VerifyKey
    origins: tuple[str, ...]
    api_url: str
    payment_url: str
    broker_id: str
    issued_at: int
    expires_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "display_name": self.display_name,
            "public_key": self.public_key.hex,
            "origins": list(self.origins),
            "api_url": self.api_url,
            "payment_url": self.payment_url,
            "broker_id": self.broker_id,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            vendor_id=r.text("vendor_id", ID_LEN),
            display_name=r.text("display_name", 120),
            public_key=VerifyKey(r.hex("public_key", 32)),
            origins=tuple(r.items("origins", check_origin, max_items=16, min_items=1)),
            api_url=check_url(r.raw("api_url"), f"{where}.api_url"),
            payment_url=check_url(r.raw("payment_url"), f"{where}.payment_url"),
            broker_id=r.text("broker_id", ID_LEN),
            issued_at=read_time(r, "issued_at"),
            expires_at=read_time(r, "expires_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class RevocationList(Body):
    """The broker's signed list of revoked chains and vendors; ``serial`` only ever grows."""

    TYPE = "revocation_list"
    broker_id: str
    serial: int
    issued_at: int
    chains: tuple[bytes, ...]
    vendors: tuple[str, ...]

    def to_body(self) -> dict[str, Any]:
        return {
            "broker_id": self.broker_id,
            "serial": self.serial,
            "issued_at": self.issued_at,
            "chains": [c.hex() for c in self.chains],
            "vendors": list(self.vendors),
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        def chain(v: Any, w: str) -> bytes:
            return from_hex(v, CHAIN_ID_BYTES, w)

        def vendor(v: Any, w: str) -> str:
            if not isinstance(v, str) or not 1 <= len(v) <= ID_LEN:
                raise MalformedMessage(f"{w} must be a vendor id", field=w)
            return v

        r = FieldReader(data, where)
        obj = cls(
            r.text("broker_id", ID_LEN),
            r.integer("serial", 0),
            read_time(r, "issued_at"),
            tuple(r.items("chains", chain, 1_000_000)),
            tuple(r.items("vendors", vendor, 100_000)),
        )
        r.done()
        return obj

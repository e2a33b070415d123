"""Custody of a chain: a vendor claims it at the broker, asks the vendor holding it to release it, and the broker
closes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader
from netpay.messages.certificates import VendorCertificate
from netpay.messages.fields import ID_LEN, read_time
from netpay.signed import Body, Signed

__all__ = [
    "CloseRequest",
    "CustodyClaim",
    "CustodyGrant",
    "CustodyRelease",
    "ReleaseRequest",
]


@dataclass(frozen=True, slots=True)
class CustodyClaim(Body):
    """A vendor asks the broker for custody of a chain it has just been offered (signed by the vendor)."""

    TYPE = "custody_claim"
    vendor_id: str
    chain_id: bytes
    nonce: str
    claimed_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "chain_id": self.chain_id.hex(),
            "nonce": self.nonce,
            "claimed_at": self.claimed_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("vendor_id", ID_LEN),
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.text("nonce", ID_LEN),
            read_time(r, "claimed_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class CustodyGrant(Body):
    """The broker's signed record that ``vendor_id`` became the chain's custodian after ``previous``.

    ``window`` numbers the chain's custody windows (1, 2, ...); ``lower_index`` is the index the broker handed over
    (its lower bound of the chain's index). The new custodian shows it to ``previous`` in its release request, so the
    previous custodian can tell, offline, that the broker named the requester as the next custodian.
    """

    TYPE = "custody_grant"
    chain_id: bytes
    vendor_id: str
    previous: str
    window: int
    lower_index: int
    granted_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "vendor_id": self.vendor_id,
            "previous": self.previous,
            "window": self.window,
            "lower_index": self.lower_index,
            "granted_at": self.granted_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            chain_id=r.hex("chain_id", CHAIN_ID_BYTES),
            vendor_id=r.text("vendor_id", ID_LEN),
            previous=r.text("previous", ID_LEN),
            window=r.integer("window", 1, MAX_CHAIN_LENGTH * 4),
            lower_index=r.integer("lower_index", 0, MAX_CHAIN_LENGTH),
            granted_at=read_time(r, "granted_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class ReleaseRequest(Body):
    """Vendor B asks vendor A to release a chain; signed by B, carrying B's vendor certificate.

    ``grant`` (optional in the encoding, like every optional field: ``null`` when absent) is the broker-signed
    :class:`CustodyGrant` naming B as the custodian after A; a custodian releases only against one.
    """

    TYPE = "release_request"
    chain_id: bytes
    requester: Signed[VendorCertificate]
    nonce: str
    requested_at: int
    grant: Signed[CustodyGrant] | None = None

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "requester": self.requester.to_wire(),
            "nonce": self.nonce,
            "requested_at": self.requested_at,
            "grant": self.grant.to_wire() if self.grant is not None else None,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        requester = Signed.from_wire(r.raw("requester"), VendorCertificate, f"{where}.requester")
        nonce = r.text("nonce", ID_LEN)
        requested_at = read_time(r, "requested_at")
        raw = r.raw("grant", optional=True)
        grant = Signed.from_wire(raw, CustodyGrant, f"{where}.grant") if raw is not None else None
        r.done()
        return cls(chain_id, requester, nonce, requested_at, grant)


@dataclass(frozen=True, slots=True)
class CloseRequest(Body):
    """The broker asks a chain's custodian for its final index because the customer is returning the chain."""

    TYPE = "close_request"
    broker_id: str
    chain_id: bytes
    nonce: str
    requested_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "broker_id": self.broker_id,
            "chain_id": self.chain_id.hex(),
            "nonce": self.nonce,
            "requested_at": self.requested_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("broker_id", ID_LEN),
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.text("nonce", ID_LEN),
            read_time(r, "requested_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class CustodyRelease(Body):
    """A vendor's signed statement that it stopped accepting a chain at ``last_index`` (W_last_index given).

    ``released_to`` is the next vendor's id, or ``"broker"`` when the chain is being closed.
    """

    TYPE = "custody_release"
    chain_id: bytes
    released_by: str
    released_to: str
    last_index: int
    last_payword: bytes
    released_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "released_by": self.released_by,
            "released_to": self.released_to,
            "last_index": self.last_index,
            "last_payword": self.last_payword.hex(),
            "released_at": self.released_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            chain_id=r.hex("chain_id", CHAIN_ID_BYTES),
            released_by=r.text("released_by", ID_LEN),
            released_to=r.text("released_to", ID_LEN),
            last_index=r.integer("last_index", 0, MAX_CHAIN_LENGTH),
            last_payword=r.hex("last_payword", PAYWORD_BYTES),
            released_at=read_time(r, "released_at"),
        )
        r.done()
        return obj

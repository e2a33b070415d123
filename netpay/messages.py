"""Every object of the NetPay protocol, with strict parsing.

Signed objects (wrapped in :class:`netpay.signed.Signed`): coin certificate, vendor certificate, quote, receipt,
custody claim, release request, custody release, spend report, redemption batch, redemption result, close request
and revocation list. The payment itself is not signed: the paywords are its proof. Field names and limits here are
the wire format; ``docs/protocol.md`` documents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader, canonical_json, from_hex
from netpay.errors import CurrencyMismatch, MalformedMessage, WrongMessageType
from netpay.keys import VerifyKey
from netpay.money import Money
from netpay.signed import Body, Signed

__all__ = [
    "BusinessModel",
    "ClaimResult",
    "CloseRequest",
    "CoinCertificate",
    "CustodyClaim",
    "CustodyRelease",
    "Payment",
    "PaymentRefusal",
    "Quote",
    "Receipt",
    "RedemptionBatch",
    "RedemptionClaim",
    "RedemptionResult",
    "ReleaseRequest",
    "RevocationList",
    "Segment",
    "SegmentRef",
    "SpendEntry",
    "SpendReport",
    "VendorCertificate",
    "VendorRequest",
]

_ID = 64  # longest identifier
_TIME_MAX = 2**40  # seconds since the epoch; far beyond any real date
MAX_SEGMENTS = 8
MAX_BATCH = 1000


def _time(r: FieldReader, name: str, optional: bool = False) -> Any:
    return r.integer(name, 0, _TIME_MAX, optional=optional)


def _origin(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 255 or not value.startswith(("http://", "https://")):
        raise MalformedMessage(f"{where} must be an http(s) origin", field=where)
    rest = value.split("://", 1)[1]
    if "/" in rest or "?" in rest or "#" in rest or "@" in rest or not rest:
        raise MalformedMessage(f"{where} must be scheme://host[:port] with no path", field=where)
    return value


def _url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 2048 or not value.startswith(("http://", "https://")):
        raise MalformedMessage(f"{where} must be an http(s) URL", field=where)
    return value


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
            broker_id=r.text("broker_id", _ID),
            touchstone=r.hex("touchstone", PAYWORD_BYTES),
            length=r.integer("length", 1, MAX_CHAIN_LENGTH),
            coin_value=Money.from_json(r.raw("coin_value"), f"{where}.coin_value"),
            issued_at=_time(r, "issued_at"),
            expires_at=_time(r, "expires_at"),
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
            vendor_id=r.text("vendor_id", _ID),
            display_name=r.text("display_name", 120),
            public_key=VerifyKey(r.hex("public_key", 32)),
            origins=tuple(r.items("origins", _origin, max_items=16, min_items=1)),
            api_url=_url(r.raw("api_url"), f"{where}.api_url"),
            payment_url=_url(r.raw("payment_url"), f"{where}.payment_url"),
            broker_id=r.text("broker_id", _ID),
            issued_at=_time(r, "issued_at"),
            expires_at=_time(r, "expires_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class BusinessModel:
    """How a price buys access: ``one_off`` (one item, kept) or ``time_pass`` (everything for ``duration_s``)."""

    kind: Literal["one_off", "time_pass"] = "one_off"
    duration_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.duration_s is not None:
            out["duration_s"] = self.duration_s
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> BusinessModel:
        r = FieldReader(data, where)
        kind = r.text("kind", 16)
        duration = r.integer("duration_s", 60, 366 * 86400, optional=True)
        r.done()
        if kind == "one_off" and duration is None:
            return cls("one_off")
        if kind == "time_pass" and duration is not None:
            return cls("time_pass", duration)
        raise MalformedMessage(f"{where} must be one_off, or time_pass with duration_s", field=where)


@dataclass(frozen=True, slots=True)
class Quote(Body):
    """A vendor's signed offer: this item, at this price, under this model, payable here until ``expires_at``."""

    TYPE = "quote"
    quote_id: str
    vendor_id: str
    item_id: str
    title: str
    price: Money
    model: BusinessModel
    payment_url: str
    item_url: str
    issued_at: int
    expires_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote_id,
            "vendor_id": self.vendor_id,
            "item_id": self.item_id,
            "title": self.title,
            "price": self.price.to_json(),
            "model": self.model.to_json(),
            "payment_url": self.payment_url,
            "item_url": self.item_url,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            quote_id=r.text("quote_id", _ID),
            vendor_id=r.text("vendor_id", _ID),
            item_id=r.text("item_id", _ID),
            title=r.text("title", 200),
            price=Money.from_json(r.raw("price"), f"{where}.price"),
            model=BusinessModel.from_json(r.raw("model"), f"{where}.model"),
            payment_url=_url(r.raw("payment_url"), f"{where}.payment_url"),
            item_url=_url(r.raw("item_url"), f"{where}.item_url"),
            issued_at=_time(r, "issued_at"),
            expires_at=_time(r, "expires_at"),
        )
        r.done()
        if obj.price.amount <= 0:
            raise MalformedMessage(f"{where}.price must be positive", field=f"{where}.price")
        return obj


@dataclass(frozen=True, slots=True)
class Segment:
    """Part of a payment from one chain: coins ``from_index+1 .. to_index``, proven by W_to_index."""

    certificate: Signed[CoinCertificate]
    from_index: int
    to_index: int
    payword: bytes

    @property
    def chain_id(self) -> bytes:
        return self.certificate.body.chain_id

    @property
    def coins(self) -> int:
        return self.to_index - self.from_index

    @property
    def amount(self) -> Money:
        return self.certificate.body.coin_value * self.coins

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "certificate": self.certificate.to_wire(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "payword": self.payword.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str, verify: bool = True) -> Segment:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        cert = Signed.from_wire(r.raw("certificate"), CoinCertificate, f"{where}.certificate", verify=verify)
        seg = cls(
            certificate=cert,
            from_index=r.integer("from_index", 0, MAX_CHAIN_LENGTH),
            to_index=r.integer("to_index", 1, MAX_CHAIN_LENGTH),
            payword=r.hex("payword", PAYWORD_BYTES),
        )
        r.done()
        if chain_id != cert.body.chain_id:
            raise MalformedMessage(f"{where}.chain_id differs from its certificate", field=f"{where}.chain_id")
        if not seg.from_index < seg.to_index <= cert.body.length:
            raise MalformedMessage(
                f"{where} must have from_index < to_index <= chain length", field=f"{where}.to_index"
            )
        return seg


@dataclass(frozen=True, slots=True)
class Payment(Body):
    """What the wallet sends a vendor: the quote it pays and one or more segments. Not signed: paywords prove it."""

    TYPE = "payment"
    payment_id: str
    quote: Signed[Quote]
    segments: tuple[Segment, ...]

    @property
    def amount(self) -> Money:
        total = Money.zero(self.quote.body.price.currency)
        for seg in self.segments:
            if seg.amount.currency != total.currency:
                raise CurrencyMismatch("a segment's coins are in another currency than the price")
            total = total + seg.amount
        return total

    def to_body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "quote": self.quote.to_wire(),
            "segments": [s.to_json() for s in self.segments],
        }

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "version": self.VERSION, **self.to_body()}

    def canonical(self) -> bytes:
        """``canonical_json(self.to_wire())``, assembled from the quote's and certificates' cached encodings
        (keys in sorted order at every level, as canonical JSON has them)."""
        segments = b",".join(
            b'{"certificate":%s,"chain_id":"%s","from_index":%d,"payword":"%s","to_index":%d}'
            % (s.certificate.wire_json(), s.chain_id.hex().encode(), s.from_index, s.payword.hex().encode(),
               s.to_index)
            for s in self.segments
        )  # fmt: skip
        return b'{"payment_id":%s,"quote":%s,"segments":[%s],"type":%s,"version":%d}' % (
            canonical_json(self.payment_id), self.quote.wire_json(), segments, canonical_json(self.TYPE),
            self.VERSION,
        )  # fmt: skip

    @classmethod
    def from_body(cls, data: Any, where: str, verify: bool = True) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            payment_id=r.text("payment_id", _ID),
            quote=Signed.from_wire(r.raw("quote"), Quote, f"{where}.quote", verify=verify),
            segments=tuple(
                r.items("segments", lambda v, w: Segment.from_json(v, w, verify), MAX_SEGMENTS, min_items=1)
            ),
        )
        r.done()
        ids = [s.chain_id for s in obj.segments]
        if len(set(ids)) != len(ids):
            raise MalformedMessage(f"{where}.segments name the same chain twice", field=f"{where}.segments")
        return obj

    @classmethod
    def from_wire(cls, data: Any, where: str = "payment", verify: bool = True) -> Payment:
        """Parse ``{"type": "payment", "version": 1, ...body}``. ``verify=False`` skips signature checks for
        parties that check (and cache) them themselves."""
        if not isinstance(data, dict):
            raise MalformedMessage(f"{where} must be a JSON object")
        body = dict(data)
        if body.pop("type", None) != cls.TYPE or body.pop("version", None) != cls.VERSION:
            raise WrongMessageType(f"{where} must have type 'payment' and version {cls.VERSION}")
        return cls.from_body(body, where, verify)


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A segment named without its certificate: chain id and index range."""

    chain_id: bytes
    from_index: int
    to_index: int

    def to_json(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id.hex(), "from_index": self.from_index, "to_index": self.to_index}

    @classmethod
    def from_json(cls, data: Any, where: str) -> SegmentRef:
        r = FieldReader(data, where)
        obj = cls(
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.integer("from_index", 0, MAX_CHAIN_LENGTH),
            r.integer("to_index", 1, MAX_CHAIN_LENGTH),
        )
        r.done()
        if obj.from_index >= obj.to_index:
            raise MalformedMessage(f"{where} must have from_index < to_index", field=where)
        return obj


@dataclass(frozen=True, slots=True)
class Receipt(Body):
    """The vendor's signed proof of payment, bound to the quote by its digest, with the access token."""

    TYPE = "receipt"
    receipt_id: str
    payment_id: str
    quote_id: str
    quote_digest: bytes
    vendor_id: str
    item_id: str
    amount: Money
    segments: tuple[SegmentRef, ...]
    access_token: str
    valid_until: int | None
    issued_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "receipt_id": self.receipt_id,
            "payment_id": self.payment_id,
            "quote_id": self.quote_id,
            "quote_digest": self.quote_digest.hex(),
            "vendor_id": self.vendor_id,
            "item_id": self.item_id,
            "amount": self.amount.to_json(),
            "segments": [s.to_json() for s in self.segments],
            "access_token": self.access_token,
            "valid_until": self.valid_until,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            receipt_id=r.text("receipt_id", _ID),
            payment_id=r.text("payment_id", _ID),
            quote_id=r.text("quote_id", _ID),
            quote_digest=r.hex("quote_digest", 32),
            vendor_id=r.text("vendor_id", _ID),
            item_id=r.text("item_id", _ID),
            amount=Money.from_json(r.raw("amount"), f"{where}.amount"),
            segments=tuple(r.items("segments", SegmentRef.from_json, MAX_SEGMENTS, min_items=1)),
            access_token=r.text("access_token", 512),
            valid_until=_time(r, "valid_until", optional=True),
            issued_at=_time(r, "issued_at"),
        )
        r.done()
        return obj


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
            r.text("vendor_id", _ID),
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.text("nonce", _ID),
            _time(r, "claimed_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class ReleaseRequest(Body):
    """Vendor B asks vendor A to release a chain; signed by B, carrying B's vendor certificate."""

    TYPE = "release_request"
    chain_id: bytes
    requester: Signed[VendorCertificate]
    nonce: str
    requested_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "requester": self.requester.to_wire(),
            "nonce": self.nonce,
            "requested_at": self.requested_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            chain_id=r.hex("chain_id", CHAIN_ID_BYTES),
            requester=Signed.from_wire(r.raw("requester"), VendorCertificate, f"{where}.requester"),
            nonce=r.text("nonce", _ID),
            requested_at=_time(r, "requested_at"),
        )
        r.done()
        return obj


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
            r.text("broker_id", _ID),
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.text("nonce", _ID),
            _time(r, "requested_at"),
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
            released_by=r.text("released_by", _ID),
            released_to=r.text("released_to", _ID),
            last_index=r.integer("last_index", 0, MAX_CHAIN_LENGTH),
            last_payword=r.hex("last_payword", PAYWORD_BYTES),
            released_at=_time(r, "released_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """One accepted spend: coins ``from_index+1 .. to_index`` of a chain, proven by W_to_index."""

    chain_id: bytes
    from_index: int
    to_index: int
    payword: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "payword": self.payword.hex(),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> SpendEntry:
        r = FieldReader(data, where)
        obj = cls(
            r.hex("chain_id", CHAIN_ID_BYTES),
            r.integer("from_index", 0, MAX_CHAIN_LENGTH),
            r.integer("to_index", 1, MAX_CHAIN_LENGTH),
            r.hex("payword", PAYWORD_BYTES),
        )
        r.done()
        if obj.from_index >= obj.to_index:
            raise MalformedMessage(f"{where} must have from_index < to_index", field=where)
        return obj


@dataclass(frozen=True, slots=True)
class SpendReport(Body):
    """A vendor's signed report of spends it accepted ("almost on-line"): the broker's lower bound per chain."""

    TYPE = "spend_report"
    report_id: str
    vendor_id: str
    entries: tuple[SpendEntry, ...]
    reported_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "vendor_id": self.vendor_id,
            "entries": [e.to_json() for e in self.entries],
            "reported_at": self.reported_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("report_id", _ID),
            r.text("vendor_id", _ID),
            tuple(r.items("entries", SpendEntry.from_json, MAX_BATCH, min_items=1)),
            _time(r, "reported_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class RedemptionClaim:
    """A vendor's claim for coins ``from_index+1 .. to_index`` of a chain, with an optional custody release."""

    chain_id: bytes
    from_index: int
    to_index: int
    payword: bytes
    release: Signed[CustodyRelease] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "payword": self.payword.hex(),
            "release": self.release.to_wire() if self.release else None,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RedemptionClaim:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        from_index = r.integer("from_index", 0, MAX_CHAIN_LENGTH)
        to_index = r.integer("to_index", 1, MAX_CHAIN_LENGTH)
        payword = r.hex("payword", PAYWORD_BYTES)
        raw = r.raw("release", optional=True)
        release = Signed.from_wire(raw, CustodyRelease, f"{where}.release") if raw is not None else None
        r.done()
        if from_index >= to_index:
            raise MalformedMessage(f"{where} must have from_index < to_index", field=where)
        return cls(chain_id, from_index, to_index, payword, release)


@dataclass(frozen=True, slots=True)
class RedemptionBatch(Body):
    """A vendor's signed batch of claims. ``batch_id`` makes it idempotent."""

    TYPE = "redemption_batch"
    batch_id: str
    vendor_id: str
    claims: tuple[RedemptionClaim, ...]
    created_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "vendor_id": self.vendor_id,
            "claims": [c.to_json() for c in self.claims],
            "created_at": self.created_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("batch_id", _ID),
            r.text("vendor_id", _ID),
            tuple(r.items("claims", RedemptionClaim.from_json, MAX_BATCH, min_items=1)),
            _time(r, "created_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """The broker's answer to one claim: accepted with the amount credited, or rejected with a reason code."""

    chain_id: bytes
    from_index: int
    to_index: int
    status: Literal["accepted", "rejected"]
    amount: Money
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id.hex(),
            "from_index": self.from_index,
            "to_index": self.to_index,
            "status": self.status,
            "amount": self.amount.to_json(),
            "reason": self.reason,
            "evidence": self.evidence,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> ClaimResult:
        r = FieldReader(data, where)
        chain_id = r.hex("chain_id", CHAIN_ID_BYTES)
        from_index = r.integer("from_index", 0, MAX_CHAIN_LENGTH)
        to_index = r.integer("to_index", 0, MAX_CHAIN_LENGTH)
        status = r.text("status", 16)
        amount = Money.from_json(r.raw("amount"), f"{where}.amount")
        reason = r.text("reason", 64, optional=True)
        evidence = r.raw("evidence")
        r.done()
        if status not in ("accepted", "rejected") or not isinstance(evidence, dict):
            raise MalformedMessage(f"{where} has a bad status or evidence", field=where)
        return cls(chain_id, from_index, to_index, status, amount, reason, evidence)


@dataclass(frozen=True, slots=True)
class RedemptionResult(Body):
    """The broker's signed answer to a redemption batch, one result per claim, in order."""

    TYPE = "redemption_result"
    batch_id: str
    vendor_id: str
    results: tuple[ClaimResult, ...]
    processed_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "vendor_id": self.vendor_id,
            "results": [c.to_json() for c in self.results],
            "processed_at": self.processed_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        obj = cls(
            r.text("batch_id", _ID),
            r.text("vendor_id", _ID),
            tuple(r.items("results", ClaimResult.from_json, MAX_BATCH)),
            _time(r, "processed_at"),
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
            if not isinstance(v, str) or not 1 <= len(v) <= _ID:
                raise MalformedMessage(f"{w} must be a vendor id", field=w)
            return v

        r = FieldReader(data, where)
        obj = cls(
            r.text("broker_id", _ID),
            r.integer("serial", 0),
            _time(r, "issued_at"),
            tuple(r.items("chains", chain, 1_000_000)),
            tuple(r.items("vendors", vendor, 100_000)),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class PaymentRefusal(Body):
    """A vendor's signed statement that it did not accept a payment and recorded nothing for it.

    Sent inside the error body of a refused payment (``details.refusal``). Only with it may a wallet release the
    indexes it reserved; without it the indexes stay burned. ``held`` gives, per chain of the payment, the index
    the vendor holds (or ``null`` when it does not hold the chain), so the wallet can resynchronise.
    """

    TYPE = "payment_refusal"
    payment_id: str
    quote_id: str
    vendor_id: str
    code: str
    held: tuple[tuple[bytes, int | None], ...]
    refused_at: int

    def to_body(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "quote_id": self.quote_id,
            "vendor_id": self.vendor_id,
            "code": self.code,
            "held": [{"chain_id": c.hex(), "index": i} for c, i in self.held],
            "refused_at": self.refused_at,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        def held(v: Any, w: str) -> tuple[bytes, int | None]:
            hr = FieldReader(v, w)
            out = (hr.hex("chain_id", CHAIN_ID_BYTES), hr.integer("index", 0, MAX_CHAIN_LENGTH, optional=True))
            hr.done()
            return out

        r = FieldReader(data, where)
        obj = cls(
            r.text("payment_id", _ID),
            r.text("quote_id", _ID),
            r.text("vendor_id", _ID),
            r.text("code", 64),
            tuple(r.items("held", held, MAX_SEGMENTS)),
            _time(r, "refused_at"),
        )
        r.done()
        return obj


@dataclass(frozen=True, slots=True)
class VendorRequest(Body):
    """A vendor's signed request about its own broker account: ``action`` is ``account`` or ``payout``.

    For a payout, ``amount`` is what to pay out (``None``: everything payable).
    """

    TYPE = "vendor_request"
    vendor_id: str
    action: str
    nonce: str
    requested_at: int
    amount: Money | None = None

    def to_body(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "action": self.action,
            "nonce": self.nonce,
            "requested_at": self.requested_at,
            "amount": self.amount.to_json() if self.amount else None,
        }

    @classmethod
    def from_body(cls, data: Any, where: str) -> Self:
        r = FieldReader(data, where)
        vendor_id = r.text("vendor_id", _ID)
        action = r.text("action", 16)
        nonce = r.text("nonce", _ID)
        at = _time(r, "requested_at")
        raw = r.raw("amount", optional=True)
        r.done()
        if action not in ("account", "payout"):
            raise MalformedMessage(f"{where}.action must be 'account' or 'payout'", field=f"{where}.action")
        amount = Money.from_json(raw, f"{where}.amount") if raw is not None else None
        if amount is not None and amount.amount <= 0:
            raise MalformedMessage(f"{where}.amount must be positive", field=f"{where}.amount")
        return cls(vendor_id, action, nonce, at, amount)

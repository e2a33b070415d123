"""A purchase: the vendor's quote (with its business model), the wallet's payment of payword segments, and the
vendor's receipt or signed refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from netpay.chain import CHAIN_ID_BYTES, MAX_CHAIN_LENGTH, PAYWORD_BYTES
from netpay.encoding import FieldReader, canonical_json
from netpay.errors import CurrencyMismatch, MalformedMessage, WrongMessageType
from netpay.messages.certificates import CoinCertificate
from netpay.messages.fields import ID_LEN, MAX_SEGMENTS, check_url, read_time
from netpay.money import Money
from netpay.signed import Body, Signed

__all__ = [
    "BusinessModel",
    "Payment",
    "PaymentRefusal",
    "Quote",
    "Receipt",
    "Segment",
    "SegmentRef",
]


#: Items one bundle may hold.
MAX_BUNDLE_ITEMS = 20


#: Most units one metered session may pay (its cap).
MAX_METERED_UNITS = 10_000


@dataclass(frozen=True, slots=True)
class BusinessModel:
    """How a price buys access: ``one_off`` (one item, kept), ``time_pass`` (everything for ``duration_s``),
    ``bundle`` (each of ``items``, kept: one approval, one payment, one receipt for several items) or ``metered``
    (volume-based, seed 000: the price buys one ``unit`` of the item, e.g. 30 s of audio; paying the first unit
    opens a session of at most ``cap_units`` units, each paid as it is used).

    A metered quote for a unit after the first names its session and its number (``session_id``, ``unit_no``);
    ``unit_s`` is the length of a unit of time (audio, video), if the unit is one."""

    kind: Literal["one_off", "time_pass", "bundle", "metered"] = "one_off"
    duration_s: int | None = None
    items: tuple[str, ...] = ()
    unit: str = ""
    unit_s: int | None = None
    cap_units: int = 0
    session_id: str | None = None
    unit_no: int = 1

    @property
    def is_metered(self) -> bool:
        return self.kind == "metered"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.duration_s is not None:
            out["duration_s"] = self.duration_s
        if self.kind == "bundle":
            out["items"] = list(self.items)
        if self.kind == "metered":
            out["unit"] = self.unit
            out["cap_units"] = self.cap_units
            out["unit_no"] = self.unit_no
            if self.unit_s is not None:
                out["unit_s"] = self.unit_s
            if self.session_id is not None:
                out["session_id"] = self.session_id
        return out

    @classmethod
    def from_json(cls, data: Any, where: str) -> BusinessModel:
        r = FieldReader(data, where)
        kind = r.text("kind", 16)
        if kind == "metered":
            return cls._metered(r, where)
        duration = r.integer("duration_s", 60, 366 * 86400, optional=True)
        items = None
        if kind == "bundle":
            items = r.items("items", lambda v, w: _item_id(v, w), MAX_BUNDLE_ITEMS, min_items=2)
        r.done()
        if kind == "one_off" and duration is None:
            return cls("one_off")
        if kind == "time_pass" and duration is not None:
            return cls("time_pass", duration)
        if kind == "bundle" and duration is None and items is not None:
            if len(set(items)) != len(items):
                raise MalformedMessage(f"{where}.items name an item twice", field=f"{where}.items")
            return cls("bundle", None, tuple(items))
        raise MalformedMessage(
            f"{where} must be one_off, time_pass with duration_s, bundle with items, or metered with unit and "
            "cap_units",
            field=where,
        )

    @classmethod
    def _metered(cls, r: FieldReader, where: str) -> BusinessModel:
        unit = r.text("unit", 40)
        cap = r.integer("cap_units", 1, MAX_METERED_UNITS)
        unit_no = r.integer("unit_no", 1, MAX_METERED_UNITS)
        unit_s = r.integer("unit_s", 1, 3600, optional=True)
        session_id = r.text("session_id", ID_LEN, optional=True)
        r.done()
        if unit_no > cap:
            raise MalformedMessage(f"{where}.unit_no is beyond cap_units", field=f"{where}.unit_no")
        if (session_id is None) != (unit_no == 1):
            raise MalformedMessage(f"{where}: the first unit opens a session, every later unit names it",
                                   field=f"{where}.session_id")  # fmt: skip
        return cls("metered", unit=unit, unit_s=unit_s, cap_units=cap, session_id=session_id, unit_no=unit_no)


def _item_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= ID_LEN:
        raise MalformedMessage(f"{where} must be an item id of 1 to {ID_LEN} characters", field=where)
    return value


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
            quote_id=r.text("quote_id", ID_LEN),
            vendor_id=r.text("vendor_id", ID_LEN),
            item_id=r.text("item_id", ID_LEN),
            title=r.text("title", 200),
            price=Money.from_json(r.raw("price"), f"{where}.price"),
            model=BusinessModel.from_json(r.raw("model"), f"{where}.model"),
            payment_url=check_url(r.raw("payment_url"), f"{where}.payment_url"),
            item_url=check_url(r.raw("item_url"), f"{where}.item_url"),
            issued_at=read_time(r, "issued_at"),
            expires_at=read_time(r, "expires_at"),
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
            payment_id=r.text("payment_id", ID_LEN),
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
            receipt_id=r.text("receipt_id", ID_LEN),
            payment_id=r.text("payment_id", ID_LEN),
            quote_id=r.text("quote_id", ID_LEN),
            quote_digest=r.hex("quote_digest", 32),
            vendor_id=r.text("vendor_id", ID_LEN),
            item_id=r.text("item_id", ID_LEN),
            amount=Money.from_json(r.raw("amount"), f"{where}.amount"),
            segments=tuple(r.items("segments", SegmentRef.from_json, MAX_SEGMENTS, min_items=1)),
            access_token=r.text("access_token", 512),
            valid_until=read_time(r, "valid_until", optional=True),
            issued_at=read_time(r, "issued_at"),
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
            r.text("payment_id", ID_LEN),
            r.text("quote_id", ID_LEN),
            r.text("vendor_id", ID_LEN),
            r.text("code", 64),
            tuple(r.items("held", held, MAX_SEGMENTS)),
            read_time(r, "refused_at"),
        )
        r.done()
        return obj

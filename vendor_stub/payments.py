"""Taking a payment: the checks, in the protocol's order, and the durable record of spend and receipt.

Order of checks: the quote is this vendor's own, unexpired and unpaid; the segments add up to the price; each coin
certificate is broker-signed, unexpired and not revoked (verified once per chain, then cached); this vendor holds
custody of each chain (claimed at the broker the first time); each segment starts at the index held (or anywhere
above the broker's lower bound after a hand-off without a release); the paywords hash back. Spends and receipt are
written in one transaction, durable before the receipt is returned. Every refusal that recorded nothing carries a
signed :class:`~netpay.messages.PaymentRefusal` so the wallet may reuse the indexes it reserved.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from netpay.chain import verify_paywords
from netpay.errors import (
    CustodyConflict,
    IdempotencyConflict,
    IndexConflict,
    NetPayError,
    NotFound,
    QuoteAlreadyPaid,
    QuoteExpired,
    UntrustedSigner,
    WrongAmount,
)
from netpay.keys import SigningKey
from netpay.messages import Payment, PaymentRefusal, Quote, Receipt, Segment, SegmentRef
from netpay.signed import Signed
from vendor_stub.access import AccessTokens
from vendor_stub.catalog import Catalog
from vendor_stub.custody import ChainBook, ChainState
from vendor_stub.storage import Store
from vendor_stub.trust import Trust

__all__ = ["PaymentDesk"]


class PaymentDesk:
    """Verifies payments and records them with their receipts."""

    def __init__(self, store: Store, trust: Trust, book: ChainBook, key: SigningKey, vendor_id: str,
                 catalog: Catalog, tokens: AccessTokens, clock: Callable[[], int],
                 on_recorded: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self._store = store
        self._trust = trust
        self._book = book
        self._key = key
        self.vendor_id = vendor_id
        self._catalog = catalog
        self._tokens = tokens
        self._now = clock
        self._on_recorded = on_recorded
        self._inflight: dict[str, tuple[str, threading.Event]] = {}
        self._inflight_lock = threading.Lock()
        self._issued: dict[str, tuple[bytes, Quote, str]] = {}

    # -- quotes -------------------------------------------------------------------------------------------------
    def issue_quote(self, quote: Quote) -> Signed[Quote]:
        """Sign a quote and remember it until it expires, so paying it needs no signature check."""
        signed = Signed.sign(quote, self._key)
        now = self._now()
        with self._inflight_lock:
            if len(self._issued) > 10_000:
                self._issued = {k: v for k, v in self._issued.items() if v[1].expires_at > now}
            self._issued[quote.quote_id] = (signed.signature, quote, signed.digest)
        return signed

    # -- entry point --------------------------------------------------------------------------------------------
    def pay(self, wire: Any) -> dict[str, Any]:
        """Take the payment ``wire`` (a decoded JSON body); return ``{"receipt": Signed[Receipt] wire}``."""
        payment: Payment | None = None
        try:
            payment = Payment.from_wire(wire, verify=False)
            return self._pay(payment, wire)
        except NetPayError as exc:
            exc.details["refusal"] = self._refusal(wire, payment, exc.code).to_wire()
            raise

    def receipt(self, payment_id: str) -> dict[str, Any]:
        row = self._store.one("SELECT receipt FROM payments WHERE payment_id = ?", (payment_id,))
        if row is None:
            raise NotFound("no payment with that id", payment_id=payment_id)
        return {"receipt": json.loads(row["receipt"])}

    # -- the checks ---------------------------------------------------------------------------------------------
    def _pay(self, payment: Payment, wire: Any) -> dict[str, Any]:
        now = self._now()
        signed_quote = payment.quote
        quote = signed_quote.body
        if signed_quote.signer != self._key.public or quote.vendor_id != self.vendor_id:
            raise UntrustedSigner("this quote was not issued by this shop", quote_id=quote.quote_id)
        issued = self._issued.get(quote.quote_id)
        if issued is None or issued[0] != signed_quote.signature or issued[1] != quote:
            signed_quote.verify_signature()  # not issued by this process (e.g. before a restart): check it
        digest = hashlib.sha256(_canonical(wire)).hexdigest()
        if (done := self._already(payment, digest)) is not None:
            return done
        if now >= quote.expires_at:
            raise QuoteExpired("the quote has expired; ask for a new one", expires_at=quote.expires_at)
        item = self._catalog.get(quote.item_id)
        if item is None:
            raise NotFound("the quoted item is no longer sold", item_id=quote.item_id)
        if payment.amount != quote.price:
            raise WrongAmount(f"the segments add up to {payment.amount}, the price is {quote.price}",
                              price=quote.price.to_json(), paid=payment.amount.to_json())  # fmt: skip
        for seg in payment.segments:
            self._trust.check_coin_certificate(seg.certificate, now)

        event = self._reserve_quote(payment)
        try:
            states = [self._book.state(seg.chain_id) for seg in payment.segments]
            with ExitStack() as stack:
                for st in sorted(states, key=lambda s: s.chain_id):
                    stack.enter_context(st.lock)
                return self._pay_holding(payment, digest, states, item.is_pass, item.model.duration_s)
        finally:
            with self._inflight_lock:
                self._inflight.pop(quote.quote_id, None)
            event.set()

    def _recorded(self, payment: Payment, digest: str) -> dict[str, Any] | None:
        """The stored answer if this payment was recorded; refuse another payment for a paid quote."""
        quote_id = payment.quote.body.quote_id
        row = self._store.one(
            "SELECT payment_id, request_digest, receipt FROM payments WHERE payment_id = ? OR quote_id = ?",
            (payment.payment_id, quote_id),
        )
        if row is None:
            return None
        if row["payment_id"] != payment.payment_id:
            raise QuoteAlreadyPaid("this quote is already paid by another payment", quote_id=quote_id)
        if row["request_digest"] != digest:
            raise IdempotencyConflict("this payment id was used for a different payment")
        return {"receipt": json.loads(row["receipt"])}

    def _already(self, payment: Payment, digest: str) -> dict[str, Any] | None:
        quote_id = payment.quote.body.quote_id
        for _ in range(2):
            if (done := self._recorded(payment, digest)) is not None:
                return done
            with self._inflight_lock:
                busy = self._inflight.get(quote_id)
            if busy is None:
                return None
            if busy[0] != payment.payment_id:
                raise QuoteAlreadyPaid("another payment for this quote is in progress", quote_id=quote_id)
            busy[1].wait(timeout=30)  # the same payment, sent twice at once: answer like the first
        return None

    def _reserve_quote(self, payment: Payment) -> threading.Event:
        quote_id = payment.quote.body.quote_id
        with self._inflight_lock:
            busy = self._inflight.get(quote_id)
            if busy is not None:
                if busy[0] == payment.payment_id:
                    raise IndexConflict("this payment is being processed; ask for its receipt",
                                        payment_id=payment.payment_id)  # fmt: skip
                raise QuoteAlreadyPaid("another payment for this quote is in progress", quote_id=quote_id)
            event = threading.Event()
            self._inflight[quote_id] = (payment.payment_id, event)
            return event

    def _pay_holding(self, payment: Payment, digest: str, states: list[ChainState], is_pass: bool,
                     duration_s: int | None) -> dict[str, Any]:  # fmt: skip
        # Re-check under the chain locks: a twin of this payment may have finished meanwhile.
        if (done := self._recorded(payment, digest)) is not None:
            return done
        for seg, st in zip(payment.segments, states, strict=True):
            self._book.load(st)
            if st.status is None:
                self._book.acquire(st, seg.certificate)
            elif st.status != "held":
                raise CustodyConflict("this shop has handed that chain on and no longer accepts it",
                                      chain_id=seg.chain_id.hex(), released_to=st.released_to)  # fmt: skip
        for seg, st in zip(payment.segments, states, strict=True):
            ok = seg.from_index == st.last_index if st.exact else seg.from_index >= st.last_index
            if not ok:
                raise IndexConflict(
                    f"segment starts at {seg.from_index}, this shop holds the chain at {st.last_index}",
                    chain_id=seg.chain_id.hex(), held_index=st.last_index,
                )  # fmt: skip
        for seg, st in zip(payment.segments, states, strict=True):
            verify_paywords(seg.chain_id, st.last_index, st.last_payword, seg.to_index, seg.payword)
        return self._record(payment, digest, states, is_pass, duration_s)

    # -- recording ----------------------------------------------------------------------------------------------
    def _record(self, payment: Payment, digest: str, states: list[ChainState], is_pass: bool,
                duration_s: int | None) -> dict[str, Any]:  # fmt: skip
        now = self._now()
        quote = payment.quote.body
        receipt_id = secrets.token_hex(16)
        valid_until = now + duration_s if is_pass and duration_s else None
        token = self._tokens.issue(quote.item_id, receipt_id, is_pass, valid_until)
        receipt = Signed.sign(
            Receipt(
                receipt_id=receipt_id,
                payment_id=payment.payment_id,
                quote_id=quote.quote_id,
                quote_digest=bytes.fromhex(self._quote_digest(payment.quote)),
                vendor_id=self.vendor_id,
                item_id=quote.item_id,
                amount=payment.amount,
                segments=tuple(SegmentRef(s.chain_id, s.from_index, s.to_index) for s in payment.segments),
                access_token=token,
                valid_until=valid_until,
                issued_at=now,
            ),
            self._key,
        )
        answer = {"receipt": receipt.to_wire()}
        receipt_text = json.dumps(answer["receipt"])

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO payments (payment_id, quote_id, request_digest, item_id, amount, currency, receipt,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (payment.payment_id, quote.quote_id, digest, quote.item_id, quote.price.amount,
                 quote.price.currency, receipt_text, now),
            )  # fmt: skip
            for seg in payment.segments:
                _insert_spend(c, payment.payment_id, seg, now)

        self._store.write(write)
        for seg, st in zip(payment.segments, states, strict=True):
            st.last_index, st.last_payword, st.exact = seg.to_index, seg.payword, True
        self._on_recorded()
        return answer

    def _quote_digest(self, signed: Signed[Quote]) -> str:
        issued = self._issued.get(signed.body.quote_id)
        if issued is not None and issued[0] == signed.signature and issued[1] == signed.body:
            return issued[2]
        return signed.digest

    # -- refusals -----------------------------------------------------------------------------------------------
    def refusal_for(self, wire: Any, code: str) -> Signed[PaymentRefusal]:
        """A signed refusal for a body that could not even be read (ids guessed from it, or ``unknown``)."""
        return self._refusal(wire, None, code)

    def _refusal(self, wire: Any, payment: Payment | None, code: str) -> Signed[PaymentRefusal]:
        if payment is not None:
            payment_id, quote_id = payment.payment_id, payment.quote.body.quote_id
            held = tuple((s.chain_id, self._held_index(s.chain_id)) for s in payment.segments)
        else:
            payment_id, quote_id, held = _guess_ids(wire), _guess_quote(wire), ()
        return Signed.sign(PaymentRefusal(payment_id, quote_id, self.vendor_id, code, held, self._now()), self._key)

    def _held_index(self, chain_id: bytes) -> int | None:
        st = self._book.state(chain_id)
        if st.loaded:
            return st.last_index if st.status == "held" else None
        row = self._store.one("SELECT status, last_index FROM chains WHERE chain_id = ?", (chain_id.hex(),))
        return int(row["last_index"]) if row is not None and row["status"] == "held" else None


def _insert_spend(c: sqlite3.Connection, payment_id: str, seg: Segment, now: int) -> None:
    updated = c.execute(
        "UPDATE chains SET last_index = ?, last_payword = ?, exact = 1 WHERE chain_id = ? AND status = 'held'",
        (seg.to_index, seg.payword.hex(), seg.chain_id.hex()),
    ).rowcount
    if updated != 1:
        raise CustodyConflict("the chain was handed on while this payment was being recorded")
    c.execute(
        "INSERT INTO spends (payment_id, chain_id, from_index, to_index, payword, coins, amount, currency,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (payment_id, seg.chain_id.hex(), seg.from_index, seg.to_index, seg.payword.hex(), seg.coins,
         seg.amount.amount, seg.amount.currency, now),
    )  # fmt: skip


def _short_text(value: Any) -> str | None:
    return value if isinstance(value, str) and 1 <= len(value) <= 64 else None


def _guess_ids(wire: Any) -> str:
    return (_short_text(wire.get("payment_id")) if isinstance(wire, dict) else None) or "unknown"


def _guess_quote(wire: Any) -> str:
    if isinstance(wire, dict) and isinstance(wire.get("quote"), dict) and isinstance(wire["quote"].get("body"), dict):
        return _short_text(wire["quote"]["body"].get("quote_id")) or "unknown"
    return "unknown"


def _canonical(wire: Any) -> bytes:
    """Canonical bytes of a body already checked by ``parse_json`` (no floats, no NaN): sorted keys, compact."""
    return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

"""Taking a payment: the checks, in the protocol's order, and the durable record of spend and receipt.

Order of checks: the quote is this vendor's own, unexpired and unpaid; the segments add up to the price; each coin
certificate is broker-signed, unexpired and not revoked (verified once per chain, then cached); this vendor holds
custody of each chain (claimed at the broker the first time); each segment starts at the index held (or anywhere
above the broker's lower bound after a hand-off without a release); the paywords hash back. Spends and receipt are
written in one transaction, durable before the receipt is returned. Every refusal that recorded nothing carries a
signed :class:`~netpay.messages.PaymentRefusal` so the wallet may reuse the indexes it reserved.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from netpay.chain import verify_paywords
from netpay.errors import (
    CurrencyMismatch,
    CustodyConflict,
    IdempotencyConflict,
    IndexConflict,
    InvalidPayword,
    NetPayError,
    NotFound,
    QuoteAlreadyPaid,
    QuoteExpired,
    UntrustedSigner,
    WrongAmount,
)
from netpay.keys import SigningKey
from netpay.messages import Payment, PaymentRefusal, Quote, Receipt, Segment, SegmentRef
from netpay.money import Money
from netpay.signed import Signed
from netpay_web.db import IntegrityError
from vendor_stub.access import AccessTokens
from vendor_stub.catalog import Catalog, Item
from vendor_stub.custody import ChainBook, ChainState
from vendor_stub.metered import MeteredDesk
from vendor_stub.recent import RecentPayment, RecentPayments
from vendor_stub.storage import Store
from vendor_stub.trust import Trust
from vendor_stub.wire import PaymentParser, sign_text

__all__ = ["Binding", "PaymentDesk", "PreparedPayment"]

#: Quotes this process issued and remembers (to pay them without a second signature check), at most.
MAX_ISSUED = 10_000


class _Done:
    """Set once when an in-flight payment is finished; a twin of it waits for that. A bare lock held until then:
    cheaper to make than a ``threading.Event``, which the hot path would otherwise make for every payment."""

    __slots__ = ("_is_set", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._is_set = False

    def set(self) -> None:
        if not self._is_set:
            self._is_set = True
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
            return True
        return False


class _NeedsThread(Exception):
    """The event-loop path would have to wait (a lock, the broker, a twin payment): use the thread path."""


@dataclass(slots=True)
class PreparedPayment:
    """A payment that passed every check, holding its chain locks, ready to be committed with ``write``."""

    payment: Payment
    states: list[ChainState]
    answer: dict[str, Any]
    write: Callable[[sqlite3.Connection], None]
    locks: ExitStack
    event: _Done
    entry: RecentPayment


@dataclass(frozen=True, slots=True)
class Binding:
    """A paid API resource a payment's token is spent on as it is recorded (``vendor_stub.paid_api``)."""

    item_id: str
    resource: str


class PaymentDesk:
    """Verifies payments and records them with their receipts."""

    def __init__(self, store: Store, trust: Trust, book: ChainBook, key: SigningKey, vendor_id: str,
                 catalog: Catalog, tokens: AccessTokens, clock: Callable[[], int],
                 on_recorded: Callable[[], None] = lambda: None, recent_window_s: int = 3600,
                 metered: MeteredDesk | None = None) -> None:  # fmt: skip
        self._store = store
        self._metered = metered
        self._trust = trust
        self._book = book
        self._key = key
        self.vendor_id = vendor_id
        self._catalog = catalog
        self._tokens = tokens
        self._now = clock
        self._on_recorded = on_recorded
        self._inflight: dict[str, tuple[str, _Done]] = {}
        self._inflight_lock = threading.Lock()
        self._issued: dict[str, tuple[bytes, Quote, str]] = {}
        self._recent = RecentPayments(store, clock(), window_s=recent_window_s)
        self._parser = PaymentParser()
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(8)

    @property
    def catalog(self) -> Catalog:
        """The catalog quotes and payments are checked against."""
        return self._catalog

    def set_catalog(self, catalog: Catalog) -> None:
        """Sell ``catalog`` from now on (a host whose items change while it runs, e.g. a wallet's shared files).
        A payment for a quote of an item no longer in it is refused like any unknown item."""
        self._catalog = catalog

    # -- quotes -------------------------------------------------------------------------------------------------
    def issue_quote(self, quote: Quote) -> dict[str, Any]:
        """Sign a quote (returned as its wire form) and remember it until it expires, so paying it needs no
        signature check and no second parse."""
        signed = Signed.sign(quote, self._key)
        wire = signed.to_wire()
        now = self._now()
        with self._inflight_lock:
            if len(self._issued) > MAX_ISSUED:
                self._issued = {k: v for k, v in self._issued.items() if v[1].expires_at > now}
                if len(self._issued) > MAX_ISSUED // 2:  # a flood of live quotes: keep the newest half (a
                    # quote no longer remembered is still paid, after its signature is checked)
                    self._issued = dict(list(self._issued.items())[-(MAX_ISSUED // 2) :])
            self._issued[quote.quote_id] = (signed.signature, quote, signed.digest)
            self._parser.remember_quote(wire, signed)
        return wire

    # -- entry points -------------------------------------------------------------------------------------------
    def pay(self, wire: Any, bind: Binding | None = None) -> dict[str, Any]:
        """Take the payment ``wire`` (a decoded JSON body); return ``{"receipt": Signed[Receipt] wire}``.
        ``bind``: a paid API resource the receipt's token is spent on, in the payment's own transaction.

        May block: waits for chain locks, claims custody at the broker, waits for the durable commit.
        """
        payment: Payment | None = None
        try:
            payment = self._parser.parse(wire)
            digest, item, amount, done = self._begin(payment, wire, wait=True)
            if done is not None:
                return done
            event = self._reserve_quote(payment, wait=True)
            try:
                states = [self._book.state(seg.chain_id) for seg in payment.segments]
                with self._hold(states, blocking=True):
                    done = self._verify_held(payment, digest, states, may_acquire=True)
                    if done is not None:
                        return done
                    answer, write, entry = self._prepare_record(payment, digest, item, amount, bind)
                    try:
                        self._store.write(write)
                    except (IdempotencyConflict, IndexConflict, CustodyConflict):
                        if (done := self.recorded_elsewhere(payment, digest)) is not None:
                            return done
                        raise
                    self._after_record(payment, states, entry)
                    return answer
            finally:
                self._unreserve(payment, event)
        except NetPayError as exc:
            exc.details["refusal"] = self._refusal(wire, payment, exc.code).to_wire()
            raise

    def read(self, body: bytes) -> tuple[Any, Payment | None]:
        """Decode a payment request body strictly (see :meth:`PaymentParser.read`): ``(wire, payment or None)``."""
        return self._parser.read(body)

    def pay_fast(
        self, wire: Any, payment: Payment | None = None, bind: Binding | None = None
    ) -> PreparedPayment | dict[str, Any] | None:
        """The same checks without ever blocking, for the event loop (``payment``: ``wire`` already parsed).

        Returns the stored answer of an already recorded payment, a :class:`PreparedPayment` whose ``write`` the
        caller commits (then :meth:`finish` runs, from the writer thread), or None when only :meth:`pay` can finish
        it (a chain seen for the first time, a chain lock taken, a twin of this payment in progress).
        """
        try:
            if payment is None:
                payment = self._parser.parse(wire)
            digest, item, amount, done = self._begin(payment, wire, wait=False)
            if done is not None:
                return done
            event = self._reserve_quote(payment, wait=False)
            try:
                states = [self._book.state(seg.chain_id) for seg in payment.segments]
                stack = self._hold(states, blocking=False)
                try:
                    done = self._verify_held(payment, digest, states, may_acquire=False)
                    if done is not None:
                        stack.close()
                        self._unreserve(payment, event)
                        return done
                    answer, write, entry = self._prepare_record(payment, digest, item, amount, bind)
                    return PreparedPayment(payment, states, answer, write, stack, event, entry)
                except BaseException:
                    stack.close()
                    raise
            except BaseException:
                self._unreserve(payment, event)
                raise
        except _NeedsThread:
            return None
        except NetPayError as exc:
            exc.details["refusal"] = self._refusal(wire, payment, exc.code).to_wire()
            raise

    def finish(self, prepared: PreparedPayment, committed: bool) -> None:
        """After the commit of a prepared payment (or its failure): update the chains, release the locks."""
        try:
            if committed:
                self._after_record(prepared.payment, prepared.states, prepared.entry)
        finally:
            prepared.locks.close()
            self._unreserve(prepared.payment, prepared.event)

    def recorded_elsewhere(self, payment: Payment, digest: str) -> dict[str, Any] | None:
        """After a write lost a race: the stored answer if another process of this shop recorded this very payment
        (the same payment sent to two processes gets one receipt), else None."""
        if not self._store.shared:
            return None
        for st in (self._book.state(seg.chain_id) for seg in payment.segments):
            st.loaded = False
        try:
            return self._recorded(payment, digest)
        except NetPayError:
            return None

    def refusal_error(self, exc: NetPayError, wire: Any) -> NetPayError:
        """Attach a signed refusal to an error raised while committing a prepared payment (nothing recorded)."""
        payment = None
        with contextlib.suppress(NetPayError):
            payment = Payment.from_wire(wire, verify=False)
        exc.details["refusal"] = self._refusal(wire, payment, exc.code).to_wire()
        return exc

    def receipt(self, payment_id: str) -> dict[str, Any]:
        row = self._store.one("SELECT receipt FROM payments WHERE payment_id = ?", (payment_id,))
        if row is None:
            raise NotFound("no payment with that id", payment_id=payment_id)
        return {"receipt": json.loads(row["receipt"])}

    # -- the checks ---------------------------------------------------------------------------------------------
    def _begin(self, payment: Payment, wire: Any, wait: bool) -> tuple[str, Item, Money, dict[str, Any] | None]:
        """Checks 1-3: own quote (idempotent re-send answered here), unexpired, unpaid; sum; certificates."""
        now = self._now()
        signed_quote = payment.quote
        quote = signed_quote.body
        if signed_quote.signer != self._key.public or quote.vendor_id != self.vendor_id:
            raise UntrustedSigner("this quote was not issued by this shop", quote_id=quote.quote_id)
        issued = self._issued.get(quote.quote_id)
        if issued is None or issued[0] != signed_quote.signature or (issued[1] is not quote and issued[1] != quote):
            signed_quote.verify_signature()  # not issued by this process (e.g. before a restart): check it
        digest = _payment_digest(payment)
        item = self._catalog.get(quote.item_id)
        if (done := self._already(payment, digest, wait)) is not None:
            return digest, item, quote.price, done  # type: ignore[return-value]
        if now >= quote.expires_at:
            raise QuoteExpired("the quote has expired; ask for a new one", expires_at=quote.expires_at)
        if item is None:
            raise NotFound("the quoted item is no longer sold", item_id=quote.item_id)
        amount = _amount(payment)
        if amount != quote.price:
            raise WrongAmount(f"the segments add up to {amount}, the price is {quote.price}",
                              price=quote.price.to_json(), paid=amount.to_json())  # fmt: skip
        for seg in payment.segments:
            self._trust.check_coin_certificate(seg.certificate, now)
        return digest, item, amount, None

    def _recorded(self, payment: Payment, digest: str) -> dict[str, Any] | None:
        """The stored answer if this payment was recorded; refuse another payment for a paid quote.

        Answered from the in-memory index of recent payments when it covers the quote, else from the database.
        """
        quote = payment.quote.body
        recent = self._recent
        if recent.covers(quote.issued_at) and not self._store.shared:  # shared: another process may have it
            mine = recent.by_payment(payment.payment_id)
            paid = recent.by_quote(quote.quote_id)
            if mine is None and paid is None:
                return None
            row: tuple[str, str, str] | None = None
            if mine is not None:
                row = (mine.payment_id, mine.digest, mine.receipt)
            elif paid is not None:
                row = (paid.payment_id, paid.digest, paid.receipt)
        else:
            found = self._store.one(
                "SELECT payment_id, request_digest, receipt FROM payments WHERE payment_id = ? OR quote_id = ?",
                (payment.payment_id, quote.quote_id),
            )
            row = (found[0], found[1], found[2]) if found is not None else None
        if row is None:
            return None
        if row[0] != payment.payment_id:
            raise QuoteAlreadyPaid("this quote is already paid by another payment", quote_id=quote.quote_id)
        if row[1] != digest:
            raise IdempotencyConflict("this payment id was used for a different payment")
        return {"receipt": json.loads(row[2])}

    def _already(self, payment: Payment, digest: str, wait: bool) -> dict[str, Any] | None:
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
            if not wait:
                raise _NeedsThread()
            busy[1].wait(timeout=30)  # the same payment, sent twice at once: answer like the first
        return None

    def _reserve_quote(self, payment: Payment, wait: bool) -> _Done:
        quote_id = payment.quote.body.quote_id
        with self._inflight_lock:
            busy = self._inflight.get(quote_id)
            if busy is not None:
                if busy[0] != payment.payment_id:
                    raise QuoteAlreadyPaid("another payment for this quote is in progress", quote_id=quote_id)
                if not wait:
                    raise _NeedsThread()
                raise IndexConflict("this payment is being processed; ask for its receipt",
                                    payment_id=payment.payment_id)  # fmt: skip
            event = _Done()
            self._inflight[quote_id] = (payment.payment_id, event)
            return event

    def _unreserve(self, payment: Payment, event: _Done) -> None:
        with self._inflight_lock:
            self._inflight.pop(payment.quote.body.quote_id, None)
        event.set()

    @staticmethod
    def _hold(states: list[ChainState], blocking: bool) -> ExitStack:
        """Take the chain locks in chain-id order (no deadlock between multi-chain payments)."""
        stack = ExitStack()
        for st in sorted(states, key=lambda s: s.chain_id):
            if not st.lock.acquire(blocking=blocking):
                stack.close()
                raise _NeedsThread()
            stack.callback(st.lock.release)
        return stack

    def _verify_held(self, payment: Payment, digest: str, states: list[ChainState], may_acquire: bool
                     ) -> dict[str, Any] | None:  # fmt: skip
        """Checks 4-6 under the chain locks: custody, index, paywords."""
        # Re-check: a twin of this payment may have finished meanwhile.
        if (done := self._recorded(payment, digest)) is not None:
            return done
        for seg, st in zip(payment.segments, states, strict=True):
            self._book.load(st)
            # Custody is claimed for a chain never seen, and again for one handed on before (it comes back) or one
            # offered above the index held (another vendor may have taken it while this one was unreachable).
            gap = st.status == "held" and st.exact and seg.from_index > st.last_index
            if st.status is None or st.status == "released" or gap:
                if not may_acquire:
                    raise _NeedsThread()
                if gap and not _extends(st, seg):
                    continue  # not the customer's next coins: refused below (index_conflict)
                self._book.acquire(st, seg.certificate)
            elif st.status != "held":
                raise CustodyConflict("this shop has closed that chain and no longer accepts it",
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
        return None

    # -- recording ----------------------------------------------------------------------------------------------
    def _prepare_record(self, payment: Payment, digest: str, item: Item, amount: Money, bind: Binding | None = None
                        ) -> tuple[dict[str, Any], Callable[[sqlite3.Connection], None], RecentPayment]:  # fmt: skip
        """The signed receipt and the one-transaction write of payment, spends, chain indexes and receipt (and the
        token's paid API binding, ``bind``, when the quote is for that resource's item)."""
        now = self._now()
        quote = payment.quote.body
        receipt_id = f"{self._id_prefix}{next(self._ids):016x}"  # unique, and no system call per payment
        duration_s = item.model.duration_s
        valid_until = now + duration_s if item.is_pass and duration_s else None
        metered = quote.model.is_metered
        if metered and (self._metered is None or not item.model.is_metered):
            raise NotFound("this shop sells no metered item by that id", item_id=quote.item_id)
        # every unit's receipt of a metered session carries the session's token (the opening receipt's own)
        session_id = (quote.model.session_id or receipt_id) if metered else receipt_id
        token = self._tokens.issue(quote.item_id, session_id, item.is_pass, valid_until)
        wire, receipt_text = sign_text(
            Receipt(
                receipt_id=receipt_id,
                payment_id=payment.payment_id,
                quote_id=quote.quote_id,
                quote_digest=bytes.fromhex(self._quote_digest(payment.quote)),
                vendor_id=self.vendor_id,
                item_id=quote.item_id,
                amount=amount,
                segments=tuple(SegmentRef(s.chain_id, s.from_index, s.to_index) for s in payment.segments),
                access_token=token,
                valid_until=valid_until,
                issued_at=now,
            ),
            self._key,
        )
        answer = {"receipt": wire}

        def write(c: sqlite3.Connection) -> None:
            try:
                c.execute(
                    "INSERT INTO payments (payment_id, quote_id, request_digest, item_id, amount, currency, receipt,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (payment.payment_id, quote.quote_id, digest, quote.item_id, quote.price.amount,
                     quote.price.currency, receipt_text, now),
                )  # fmt: skip
            except IntegrityError:
                raise IdempotencyConflict("this payment id or quote is already recorded for another payment") from None
            for seg in payment.segments:
                _insert_spend(c, payment.payment_id, seg, now)
            if metered and self._metered is not None:
                self._metered.record(c, quote, receipt_id, now)
            if bind is not None and bind.item_id == quote.item_id:
                c.execute(
                    "INSERT INTO api_uses (receipt_id, resource, used_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (receipt_id) DO NOTHING",
                    (receipt_id, bind.resource, now),
                )

        return answer, write, RecentPayment(payment.payment_id, quote.quote_id, digest, receipt_text, now)

    def _after_record(self, payment: Payment, states: list[ChainState], entry: RecentPayment) -> None:
        for seg, st in zip(payment.segments, states, strict=True):
            st.last_index, st.last_payword, st.exact = seg.to_index, seg.payword, True
        self._recent.add(entry, self._now())
        self._on_recorded()

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


def _extends(st: ChainState, seg: Segment) -> bool:
    """Whether the segment's payword hashes down to the payword this vendor holds: the customer really spent the
    coins in between (elsewhere), so another vendor may have taken the chain while this one could not be reached."""
    try:
        verify_paywords(seg.chain_id, st.last_index, st.last_payword, seg.to_index, seg.payword)
    except InvalidPayword:
        return False
    return True


def _insert_spend(c: sqlite3.Connection, payment_id: str, seg: Segment, now: int) -> None:
    # Compare-and-set on the database, not on this process's memory: with several processes of one shop (on
    # PostgreSQL) another may have moved the chain on since it was checked here; then exactly one of them wins.
    updated = c.execute(
        "UPDATE chains SET last_index = ?, last_payword = ?, exact = 1 WHERE chain_id = ? AND status = 'held'"
        " AND ((exact = 1 AND last_index = ?) OR (exact = 0 AND last_index <= ?))",
        (seg.to_index, seg.payword.hex(), seg.chain_id.hex(), seg.from_index, seg.from_index),
    ).rowcount
    if updated != 1:
        row = c.execute("SELECT status, last_index FROM chains WHERE chain_id = ?", (seg.chain_id.hex(),)).fetchone()
        if row is not None and row[0] == "held":
            raise IndexConflict(f"segment starts at {seg.from_index}, this shop holds the chain at {row[1]}",
                                chain_id=seg.chain_id.hex(), held_index=int(row[1]))  # fmt: skip
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


def _amount(payment: Payment) -> Money:
    """``payment.amount`` (the sum of the segments, CurrencyMismatch if a segment is in another currency than the
    price) with one Money made instead of one per segment and addition."""
    currency = payment.quote.body.price.currency
    total = 0
    for seg in payment.segments:
        value = seg.certificate.body.coin_value
        if value.currency != currency:
            raise CurrencyMismatch("a segment's coins are in another currency than the price")
        total += value.amount * (seg.to_index - seg.from_index)
    return Money(total, currency)


def _payment_digest(payment: Payment) -> str:
    """What makes two payments the same: id, the quote's and certificates' signatures (which bind their bodies, as
    both are checked before anything is recorded), and each segment's range and payword."""
    parts = [payment.payment_id, payment.quote.signature.hex()]
    for seg in payment.segments:
        parts += [seg.certificate.signature.hex(), seg.chain_id.hex(), str(seg.from_index), str(seg.to_index),
                  seg.payword.hex()]  # fmt: skip
    return hashlib.sha256("|".join(parts).encode()).hexdigest()

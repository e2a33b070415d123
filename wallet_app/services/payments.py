"""The payment engine: check a quote, journal a spend, send it, store the receipt, recover unfinished spends.

Journal rules (what keeps coins from being lost or spent twice):

1. The spend is written as ``pending`` with its reserved indexes, the exact payment JSON and the advanced traversal
   states, durably (fsync'd), **before** any payword leaves the process. It is written as one vault intent (one
   small row, so the fsync'd commit is cheap); the spend, its segments and the chains' new states reach their
   tables in the vault's next transaction, or when the vault next opens if the process died first. A program's
   payment (:meth:`PaymentEngine.prepare` with ``at_once``) goes to its tables in the fsync'd commit itself: its
   next payment usually follows at once, and would otherwise start with that second commit.
2. A receipt signed by the certified vendor key turns it ``settled``.
3. A refusal turns it ``released`` only when the error carries ``details.refusal``, a ``PaymentRefusal`` signed by
   the vendor for this payment id: the vendor proves it recorded nothing, so the chain is rewound to the segment's
   start (or to the index the vendor says it holds, if higher). Any other refusal leaves it ``burned``: its
   indexes are never used again.
4. Network failures leave it ``pending``; :meth:`PaymentEngine.recover` re-sends the same JSON (the vendor answers
   idempotently) or asks ``GET /v1/payments/{id}``.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlcipher3

from netpay.encoding import canonical_json, parse_json
from netpay.errors import (
    BadSignature,
    CertificateExpired,
    Forbidden,
    NetPayError,
    PeerUnavailable,
    QuoteAlreadyPaid,
    QuoteExpired,
    Revoked,
    UntrustedSigner,
)
from netpay.keys import VerifyKey
from netpay.messages import Payment, PaymentRefusal, Quote, Receipt, Segment, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.clients.http import EncodedJson
from wallet_app.clients.policy import require_secure_url
from wallet_app.clients.vendor import VendorClient
from wallet_app.services.chains import ChainBook
from wallet_app.services.crashpoints import crash_point
from wallet_app.services.events import WalletEvents
from wallet_app.services.signatures import SIGNATURES
from wallet_app.services.types import ActivityEntry, PaidQuote, PayVia
from wallet_app.vault.store import Vault

__all__ = ["PaymentEngine", "PreparedSpend", "TrustView"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Spend:
    """What the receipt of a journalled spend must match (kept in memory from the journal write to the settle)."""

    payment_id: str
    vendor_id: str
    vendor_key: VerifyKey
    quote_digest: str
    amount: Money
    item_url: str
    via: PayVia

    @classmethod
    def from_row(cls, row: Any) -> _Spend:
        return cls(
            row["payment_id"], row["vendor_id"], VerifyKey.from_hex(row["vendor_key"]), row["quote_digest"],
            Money(row["amount"], row["currency"]), row["item_url"], row["via"],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PreparedSpend:
    """A journalled payment not sent yet: its id, the exact bytes to send, where to, and what its receipt must match."""

    payment_id: str
    wire: EncodedJson
    payment_url: str
    api_url: str
    spend: _Spend
    #: with ``undoable``: per chain ``(chain_id, from, to, traversal state at from)`` (:meth:`PaymentEngine.cancel`)
    undo: tuple[tuple[str, int, int, bytes], ...] = ()


SPEND_INTENT = "spend"
MAX_ATTEMPTS = 3  # payments tried for one quote: the first, then retries after signed refusals
CUSTODY_REFUSALS = frozenset({"custody_conflict", "revoked"})  # the vendor will not take this chain
_INSERT_SPEND = """INSERT INTO spends (payment_id, quote_id, quote_digest, vendor_id, vendor_name, vendor_key,
    payment_url, item_url, title, amount, currency, via, origin, payment_json, created_at, api_url_json, status,
    error_code, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?15)"""


class TrustView:
    """What the engine needs to know about brokers: trusted keys and revocations (filled by the facade)."""

    def __init__(self) -> None:
        self.keys: dict[str, VerifyKey] = {}  # trusted broker id -> key
        self.revoked_chains: set[str] = set()
        self.revoked_vendors: set[str] = set()
        self.fetched_at: dict[str, float] = {}  # trusted broker id -> when its revocation list was fetched
        self.refresh_soon: Callable[[], None] = lambda: None  # ask for a background refresh (set by the facade)


class PaymentEngine:
    """Pays quotes and keeps the spend journal. ``lock`` guards the vault; HTTP calls run outside it."""

    def __init__(
        self,
        vault: Vault,
        book: ChainBook,
        trust: TrustView,
        vendor_client_factory: Callable[[str], VendorClient],
        clock: Callable[[], float],
        events: WalletEvents,
        lock: threading.RLock,
    ) -> None:
        self.vault = vault
        self.book = book
        self.trust = trust
        self.vendor_client = vendor_client_factory
        self.clock = clock
        self.events = events
        self.lock = lock
        vault.on_intent(SPEND_INTENT, self._apply_spend)

    # ----- checks -----------------------------------------------------------------------------------------------
    def check(
        self, quote_wire: Any, cert_wire: Any, origin: str | None, paying: bool = False
    ) -> tuple[Signed[Quote], Signed[VendorCertificate]]:
        """Parse and check a quote and its vendor certificate; raise the matching :mod:`netpay.errors` error.
        ``paying``: the caller pays next, and :meth:`pay` looks for a twin payment itself (under the lock)."""
        # Signatures seen verified before (the same certificate on every payment, the same quote checked then
        # paid) are not verified again; everything else below is checked on every call.
        cert = SIGNATURES.parse(cert_wire, VendorCertificate, "vendor_certificate")
        vc = cert.body
        broker_key = self.trust.keys.get(vc.broker_id)
        if broker_key is None:
            raise UntrustedSigner(f"the vendor certificate is from broker {vc.broker_id!r}, which you do not trust")
        cert.require_signer(broker_key)
        now = int(self.clock())
        if not vc.issued_at <= now <= vc.expires_at:
            raise CertificateExpired(f"the certificate of {vc.display_name} is not valid now")
        if vc.vendor_id in self.trust.revoked_vendors:
            raise Revoked(
                f"{vc.display_name} is revoked by broker {vc.broker_id}: the wallet refuses its quotes and pays it "
                "nothing",
                vendor_id=vc.vendor_id,
            )
        if origin is not None and origin not in vc.origins:
            raise Forbidden(f"the page's origin {origin} is not one of {vc.display_name}'s certified origins")
        quote = SIGNATURES.parse(quote_wire, Quote, "quote")
        q = quote.require_signer(vc.public_key)
        if q.vendor_id != vc.vendor_id:
            raise UntrustedSigner("the quote names another vendor than its certificate")
        if not _same_origin(q.payment_url, vc.payment_url) and not _same_origin(q.payment_url, vc.api_url):
            raise Forbidden("the quote's payment URL is not at the certified vendor")
        require_secure_url(q.payment_url, "payment")  # before anything is journalled: plain HTTP only on this computer
        require_secure_url(vc.api_url, "vendor")
        if q.expires_at <= now:
            raise QuoteExpired()
        if paying:
            return quote, cert
        with self.lock:
            row = self.vault.one(
                "SELECT status FROM spends WHERE vendor_id = ? AND quote_id = ? AND status IN ('pending', 'settled')",
                (q.vendor_id, q.quote_id),
            )
        if row is not None:
            raise QuoteAlreadyPaid(f"this quote is already paid ({row['status']})", quote_id=q.quote_id)
        return quote, cert

    # ----- paying -----------------------------------------------------------------------------------------------
    def pay(self, quote: Signed[Quote], cert: Signed[VendorCertificate], origin: str | None, via: PayVia) -> PaidQuote:
        """Journal, send, settle. A signed refusal proving a stale index is retried with the resynced chain; one
        refusing a chain for custody (remembered, so that chain is never offered to that vendor again) is retried
        with other chains. At most :data:`MAX_ATTEMPTS` payments per quote; each retry has a new payment id, and
        is made only after the vendor's signed refusal proved the previous one recorded nothing."""
        for _ in range(MAX_ATTEMPTS - 1):
            try:
                return self._pay_once(quote, cert, origin, via)
            except NetPayError as exc:
                if not (getattr(exc, "resynced", False) or getattr(exc, "custody_refused", None)):
                    raise
        return self._pay_once(quote, cert, origin, via)

    def _pay_once(
        self, quote: Signed[Quote], cert: Signed[VendorCertificate], origin: str | None, via: PayVia
    ) -> PaidQuote:
        prepared = self.prepare(quote, cert, origin, via)
        return self._send(prepared.payment_id, prepared.wire, prepared.payment_url, prepared.api_url,
                          spend=prepared.spend)  # fmt: skip

    def prepare(
        self,
        quote: Signed[Quote],
        cert: Signed[VendorCertificate],
        origin: str | None,
        via: PayVia,
        at_once: bool = False,
        undoable: bool = False,
    ) -> PreparedSpend:
        """Pick coins and journal the spend durably; return the payment, ready to leave the process (sent by
        :meth:`pay`, or inside a paid API request and then given to :meth:`finish`). ``at_once``: the spend
        reaches its tables in the journal's own commit (:meth:`Vault.journal`). ``undoable``: keep what
        :meth:`cancel` needs to give the coins back while the payment has not left the process."""
        q, vc = quote.body, cert.body
        with self.lock:
            # Checked again under the lock: a twin payment of this quote from another thread may have been
            # journalled since check() (its chain is then pending, so picking first would misreport no coins).
            if self.vault.one(
                "SELECT 1 FROM spends WHERE vendor_id = ? AND quote_id = ? AND status IN ('pending', 'settled')",
                (q.vendor_id, q.quote_id),
            ):
                raise QuoteAlreadyPaid("this quote is already being paid", quote_id=q.quote_id)
            picks = self.book.pick(vc.broker_id, q.price, vc.vendor_id, int(self.clock()), self.trust.revoked_chains)
            payment_id = secrets.token_hex(16)
            now = int(self.clock())
            spend = _Spend(payment_id, vc.vendor_id, vc.public_key, quote.digest, q.price, q.item_url, via)
            try:
                segments, states, undo = [], [], []
                for p in picks:
                    if undoable:  # (zipped with the segments below: one each)
                        undo.append((p.chain_id, self.book.state(p.chain_id)))
                    start, to, word, state = self.book.advance(p.chain_id, p.coins)
                    segments.append(Segment(self.book.certificate(p.chain_id), start, to, word))
                    states.append([p.chain_id, state.hex(), to])
                payment = Payment(payment_id, quote, tuple(segments))
                wire = EncodedJson.of(payment.to_wire(), payment.canonical())  # journalled and sent as these bytes
                row = (
                    payment_id, q.quote_id, spend.quote_digest, vc.vendor_id, vc.display_name, vc.public_key.hex,
                    q.payment_url, q.item_url, q.title, q.price.amount, q.price.currency, via, origin,
                    wire.encoded.decode(), now, json.dumps(vc.api_url),
                )  # fmt: skip
                seg_rows = [[s.chain_id.hex(), s.from_index, s.to_index] for s in segments]
                intent = {"spend": row, "segments": seg_rows, "chains": states}
                try:
                    self.vault.journal(SPEND_INTENT, intent, at_once=at_once)
                except OSError:  # the log's fsync failed after the commit: nothing was sent, so none of it stands
                    self._unjournal(payment_id, [(s.chain_id.hex(), s.from_index, s.to_index) for s in segments])
                    raise
            except BaseException:
                self.book.forget([p.chain_id for p in picks])
                raise
        # Only now, with the journal durable, may the paywords leave the process.
        self.events.emit("balance_changed")
        crash_point("after_journal")
        undone = tuple((cid, s.from_index, s.to_index, old) for (cid, old), s in zip(undo, segments, strict=True)
                       ) if undoable else ()  # fmt: skip
        return PreparedSpend(payment_id, wire, q.payment_url, vc.api_url, spend, undone)

    def _unjournal(self, payment_id: str, segments: list[tuple[str, int, int]]) -> None:
        """Undo a spend whose journal entry was committed but could not be made durable (its fsync failed): it was
        never sent, and the caller is told it failed, so it must not stay pending for recovery to send later. Its
        chains go back to where they were (rebuilt from the seed: this is the rare path). Best effort: if the vault
        cannot even do this, the spend stays pending and recovery sends it (paid once, never an index reused)."""
        try:
            with self.vault.tx() as c:  # (applies the entry first, if it was still waiting to be applied)
                self._delete_unsent(c, payment_id, [(cid, start, to, None) for cid, start, to in segments])
        except Exception:
            log.exception("payment %s: its journal entry could not be made durable nor undone", payment_id)

    def cancel(self, prepared: PreparedSpend) -> bool:
        """Give back the coins of a payment prepared with ``undoable`` that has NOT left this process (the caller
        knows: it holds the payment and never sent it): the spend is deleted and its chains put back where they
        were, as if it had never been prepared. False (nothing changed) when that cannot be done safely: it is
        not pending any more, or another payment has taken later coins of one of its chains since; it then stays
        pending, and is finished like any other (:meth:`finish` or recovery send it).

        Not durable by itself: lost in a power cut, the spend is simply pending again (recovery sends it). The
        next journal entry's fsync makes it durable before any of those coins can be spent again."""
        if not prepared.undo:
            return False
        with self.lock, self.vault.tx() as c:
            row = c.execute("SELECT status FROM spends WHERE payment_id = ?", (prepared.payment_id,)).fetchone()
            pending = row is not None and row["status"] == "pending"
            if not pending or not self._delete_unsent(c, prepared.payment_id, prepared.undo):
                return False
        self.events.emit("balance_changed")
        return True

    def _delete_unsent(self, c: Any, payment_id: str, segments: Sequence[tuple[str, int, int, bytes | None]]) -> bool:
        """Inside a transaction: delete a spend that never left this process and put each of its chains back from
        ``to`` to ``start`` (to the traversal ``state`` kept from before, or rebuilt from the seed when None).
        False, nothing changed, when a chain is no longer at ``to`` (a later spend took its next coins)."""
        for chain_id, _start, to, _state in segments:
            pos = c.execute("SELECT position FROM chains WHERE chain_id = ?", (chain_id,)).fetchone()
            if pos is None or pos[0] != to:
                return False
        for chain_id, start, _to, state in segments:
            if state is None:
                self.book.move_to(c, chain_id, start)
            else:
                c.execute("UPDATE chains SET traversal = ?, position = ? WHERE chain_id = ?", (state, start, chain_id))
        c.execute("DELETE FROM spend_segments WHERE payment_id = ?", (payment_id,))
        c.execute("DELETE FROM spends WHERE payment_id = ?", (payment_id,))
        self.book.forget([chain_id for chain_id, *_ in segments])
        return True

    def finish(self, prepared: PreparedSpend, answer: Any, error: NetPayError | None) -> PaidQuote:
        """Finish a payment that was sent inside another request: ``answer`` is the payment call's answer the shop
        sent back (``{"receipt": ...}``), or None; ``error`` the shop's refusal, or None. A receipt settles it, a
        refusal carrying ``details.refusal`` releases it; with neither (a shop that did not take the payment there,
        or said nothing of it) the same payment is sent to the payment URL, which answers for certain: the same
        receipt if the shop recorded it, else its refusal (``PeerUnavailable``: it stays pending, for recovery)."""
        if isinstance(answer, dict) and answer.get("receipt") is not None:
            with self.lock:
                return self._settle(prepared.payment_id, answer["receipt"], prepared.spend)
        if error is not None and "refusal" in error.details:
            with self.lock:
                self._refused(prepared.payment_id, error)
            raise error
        return self._send(prepared.payment_id, prepared.wire, prepared.payment_url, prepared.api_url,
                          spend=prepared.spend)  # fmt: skip

    def _apply_spend(self, conn: Any, intent: dict[str, Any]) -> None:
        """Apply a spend intent: the pending spend, its segments, the chains' new traversal states."""
        row = intent["spend"]
        payment_id, vendor_id = row[0], row[3]
        status, error = "pending", None
        try:
            conn.execute("SAVEPOINT spend")
            conn.execute(_INSERT_SPEND, (*row, status, error))
        except sqlcipher3.IntegrityError:
            # A second spend of one quote: only if an earlier intent could not be applied while the wallet ran
            # (its twin check then missed it). Its indexes are counted as burned; it is never re-sent. Applied at
            # once, nothing is sent yet: the whole journal entry is refused instead.
            conn.execute("ROLLBACK TO spend")
            if intent.get("at_once"):
                conn.execute("RELEASE spend")
                raise QuoteAlreadyPaid("this quote is already being paid", quote_id=row[1]) from None
            status, error = "burned", "twin_payment"
            conn.execute(_INSERT_SPEND, (*row, status, error))
        conn.execute("RELEASE spend")
        for chain_id, from_index, to_index in intent["segments"]:
            conn.execute(
                "INSERT INTO spend_segments VALUES (?, ?, ?, ?, ?, 0)",
                (payment_id, chain_id, from_index, to_index, vendor_id),
            )
        for chain_id, state, position in intent["chains"]:
            self.book.store_state(conn, chain_id, bytes.fromhex(state), position)

    def _send(
        self,
        payment_id: str,
        wire: dict[str, Any],
        payment_url: str,
        api_url: str,
        recovering: bool = False,
        spend: _Spend | None = None,
    ) -> PaidQuote:
        """Send the journalled payment JSON (the stored bytes); settle on a receipt, release/burn on a refusal."""
        client = self.vendor_client(api_url)
        try:
            answer = client.pay(wire, payment_url)
        except PeerUnavailable:
            raise  # stays pending; recover() finishes it
        except NetPayError as exc:
            if recovering and "refusal" not in exc.details:
                try:
                    found = client.payment(payment_id)
                except NetPayError:
                    found = {}
                if found.get("receipt") is not None:
                    with self.lock:
                        return self._settle(payment_id, found["receipt"])
            with self.lock:
                self._refused(payment_id, exc)
            raise
        crash_point("after_send")
        with self.lock:
            return self._settle(payment_id, answer.get("receipt"), spend)

    def _spend(self, payment_id: str) -> Any:
        return self.vault.one("SELECT * FROM spends WHERE payment_id = ?", (payment_id,))

    def _settle(self, payment_id: str, receipt_wire: Any, spend: _Spend | None = None) -> PaidQuote:
        """Verify the receipt against the journalled spend and store it. ``spend``: what this process journalled
        just now (saves reading it back); without it (recovery) the journal row is read."""
        fresh = spend is not None
        if spend is None:
            row = self._spend(payment_id)
            if row["status"] == "settled":
                return self._paid(row)
            spend = _Spend.from_row(row)
        try:
            receipt = Signed.from_wire(receipt_wire, Receipt, "receipt")
            r = receipt.require_signer(spend.vendor_key)
            if r.payment_id != payment_id or r.quote_digest.hex() != spend.quote_digest:
                raise BadSignature("the receipt is for another payment")
            if r.amount != spend.amount:
                raise BadSignature("the receipt names another amount")
        except NetPayError as exc:
            self._finish(payment_id, "burned", "bad_receipt")
            self.events.emit("payment_failed", payment_id, exc.code, exc.message)
            raise
        now = int(self.clock())

        def store(c: Any) -> bool:
            receipt_json = canonical_json(receipt.to_wire()).decode()
            settled = c.execute(
                """UPDATE spends SET status = 'settled', receipt_json = ?, access_token = ?, updated_at = ?
                   WHERE payment_id = ? AND status != 'settled'""",
                (receipt_json, r.access_token, now, payment_id),
            ).rowcount
            if settled:
                c.execute(  # only where it changes: a chain paid to its holder again keeps its page unwritten
                    """UPDATE chains SET holder = ?1 WHERE holder IS NOT ?1 AND chain_id IN
                       (SELECT chain_id FROM spend_segments WHERE payment_id = ?2)""",
                    (spend.vendor_id, payment_id),
                )
            return bool(settled)

        if fresh:
            # The receipt verified: the payment is done. Storing it need not delay the answer: the vault runs
            # the write before anyone's next use of it, and if the process dies first the spend is still
            # pending, so recovery re-sends it and the vendor answers with this same receipt.
            self.vault.defer(store, after=lambda: crash_point("after_settle"))
        else:
            with self.vault.tx() as c:
                stored = store(c)
            if not stored:  # settled meanwhile (by a payment thread): that stored receipt is the answer
                return self._paid(self._spend(payment_id))
            crash_point("after_settle")
        paid = PaidQuote(payment_id, receipt, r.access_token, spend.item_url, spend.amount, spend.via)
        self.events.emit("payment_settled", paid)
        if paid.via == "allowance":
            self.events.emit("auto_payment_made", paid)
        self.events.emit("balance_changed")
        return paid

    def _paid(self, row: Any) -> PaidQuote:
        receipt = Signed.from_wire(parse_json(row["receipt_json"]), Receipt, verify=False)
        return PaidQuote(
            payment_id=row["payment_id"],
            receipt=receipt,
            access_token=row["access_token"],
            item_url=row["item_url"],
            amount=Money(row["amount"], row["currency"]),
            via=row["via"],
        )

    def _finish(self, payment_id: str, status: str, code: str) -> None:
        with self.vault.tx() as c:
            c.execute(
                "UPDATE spends SET status = ?, error_code = ?, updated_at = ? WHERE payment_id = ?",
                (status, code, int(self.clock()), payment_id),
            )

    def _refused(self, payment_id: str, exc: NetPayError) -> None:
        """Release the spend if the vendor proved it recorded nothing; burn it otherwise."""
        row = self._spend(payment_id)
        refusal = self._verified_refusal(row, exc.details.get("refusal"))
        if refusal is None:
            self._finish(payment_id, "burned", exc.code)
        else:
            held = {cid.hex(): idx for cid, idx in refusal.held}
            resynced = False
            with self.vault.tx() as c:
                for seg in c.execute("SELECT * FROM spend_segments WHERE payment_id = ?", (payment_id,)).fetchall():
                    h = held.get(seg["chain_id"])  # None: the vendor does not hold the chain
                    pos = c.execute("SELECT position FROM chains WHERE chain_id = ?", (seg["chain_id"],)).fetchone()[0]
                    floor = seg["from_index"] if h is None else max(h, seg["from_index"])
                    target = floor if pos == seg["to_index"] else max(pos, h or 0)
                    resynced = resynced or (h is not None and h > seg["from_index"])
                    if target != pos:
                        self.book.move_to(c, seg["chain_id"], target)
                    if target < seg["to_index"]:
                        c.execute(
                            "UPDATE spend_segments SET rewound = 1 WHERE payment_id = ? AND chain_id = ?",
                            (payment_id, seg["chain_id"]),
                        )
                    if h is not None:
                        c.execute(
                            "UPDATE chains SET holder = ? WHERE chain_id = ?", (row["vendor_id"], seg["chain_id"])
                        )
                c.execute(
                    "UPDATE spends SET status = 'released', error_code = ?, updated_at = ? WHERE payment_id = ?",
                    (exc.code, int(self.clock()), payment_id),
                )
                refused = self._refused_chain(c, payment_id, exc) if exc.code in CUSTODY_REFUSALS else None
                if refused is not None:
                    self.book.refused(c, refused, row["vendor_id"], exc.code, payment_id, int(self.clock()))
            exc.released = True  # type: ignore[attr-defined]
            exc.resynced = resynced and exc.code == "index_conflict"  # type: ignore[attr-defined]
            exc.custody_refused = refused  # type: ignore[attr-defined]
            if refused is not None and exc.code == "revoked":
                self.trust.refresh_soon()  # the broker's own list says whether the chain is revoked for everyone
        self.events.emit("payment_failed", payment_id, exc.code, exc.message)
        self.events.emit("balance_changed")

    @staticmethod
    def _refused_chain(conn: Any, payment_id: str, exc: NetPayError) -> str | None:
        """The chain a custody refusal is about: ``details.chain_id`` if it is one of the payment's, else the only
        chain of a one-segment payment (None when it cannot be told: nothing is remembered then)."""
        chains = [r[0] for r in conn.execute("SELECT chain_id FROM spend_segments WHERE payment_id = ?", (payment_id,))]
        named = exc.details.get("chain_id")
        if isinstance(named, str) and named in chains:
            return named
        return chains[0] if len(chains) == 1 else None

    def _verified_refusal(self, row: Any, wire: Any) -> PaymentRefusal | None:
        if wire is None:
            return None
        try:
            refusal = Signed.from_wire(wire, PaymentRefusal, "refusal")
            body = refusal.require_signer(VerifyKey.from_hex(row["vendor_key"]))
        except NetPayError:
            log.warning("payment %s: refusal does not verify; indexes stay burned", row["payment_id"])
            return None
        if body.payment_id != row["payment_id"] or body.vendor_id != row["vendor_id"]:
            return None
        return body

    # ----- recovery ---------------------------------------------------------------------------------------------
    def recover(self) -> tuple[int, int]:
        """Finish pending spends; return ``(finished, still_pending)``."""
        with self.lock:
            rows = self.vault.query("SELECT * FROM spends WHERE status = 'pending' ORDER BY created_at")
        finished = left = 0
        for row in rows:
            api_url = json.loads(row["api_url_json"])
            wire = EncodedJson.of(parse_json(row["payment_json"]), row["payment_json"].encode())
            try:
                self._send(row["payment_id"], wire, row["payment_url"], api_url, recovering=True)
            except PeerUnavailable:
                left += 1
                continue
            except NetPayError:
                pass
            finished += 1
        return finished, left

    # ----- reading ----------------------------------------------------------------------------------------------
    def receipt_for(self, vendor_id: str, quote_id: str) -> PaidQuote | None:
        row = self.vault.one(
            "SELECT * FROM spends WHERE vendor_id = ? AND quote_id = ? AND status = 'settled'", (vendor_id, quote_id)
        )
        return self._paid(row) if row else None

    def receipt_of(self, payment_id: str) -> PaidQuote | None:
        """The stored receipt of payment ``payment_id`` once it is settled; None while pending or if it failed."""
        row = self.vault.one("SELECT * FROM spends WHERE payment_id = ? AND status = 'settled'", (payment_id,))
        return self._paid(row) if row else None

    def activity(self, limit: int) -> list[ActivityEntry]:
        out = [
            ActivityEntry(
                at=r["created_at"],
                kind="payment",
                status=r["status"],
                amount=Money(r["amount"], r["currency"]),
                vendor_id=r["vendor_id"],
                vendor_name=r["vendor_name"],
                title=r["title"],
                via=r["via"],
                ref=r["payment_id"],
                access_token=r["access_token"],
                item_url=r["item_url"],
            )
            # a metered session's settled units are one line of their own (MeteredSessions.activity)
            for r in self.vault.query(
                "SELECT * FROM spends WHERE NOT (status = 'settled' AND (via = 'metered' OR payment_id IN"
                " (SELECT opening_payment_id FROM metered_sessions))) ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (limit,),
            )
        ]
        for r in self.vault.query("SELECT * FROM chains ORDER BY created_at DESC LIMIT ?", (limit,)):
            value = Money(r["coin_amount"] * r["length"], r["currency"])
            out.append(ActivityEntry(r["created_at"], "buy", r["status"], value, None, None, None, None, r["chain_id"]))
        out.sort(key=lambda e: e.at, reverse=True)
        return out[:limit]


def _same_origin(a: str, b: str) -> bool:
    def origin(u: str) -> str:
        scheme, _, rest = u.partition("://")
        return scheme + "://" + rest.split("/", 1)[0]

    return origin(a) == origin(b)

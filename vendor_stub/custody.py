"""Custody of chains: which chains this vendor holds, up to which index, and hand-offs between vendors.

A chain is held by at most one vendor. The first time a chain is offered, the vendor claims it at the broker; if the
broker names a previous custodian, the vendor asks it for a signed release (its last index and payword), showing the
broker-signed custody grant that names it the next custodian, and passes the release on to the broker (it bounds both
custody windows). If the previous custodian cannot be reached, the vendor starts from the broker's lower bound (the
last index that vendor reported) and accepts any segment above it; overlap is settled at redemption.

Custody can come back: a chain this vendor released (or one it still thinks it holds, offered above its index after
another vendor took it while this one was down) is claimed again, which opens a new custody window at the broker.

A custodian releases a chain only to the vendor a broker-signed grant names as its successor, for a window after its
own. Each chain has a lock: payments, releases and closes on one chain run one at a time.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netpay.chain import verify_paywords
from netpay.encoding import FieldReader
from netpay.errors import (
    CustodyConflict,
    Forbidden,
    MalformedMessage,
    NetPayError,
    NotFound,
    PeerUnavailable,
    StaleRequest,
    UntrustedSigner,
)
from netpay.keys import SigningKey
from netpay.messages import (
    CloseRequest,
    CoinCertificate,
    CustodyClaim,
    CustodyGrant,
    CustodyRelease,
    ReleaseRequest,
)
from netpay.signed import Signed
from vendor_stub.broker_client import BrokerClient, request_release
from vendor_stub.storage import Store
from vendor_stub.trust import Trust

__all__ = ["ChainBook", "ChainState"]

log = logging.getLogger(__name__)

REQUEST_SKEW_S = 300


@dataclass(slots=True)
class ChainState:
    """What this vendor knows about one chain. ``status`` None means never seen."""

    chain_id: bytes
    lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: bool = False
    status: str | None = None
    last_index: int = 0
    last_payword: bytes = b""
    exact: bool = True
    released_to: str | None = None
    release: dict[str, Any] | None = None
    window: int = 0


class ChainBook:
    """In-memory chain states backed by the ``chains`` table."""

    def __init__(self, store: Store, trust: Trust, broker: BrokerClient, key: SigningKey, vendor_id: str,
                 clock: Callable[[], int], release_timeout_s: float = 3.0) -> None:  # fmt: skip
        self._store = store
        self._trust = trust
        self._broker = broker
        self._key = key
        self.vendor_id = vendor_id
        self._now = clock
        self._release_timeout = release_timeout_s
        self._states: dict[bytes, ChainState] = {}
        self._lock = threading.Lock()

    def state(self, chain_id: bytes) -> ChainState:
        """The state object (and lock) of a chain; load it from the database under its lock before use."""
        with self._lock:
            st = self._states.get(chain_id)
            if st is None:
                st = self._states[chain_id] = ChainState(chain_id)
            return st

    def load(self, st: ChainState) -> None:
        """Fill ``st`` from the database (call with ``st.lock`` held)."""
        if st.loaded and not self._store.shared:  # shared with other processes: the database is the truth
            return
        row = self._store.one("SELECT * FROM chains WHERE chain_id = ?", (st.chain_id.hex(),))
        if row is not None:
            st.status = row["status"]
            st.last_index = row["last_index"]
            st.last_payword = bytes.fromhex(row["last_payword"])
            st.exact = bool(row["exact"])
            st.released_to = row["released_to"]
            st.release = _json(row["release"])
            st.window = int(row["custody_window"])
        st.loaded = True

    # -- taking custody ---------------------------------------------------------------------------------------
    def acquire(self, st: ChainState, cert: Signed[CoinCertificate]) -> bool:
        """Take custody of a chain (``st.lock`` held): one never seen, or one released or lost before (custody comes
        back). Returns False when the broker says this vendor holds it already (nothing changes). Raises
        CustodyConflict/PeerUnavailable."""
        body = cert.body
        claim = Signed.sign(CustodyClaim(self.vendor_id, body.chain_id, secrets.token_hex(16), self._now()), self._key)
        answer = self._broker.claim_custody(claim)
        try:
            r = FieldReader(answer, "custody")
            custodian = r.text("custodian", 64)
            prev = r.raw("previous", optional=True)
            lb = FieldReader(r.raw("lower_bound"), "custody.lower_bound")
            lb_index = lb.integer("index", 0, body.length)
            lb_payword = lb.hex("payword", 32)
            window = r.integer("window", 1, 1 << 30, optional=True) or 0
            grant_raw = r.raw("grant", optional=True)
            grant = Signed.from_wire(grant_raw, CustodyGrant, "custody.grant") if grant_raw is not None else None
        except MalformedMessage as exc:
            raise PeerUnavailable(f"the broker's custody answer is malformed: {exc.message}") from None
        if custodian != self.vendor_id:
            raise CustodyConflict("the broker gave this chain to another vendor", custodian=custodian)
        if st.status == "held" and prev is None:
            return False  # still this vendor's (a gap in the customer's payments, not a hand-off)
        if lb_index == 0 and not hmac.compare_digest(lb_payword, body.touchstone):
            raise PeerUnavailable("the broker's lower bound does not match the touchstone")
        base = (lb_index, lb_payword, "touchstone" if lb_index == 0 else "lower_bound", lb_index == 0)
        base_release: dict[str, Any] | None = None
        previous_vendor: str | None = None
        if isinstance(prev, dict) and prev.get("vendor_id") not in (None, self.vendor_id):
            previous_vendor = str(prev.get("vendor_id"))
            try:
                release = self._ask_release(
                    body, previous_vendor, str(prev.get("api_url", "")), lb_index, lb_payword, grant
                )
                rb = release.body
                base = (rb.last_index, rb.last_payword, "release", True)
                base_release = release.to_wire()
                try:  # the broker bounds both custody windows by it; redemption attaches it again
                    self._broker.submit_release(release)
                except NetPayError as exc:
                    log.warning("could not pass the release of %s on to the broker (%s)", previous_vendor, exc.code)
            except NetPayError as exc:
                log.warning("previous custodian %s gave no release (%s); starting above the broker's lower bound %d",
                            previous_vendor, exc.code, lb_index)  # fmt: skip
                base = (lb_index, lb_payword, "lower_bound" if lb_index else "touchstone", False)
                if st.status is not None and st.last_index > lb_index:
                    # custody comes back: the coins up to this vendor's own last index are spent for sure (it
                    # accepted them itself), even if the broker's lower bound lags behind
                    base = (st.last_index, st.last_payword, "lower_bound", False)
        index, payword, source, exact = base
        now = self._now()

        grant_text = json.dumps(grant.to_wire()) if grant is not None else None

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO chains (chain_id, certificate, coin_value, currency, status, base_index, base_payword,"
                " base_source, base_release, previous_vendor, last_index, last_payword, exact, acquired_at,"
                " custody_window, custody_grant) VALUES (?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (chain_id) DO UPDATE SET status = 'held', released_to = NULL, release = NULL,"
                " released_at = NULL, base_index = excluded.base_index,"
                " base_payword = excluded.base_payword, base_source = excluded.base_source,"
                " base_release = excluded.base_release, previous_vendor = excluded.previous_vendor,"
                " last_index = excluded.last_index, last_payword = excluded.last_payword, exact = excluded.exact,"
                " acquired_at = excluded.acquired_at, custody_window = excluded.custody_window,"
                " custody_grant = excluded.custody_grant"
                # only custody that comes back (released or closed here, or a later window): never a row another
                # process of this shop has just taken and paid on (it would move the chain's index back)
                " WHERE chains.status <> 'held' OR chains.custody_window < excluded.custody_window"
                " OR chains.last_index < excluded.last_index",
                (body.chain_id.hex(), json.dumps(cert.to_wire()), body.coin_value.amount, body.coin_value.currency,
                 index, payword.hex(), source, json.dumps(base_release) if base_release else None, previous_vendor,
                 index, payword.hex(), int(exact), now, window, grant_text),
            )  # fmt: skip

        self._store.write(write)
        st.status, st.last_index, st.last_payword, st.exact, st.loaded = "held", index, payword, exact, True
        st.released_to, st.release, st.window = None, None, window
        if self._store.shared:  # another process of this shop may have taken it a moment before: its row wins
            st.loaded = False
            self.load(st)
        return True

    def _ask_release(self, body: CoinCertificate, previous: str, api_url: str, lb_index: int, lb_payword: bytes,
                     grant: Signed[CustodyGrant] | None) -> Signed[CustodyRelease]:  # fmt: skip
        if not api_url.startswith(("http://", "https://")):
            raise PeerUnavailable("the broker named no address for the previous custodian")
        req = Signed.sign(
            ReleaseRequest(body.chain_id, self._trust.certificate(), secrets.token_hex(16), self._now(), grant),
            self._key,
        )
        release = request_release(api_url, req, self._release_timeout)
        prev_cert = self._trust.check_vendor_certificate(self._broker.vendor_certificate(previous), self._now())
        if prev_cert.vendor_id != previous:
            raise UntrustedSigner("the broker's certificate names another vendor")
        release.require_signer(prev_cert.public_key)
        rb = release.body
        if rb.chain_id != body.chain_id or rb.released_by != previous or rb.released_to != self.vendor_id:
            raise UntrustedSigner("the release is for another chain or vendor")
        if rb.last_index > lb_index:
            verify_paywords(body.chain_id, lb_index, lb_payword, rb.last_index, rb.last_payword)
        elif rb.last_index < lb_index or not hmac.compare_digest(rb.last_payword, lb_payword):
            raise UntrustedSigner("the release is below what the previous custodian reported")
        return release

    # -- giving custody up ------------------------------------------------------------------------------------
    def release_to_vendor(self, wire: Any) -> Signed[CustodyRelease]:
        """Answer another vendor's signed release request (POST /v1/custody/release)."""
        req = Signed.from_wire(wire, ReleaseRequest, "release_request")
        now = self._now()
        cert = self._trust.check_vendor_certificate(req.body.requester, now)
        if req.signer != cert.public_key:
            raise UntrustedSigner("the release request is not signed by the vendor in its certificate")
        if abs(req.body.requested_at - now) > REQUEST_SKEW_S:
            raise StaleRequest(
                f"requested_at is more than {REQUEST_SKEW_S} s from this vendor's clock", vendor_time=now
            )
        if cert.vendor_id == self.vendor_id:
            raise CustodyConflict("a vendor cannot release a chain to itself")
        grant = req.body.grant
        if grant is None:
            raise Forbidden("a release request must carry the broker's custody grant", reason="no_grant")
        g = grant.require_signer(self._trust.broker_key())
        if g.chain_id != req.body.chain_id or g.vendor_id != cert.vendor_id or g.previous != self.vendor_id:
            raise Forbidden("the custody grant does not name the requester after this vendor", reason="not_named")
        return self._release(req.body.chain_id, cert.vendor_id, g.window)

    def close_for_broker(self, wire: Any) -> Signed[CustodyRelease]:
        """Answer the broker's signed close request (POST /v1/custody/close) with a release to ``broker``."""
        req = Signed.from_wire(wire, CloseRequest, "close_request")
        req.require_signer(self._trust.broker_key())
        if abs(req.body.requested_at - (now := self._now())) > REQUEST_SKEW_S:
            raise StaleRequest(
                f"requested_at is more than {REQUEST_SKEW_S} s from this vendor's clock", vendor_time=now
            )
        return self._release(req.body.chain_id, "broker")

    def _release(self, chain_id: bytes, to: str, window: int | None = None) -> Signed[CustodyRelease]:
        st = self.state(chain_id)
        with st.lock:
            self.load(st)
            if st.status is None:
                raise NotFound("this vendor has never held that chain", chain_id=chain_id.hex())
            if window is not None and window <= st.window:
                raise Forbidden("the custody grant is older than this vendor's custody window", reason="old_grant",
                                window=st.window)  # fmt: skip
            if st.status != "held":
                if st.released_to == to and st.release is not None:
                    return Signed.from_wire(st.release, CustodyRelease, "release", verify=False)
                raise CustodyConflict("this vendor no longer holds that chain", released_to=st.released_to)
            now = self._now()
            release = Signed.sign(
                CustodyRelease(chain_id, self.vendor_id, to, st.last_index, st.last_payword, now), self._key
            )
            wire = release.to_wire()
            status = "closed" if to == "broker" else "released"

            def write(c: sqlite3.Connection) -> None:
                # only if no process of this shop took a payment on the chain since it was read (compare-and-set)
                changed = c.execute(
                    "UPDATE chains SET status = ?, released_to = ?, release = ?, released_at = ? WHERE chain_id = ?"
                    " AND status = 'held' AND last_index = ?",
                    (status, to, json.dumps(wire), now, chain_id.hex(), st.last_index),
                ).rowcount
                if changed != 1:
                    st.loaded = False
                    raise CustodyConflict("the chain moved on while it was being released; ask again")

            self._store.write(write)
            st.status, st.released_to, st.release = status, to, wire
            return release


def _json(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None

"""The purchase coordinator: checks every purchase a page hands over, pays it under an allowance or opens a prompt.

It holds the prompt queue, answers polls, and is the plain-Python API the GUI uses (:meth:`pending_prompts`,
:meth:`approve`, :meth:`decline`, :attr:`on_prompt`). It never blocks the caller on the network except in
:meth:`purchase` for an allowance-covered payment, which the HTTP server runs on a worker thread; approvals pay on
the coordinator's own worker thread and return a :class:`~concurrent.futures.Future`.

Order of checks (every refusal raises a :class:`~netpay.errors.NetPayError` before any state changes): body shape
and signatures; vendor certificate signed by a trusted broker and valid now; the page origin is one of the
certificate's origins; the quote is signed by the certified vendor key and unexpired; the core's own quote checks;
cool-down and rate limit; wallet unlocked; quote not seen before; then pay (allowance) or prompt (one open per origin).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import requests

from netpay.encoding import FieldReader, parse_json
from netpay.errors import (
    Conflict,
    Forbidden,
    MalformedMessage,
    NetPayError,
    NotFound,
    PeerUnavailable,
    QuoteAlreadyPaid,
    QuoteExpired,
    RateLimited,
    UntrustedSigner,
    WalletLocked,
)
from netpay.messages import Quote, VendorCertificate
from netpay.messages.purchase import MAX_METERED_UNITS
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.callback.limits import Limits, OriginLimiter
from wallet_app.callback.origins import OriginRegistry, normalize_origin, origin_of_url, verify_vendor_certificate
from wallet_app.callback.port import PaidResult, WalletPort
from wallet_app.callback.prompts import Prompt
from wallet_app.callback.uri import parse_netpay_uri
from wallet_app.clients.http import shared_session
from wallet_app.clients.policy import require_secure_url
from wallet_app.services.signatures import SIGNATURES

__all__ = ["Offer", "PurchaseCoordinator"]

log = logging.getLogger(__name__)

_KEEP_FINISHED_S = 900  # how long a finished purchase can still be polled
MAX_HELD = 2  # waiting-page requests held open at once per purchase (navigation fallback)


@dataclass(frozen=True)
class Offer:
    """A verified purchase request: the signed quote and the broker-signed certificate of its vendor."""

    quote: Signed[Quote]
    certificate: Signed[VendorCertificate]

    @cached_property
    def digest(self) -> str:
        """The quote's digest (what "the same quote" means), computed once."""
        return self.quote.digest

    @classmethod
    def from_json(cls, data: Any) -> Offer:
        """Parse ``{"quote": Signed[Quote], "vendor_certificate": Signed[VendorCertificate]}``; signatures checked."""
        r = FieldReader(data, "purchase")
        # The wallet core checks the same two signatures again; the memo lets each be verified once.
        quote = SIGNATURES.parse(r.raw("quote"), Quote, "quote")
        cert = SIGNATURES.parse(r.raw("vendor_certificate"), VendorCertificate, "vendor_certificate")
        r.done()
        return cls(quote, cert)


@dataclass(slots=True)
class _Purchase:
    prompt: Prompt
    offer: Offer
    poll_token: str
    return_url: str | None
    result: PaidResult | None = None
    error: NetPayError | None = None
    finished_at: float | None = None
    holding: int = 0  # waiting-page requests held open for this purchase right now
    link: str | None = None  # once paid: the return URL with a one-time code for the access token


class PurchaseCoordinator:
    """Decides allowance-pay vs prompt, holds the prompt queue, answers polls. Thread-safe."""

    def __init__(
        self,
        wallet: WalletPort,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        registry: OriginRegistry | None = None,
    ) -> None:
        self.wallet = wallet
        self.limits = limits or Limits()
        self._clock = clock
        self.registry = registry or OriginRegistry(wallet.trusted_broker_keys, clock=clock)
        self.limiter = OriginLimiter(self.limits)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified whenever a purchase's status changes
        self._pay_lock = threading.Lock()
        self._purchases: dict[str, _Purchase] = {}
        self._quotes: dict[str, str] = {}  # quote digest -> state (prompted/paying/paid/declined/expired/failed)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netpay-pay")
        #: Called (on the thread that made the purchase request) when a prompt opens. The GUI shows it.
        self.on_prompt: Callable[[Prompt], None] | None = None
        #: Called when a prompt leaves the pending state (paid, declined, expired, failed).
        self.on_prompt_closed: Callable[[Prompt], None] | None = None
        #: Called when a page asked to buy while the wallet is locked: the GUI asks the user to unlock.
        self.on_unlock_requested: Callable[[], None] | None = None
        #: Called after every payment made through the callback (allowance or prompt), with the prompt if any.
        self.on_paid: Callable[[Offer, PaidResult, str], None] | None = None
        self._last_unlock_request = -1e9

    # ------------------------------------------------------------------ page requests

    def metered_json(self, raw: bytes, origin: str | None, end: bool) -> dict[str, Any]:
        """``POST /v1/metered/unit`` (``{session_id, unit_no}``) or ``/v1/metered/end`` (``{session_id}``) from the
        page that opened the session: pay its next unit with no prompt, or end it."""
        norm = normalize_origin(origin)
        if norm is None or not self.registry.is_allowed(norm):
            raise Forbidden("not a certified vendor origin", reason="origin")
        r = FieldReader(parse_json(raw), "metered")
        session_id = r.text("session_id", 64)
        unit_no: int = 0 if end else r.integer("unit_no", 1, MAX_METERED_UNITS)
        r.done()
        if self.wallet.is_locked():
            raise WalletLocked()
        if end:
            return self.wallet.end_metered(session_id, norm)
        return self.wallet.pay_metered_unit(session_id, unit_no, norm)

    def purchase_json(self, raw: bytes, origin: str | None) -> dict[str, Any]:
        """``POST /v1/purchase``: parse strictly, then :meth:`purchase`."""
        return self.purchase(Offer.from_json(parse_json(raw)), origin)

    def purchase(
        self, offer: Offer, origin: str | None, *, navigation: bool = False, return_url: str | None = None
    ) -> dict[str, Any]:
        """Check ``offer`` from ``origin``; answer paid (allowance) or pending with a prompt id and poll token."""
        now = int(self._clock())
        page_origin, cert = self._check(offer, origin, now)
        self.registry.add_certificate(offer.certificate)  # proven certified: its refusals below are readable by it
        if return_url is not None and origin_of_url(return_url) not in _origins(cert):
            raise Forbidden("the return URL is not on the vendor's certified origin", reason="return_url")
        self.limiter.check_cooldown(page_origin)
        self.limiter.take(page_origin)
        if self.wallet.is_locked():
            self._ask_unlock()
            raise WalletLocked("the wallet is locked; unlock it and try again")
        with self._lock:
            self._refuse_replay_locked(offer)
        quote = offer.quote.body
        digest = offer.digest
        # Covered by an allowance: paid at once, and pay() makes every check of check_quote() itself (again under
        # the payment lock, the allowance's too), so they are not made twice. A prompt needs the full verdict.
        auto = not navigation and self.wallet.covers(cert.vendor_id, quote.price)
        check = None if auto else self.wallet.check_quote(offer.quote, offer.certificate, page_origin)
        with self._lock:
            self._expire_locked()
            self._refuse_replay_locked(offer)
            if auto:
                self._quotes[digest] = "paying"
            else:
                assert check is not None
                self._refuse_crowding_locked(page_origin)
                prompt = Prompt(
                    prompt_id=secrets.token_urlsafe(12),
                    origin=page_origin,
                    vendor_id=cert.vendor_id,
                    vendor_name=cert.display_name,
                    item_id=quote.item_id,
                    item_title=quote.title,
                    price=quote.price,
                    balance=check.remaining_after + quote.price,
                    balance_after=check.remaining_after,
                    model=quote.model,
                    created_at=now,
                    expires_at=min(quote.expires_at, now + int(self.limits.prompt_timeout_s)),
                    navigation=navigation,
                    advice=check.advice,
                )
                purchase = _Purchase(prompt, offer, secrets.token_urlsafe(24), return_url)
                self._purchases[prompt.prompt_id] = purchase
                self._quotes[digest] = "prompted"
        if auto:
            result = self._pay(offer, page_origin, via="allowance")
            return _paid_json(result)
        if self.on_prompt is not None:
            try:
                self.on_prompt(prompt)
            except Exception:
                log.exception("on_prompt observer failed")
        return {
            "status": "pending",
            "prompt_id": prompt.prompt_id,
            "poll_token": purchase.poll_token,
            "expires_at": prompt.expires_at,
        }

    def _ask_unlock(self) -> None:
        now = self._clock()
        with self._lock:
            if now - self._last_unlock_request < 5.0:
                return
            self._last_unlock_request = now
        if self.on_unlock_requested is not None:
            try:
                self.on_unlock_requested()
            except Exception:
                log.exception("on_unlock_requested observer failed")

    def _check(self, offer: Offer, origin: str | None, now: int) -> tuple[str, VendorCertificate]:
        keys = self.wallet.trusted_broker_keys()
        if not keys and self.wallet.is_locked():
            self._ask_unlock()
            raise WalletLocked("the wallet is locked; unlock it and try again")
        cert = verify_vendor_certificate(offer.certificate, keys, now)
        page_origin = normalize_origin(origin)
        if page_origin is None:
            raise Forbidden("a purchase needs the Origin of a certified vendor page", reason="origin")
        if page_origin not in _origins(cert):
            raise Forbidden("this page's origin is not in the vendor's certificate", reason="origin")
        quote = offer.quote.body
        if offer.quote.signer != cert.public_key or quote.vendor_id != cert.vendor_id:
            raise UntrustedSigner("the quote is not signed by the certified vendor key", field="quote")
        if now >= quote.expires_at:
            raise QuoteExpired(f"quote {quote.quote_id} expired", field="quote")
        if origin_of_url(quote.item_url) not in _origins(cert):
            raise Forbidden("the item URL is not on the vendor's certified origin", reason="item_url")
        return page_origin, cert

    def _refuse_replay_locked(self, offer: Offer) -> None:
        state = self._quotes.get(offer.digest)
        if state == "paid":
            raise QuoteAlreadyPaid("this quote was already paid; ask the vendor for a new one")
        if state is not None:
            raise Conflict(f"this quote was already handed to the wallet ({state})", reason=state)

    def _refuse_crowding_locked(self, origin: str) -> None:
        open_prompts = [p for p in self._purchases.values() if p.prompt.status == "pending"]
        if any(p.prompt.origin == origin for p in open_prompts):
            raise RateLimited("this site already has a purchase waiting for an answer", reason="prompt_open")
        if len(open_prompts) >= self.limits.max_open_prompts:
            raise RateLimited("too many purchases waiting for an answer", reason="busy")

    # ------------------------------------------------------------------ polling

    def poll(self, prompt_id: str, token: str | None, origin: str | None = None) -> dict[str, Any]:
        """``GET /v1/purchase/{id}``: the state of a prompted purchase, for the holder of its poll token only."""
        purchase = self._find(prompt_id, token)
        if origin is not None and normalize_origin(origin) != purchase.prompt.origin:
            raise Forbidden("this purchase belongs to another origin", reason="origin")
        return self._status_json(purchase)

    def _find(self, prompt_id: str, token: str | None) -> _Purchase:
        with self._lock:
            self._expire_locked()
            purchase = self._purchases.get(prompt_id)
        if purchase is None or not token or not hmac.compare_digest(purchase.poll_token.encode(), token.encode()):
            raise NotFound("no such purchase")
        return purchase

    def _status_json(self, purchase: _Purchase) -> dict[str, Any]:
        status = purchase.prompt.status
        if status == "paid" and purchase.result is not None:
            return _paid_json(purchase.result)
        out: dict[str, Any] = {"status": "pending" if status == "paying" else status}
        if status in ("pending", "paying"):
            out["prompt_id"] = purchase.prompt.prompt_id
            out["expires_at"] = purchase.prompt.expires_at
        if status == "failed" and purchase.error is not None:
            out["error"] = {"code": purchase.error.code, "message": purchase.error.message}
        return out

    def redirect_target(self, prompt_id: str, token: str) -> str | None:
        """For the navigation fallback: the return URL with the access token once paid, else None."""
        purchase = self._find(prompt_id, token)
        if purchase.prompt.status != "paid" or purchase.result is None or purchase.return_url is None:
            return None
        return self._item_link(purchase)

    def navigation_state(
        self, prompt_id: str, token: str, *, hold_pending_s: float = 0.0, hold_paying_s: float = 0.0
    ) -> tuple[Prompt, dict[str, Any], str | None]:
        """For the navigation fallback's waiting page, from one consistent snapshot: the prompt, its status and,
        once paid, where to send the browser (the return URL with the access token), else None.

        While the payment is being made (``paying``) it waits up to ``hold_paying_s`` for the outcome, and while
        the customer has not answered (``pending``) up to ``hold_pending_s``, so the browser moves on the moment
        the purchase is paid instead of at its page's next reload. At most ``MAX_HELD`` requests per purchase are
        held at once (more are answered at once), so a page cannot tie up the callback's threads. Holding changes
        nothing."""
        purchase = self._find(prompt_id, token)
        started = time.monotonic()
        with self._changed:
            if purchase.holding >= MAX_HELD:
                hold_pending_s = hold_paying_s = 0.0
            purchase.holding += 1
            try:
                while True:
                    self._expire_locked()
                    status = purchase.prompt.status
                    hold = hold_paying_s if status == "paying" else hold_pending_s if status == "pending" else 0.0
                    left = started + hold - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            finally:
                purchase.holding -= 1
            prompt = purchase.prompt
            answer = self._status_json(purchase)
            paid = prompt.status == "paid" and purchase.result is not None and purchase.return_url is not None
        return prompt, answer, self._item_link(purchase) if paid else None

    def _item_link(self, purchase: _Purchase) -> str:
        """The return URL with a one-time code the shop exchanges for the item's cookie: the access token itself
        never goes into a URL. Without a code (the shop did not answer) the plain return URL: the receipt in the
        wallet opens the item later."""
        if purchase.link is None:
            assert purchase.result is not None and purchase.return_url is not None
            code = None
            api_url = purchase.offer.certificate.body.api_url.rstrip("/")
            try:
                resp = shared_session().post(f"{api_url}/v1/access/codes", json={"token": purchase.result.access_token},
                                             timeout=5, allow_redirects=False)  # fmt: skip
                code = resp.json().get("code") if resp.status_code == 200 else None
            except (requests.RequestException, ValueError):
                log.warning("the shop gave no one-time code for the paid item; opening its plain URL")
            purchase.link = _with_code(purchase.return_url, code) if isinstance(code, str) else purchase.return_url
        return purchase.link

    def status_of(self, prompt_id: str, token: str) -> tuple[Prompt, dict[str, Any]]:
        purchase = self._find(prompt_id, token)
        return purchase.prompt, self._status_json(purchase)

    # ------------------------------------------------------------------ GUI API

    def pending_prompts(self) -> list[Prompt]:
        """Prompts waiting for the customer, oldest first."""
        with self._lock:
            self._expire_locked()
            return sorted(
                (p.prompt for p in self._purchases.values() if p.prompt.status == "pending"),
                key=lambda p: p.created_at,
            )

    def prompt(self, prompt_id: str) -> Prompt:
        with self._lock:
            purchase = self._purchases.get(prompt_id)
            if purchase is None:
                raise NotFound("no such prompt")
            return purchase.prompt

    def approve(self, prompt_id: str, allow_limit: Money | None = None) -> Future[Prompt]:
        """Pay a pending prompt on the worker thread. ``allow_limit``: also let this vendor be paid without a
        prompt up to that budget (per day, and per item). The future gives the closed prompt."""
        with self._lock:
            self._expire_locked()
            purchase = self._purchases.get(prompt_id)
            if purchase is None:
                raise NotFound("no such prompt")
            if purchase.prompt.status != "pending":
                raise Conflict(f"prompt is {purchase.prompt.status}", reason=purchase.prompt.status)
            self._set_status_locked(purchase, "paying")
        return self._executor.submit(self._approve_worker, purchase, allow_limit)

    def failure(self, prompt_id: str) -> NetPayError | None:
        """Why a closed prompt was not paid (``None`` while pending, when paid, or for an unknown id)."""
        with self._lock:
            purchase = self._purchases.get(prompt_id)
            return purchase.error if purchase is not None else None

    def decline(self, prompt_id: str) -> Prompt:
        """Refuse a pending prompt: nothing is paid; repeated declines cool the origin down."""
        with self._lock:
            purchase = self._purchases.get(prompt_id)
            if purchase is None:
                raise NotFound("no such prompt")
            if purchase.prompt.status != "pending":
                raise Conflict(f"prompt is {purchase.prompt.status}", reason=purchase.prompt.status)
            self._set_status_locked(purchase, "declined")
            self._quotes[purchase.offer.digest] = "declined"
            prompt = purchase.prompt
        self.limiter.record_decline(prompt.origin)
        self._closed(prompt)
        return prompt

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    # ------------------------------------------------------------------ navigation fallback / netpay: links

    def fetch_offer(self, quote_url: str, item_id: str, timeout: float = 5.0) -> Offer:
        """Ask a certified vendor for a quote (the wallet itself, for ``/v1/pay`` and ``netpay:`` links).

        The quote URL's origin must be a certified vendor origin before anything is posted to it.
        """
        origin = origin_of_url(quote_url)
        if origin is None or not quote_url.startswith(("http://", "https://")):
            raise MalformedMessage("quote_url must be an absolute http(s) URL", field="quote_url")
        self.registry.require(origin)
        require_secure_url(quote_url, "vendor")
        try:
            resp = shared_session().post(quote_url, json={"item_id": item_id}, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise PeerUnavailable(f"the vendor could not be reached: {type(exc).__name__}") from None
        if resp.status_code != 200 or len(resp.content) > 64 * 1024:
            raise PeerUnavailable(f"the vendor refused the quote request (HTTP {resp.status_code})")
        return Offer.from_json(parse_json(resp.content))

    def purchase_link(self, uri: str) -> Prompt:
        """A ``netpay:`` link (from the single-instance channel): fetch the quote, open a prompt (never auto-pay)."""
        link = parse_netpay_uri(uri)
        offer = self.fetch_offer(link.quote_url, link.item_id)
        answer = self.purchase(offer, origin_of_url(link.quote_url), navigation=True, return_url=link.return_url)
        return self.prompt(answer["prompt_id"])

    # ------------------------------------------------------------------ internals

    def _approve_worker(self, purchase: _Purchase, allow_limit: Money | None) -> Prompt:
        offer = purchase.offer
        if int(self._clock()) >= min(offer.quote.body.expires_at, purchase.prompt.expires_at):
            self._finish(purchase, "expired", None, QuoteExpired("the quote expired before it was approved"))
            return purchase.prompt
        try:
            via = "uri" if purchase.prompt.navigation else "prompt"
            result = self._pay(offer, purchase.prompt.origin, via=via)
        except NetPayError as exc:
            self._finish(purchase, "failed", None, exc)
            return purchase.prompt
        except Exception as exc:
            log.exception("payment failed unexpectedly")
            self._finish(purchase, "failed", None, PeerUnavailable(f"payment failed: {type(exc).__name__}"))
            return purchase.prompt
        if allow_limit is not None:
            cert = offer.certificate.body
            try:
                self.wallet.grant_allowance(cert.vendor_id, cert.display_name, allow_limit, allow_limit)
            except NetPayError:
                log.warning("could not grant the allowance for %s", cert.vendor_id)
        self._finish(purchase, "paid", result, None)
        return purchase.prompt

    def _pay(self, offer: Offer, origin: str, *, via: str) -> PaidResult:
        digest = offer.digest
        with self._lock:
            self._quotes[digest] = "paying"
        try:
            with self._pay_lock:
                result = self.wallet.pay(offer.quote, offer.certificate, origin, via=via)
        except BaseException:
            with self._lock:
                self._quotes[digest] = "failed"
            raise
        with self._lock:
            self._quotes[digest] = "paid"
        if self.on_paid is not None:
            try:
                self.on_paid(offer, result, via)
            except Exception:
                log.exception("on_paid observer failed")
        return result

    def _finish(self, purchase: _Purchase, status: str, result: PaidResult | None, error: NetPayError | None) -> None:
        with self._lock:
            purchase.result = result
            purchase.error = error
            self._set_status_locked(purchase, status)
            if status == "expired":
                self._quotes[purchase.offer.digest] = "expired"
        self._closed(purchase.prompt)

    def _set_status_locked(self, purchase: _Purchase, status: str) -> None:
        purchase.prompt = replace(purchase.prompt, status=status)  # type: ignore[arg-type]
        if status not in ("pending", "paying"):
            purchase.finished_at = self._clock()
        self._changed.notify_all()

    def _closed(self, prompt: Prompt) -> None:
        if self.on_prompt_closed is not None:
            try:
                self.on_prompt_closed(prompt)
            except Exception:
                log.exception("on_prompt_closed observer failed")

    def _expire_locked(self) -> None:
        now = self._clock()
        expired: list[Prompt] = []
        for pid, purchase in list(self._purchases.items()):
            if purchase.prompt.status == "pending" and now >= purchase.prompt.expires_at:
                self._set_status_locked(purchase, "expired")
                self._quotes[purchase.offer.digest] = "expired"
                expired.append(purchase.prompt)
            elif purchase.finished_at is not None and now - purchase.finished_at > _KEEP_FINISHED_S:
                del self._purchases[pid]
        for prompt in expired:
            self._closed(prompt)


def _origins(cert: VendorCertificate) -> set[str | None]:
    return {normalize_origin(o) for o in cert.origins} - {None}


def _paid_json(result: PaidResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": "paid",
        "access_token": result.access_token,
        "item_url": result.item_url,
        "valid_until": result.valid_until,
    }
    if result.session_id is not None:
        out["session_id"] = result.session_id
    return out


def _with_code(url: str, code: str) -> str:
    from urllib.parse import quote as urlquote

    sep = "&" if "?" in url else "?"
    return f"{url}{sep}code={urlquote(code, safe='')}"

""":class:`PayingSession`: a ``requests.Session`` that pays ``402`` challenges from the wallet and retries.

The wallet is a :class:`wallet_app.services.WalletService` opened on the vault (:func:`open_wallet`; it takes the
vault's process lock, so it refuses to run beside a running wallet window). Every payment is an ordinary wallet
payment (``via = "api"``), so it is in the wallet's history and counts towards today's budgets in later runs too.

With a shop whose challenge names a ``payment_header``, the payment travels inside the retried request
(``NetPay-Payment``) and the receipt comes back with the resource (``NetPay-Receipt``); a fresh quote the answer
carries (``NetPay-Quote``) is kept for the next request to the same path, which is then paid in its first request:
one round trip a paid call (docs/protocol.md §5, "Paid API over HTTP 402"). Through a running wallet's agent channel
the same: the wallet journals the payment (``prepare``) and settles its answer (``finish``).

**Journalled ahead.** With the vault opened in this process, the kept quote's payment is picked, built and journalled
durably by a helper thread as soon as the answer is in, while the program works on it, so that the next call only
sends it (a program's call then costs about the shop's own work more than an unpaid one). One payment at most is
journalled ahead per session, its price held in the spending rules meanwhile. A payment journalled ahead that is not
used (the program pays something else first, the quote is about to expire, the session closes, the interpreter
exits) is taken back: it never left the process, so its coins are simply the chain's next ones again, and it leaves
no trace in the history.
If the process is killed in between, the wallet finds it pending at its next open and sends it, like any pending
payment: the shop's receipt, with a token for one query, is then in the history (at most one price per session).
"""

from __future__ import annotations

import base64
import binascii
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from netpay.encoding import parse_json
from netpay.errors import MalformedMessage, NetPayError, PeerUnavailable, error_from_body
from netpay.money import Money
from wallet_app.client.channel import ChannelPayer, PaidInfo
from wallet_app.client.rules import DAY_S, Budget, SpendingRules
from wallet_app.client.vault_payer import KeptOffer, VaultPayer
from wallet_app.services import WalletService

__all__ = ["PayingSession", "VaultPayer", "connect", "open_wallet", "origin_of"]

MAX_CHALLENGE = 64 * 1024
PAYMENT_HEADER, RECEIPT_HEADER, QUOTE_HEADER = "NetPay-Payment", "NetPay-Receipt", "NetPay-Quote"
MAX_PAYMENT_HEADER = 12288  # as the shops read it (docs/protocol.md §1, Limits); a longer payment goes by POST
SPARE_MARGIN_S = 30  # a kept quote is used only while it has this long left before it expires
MAX_SPARES = 64

log = logging.getLogger(__name__)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def open_wallet(data_dir: str | Path, passphrase: str | None = None, **kwargs: Any) -> WalletService:
    """Open and unlock the wallet in ``data_dir`` (raises ``VaultInUse`` while a wallet window has it open)."""
    service = WalletService(Path(data_dir).expanduser(), **kwargs)
    try:
        service.unlock(passphrase)
    except BaseException:
        service.close()
        raise
    return service


Payer = VaultPayer | ChannelPayer


def connect(data_dir: str | Path, rules: SpendingRules, passphrase: str | None = None, **kwargs: Any) -> PayingSession:
    """A paying session on the wallet in ``data_dir``: through the running wallet's agent channel when one runs,
    else by opening the vault (``passphrase`` when it needs one). Close it to close a vault it opened."""
    directory = Path(data_dir).expanduser()
    channel = ChannelPayer.find(directory)
    if channel is not None:
        with contextlib.suppress(PeerUnavailable):
            channel.spent_today(rules.currency, 0)  # answers: a wallet runs
            return PayingSession(channel, rules)
    session = PayingSession(open_wallet(directory, passphrase, **kwargs), rules)
    session.owns_wallet = True
    return session


class PayingSession(requests.Session):
    """Answers a NetPay ``402`` by paying under ``rules`` and retrying once with ``Authorization: NetPay <token>``.

    Raises :class:`wallet_app.client.OverBudget` when a rule forbids the price (nothing is paid) and the wallet's
    :mod:`netpay.errors` error when paying fails. A token is reused for the same URL (an article bought once)."""

    def __init__(
        self,
        wallet: WalletService | Payer,
        rules: SpendingRules,
        clock: Callable[[], float] = time.time,
        prepare_ahead: bool = True,
    ) -> None:
        super().__init__()
        self.payer: Payer = VaultPayer.of(wallet) if isinstance(wallet, WalletService) else wallet
        self.owns_wallet = False
        self.budget = Budget(rules, clock)
        self.budget.seed(self.payer.spent_today(rules.currency, int(clock()) // DAY_S * DAY_S))
        self.payments: list[PaidInfo] = []
        #: journal a kept quote's payment before the program asks (only with the vault in this process)
        self.prepare_ahead = prepare_ahead and isinstance(self.payer, VaultPayer)
        self._tokens: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._spares: dict[str, KeptOffer] = {}  # "METHOD origin/path" -> an offer the shop handed out
        self._helper: concurrent.futures.ThreadPoolExecutor | None = None
        self._clock = clock
        self._lock = threading.Lock()  # after the payer's lock when both are held

    def close(self) -> None:
        with self.payer.lock:
            if isinstance(self.payer, VaultPayer) and self.payer.ahead is not None and self.payer.ahead.owner is self:
                self._drop_ahead()  # nothing journalled ahead stays behind: its coins are given back
        if self._helper is not None:
            self._helper.shutdown(wait=True)
        super().close()
        if self.owns_wallet and isinstance(self.payer, VaultPayer):
            self.payer.service.close()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the payment journalled ahead, if any, is ready (for a program about to measure, or to exit
        with its disk quiet); False if ``timeout`` passed first."""
        kept = self.payer.ahead if isinstance(self.payer, VaultPayer) else None
        return kept is None or kept.ready.wait(timeout)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url_s = url.decode() if isinstance(url, bytes) else url
        key = f"{method!s} {url_s} {kwargs.get('params')!r}"
        spare_key = f"{method!s} {url_s.split('?', 1)[0].split('#', 1)[0]}"
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"NetPay {cached}"}
        resp: requests.Response | None = None
        if cached is None and (spare := self._spare(spare_key)) is not None:
            sent, retry = self._pay_in_request(spare.offer, method, url_s, key, spare_key, args, kwargs, kept=spare)
            resp = sent
            if not retry:
                return resp  # paid (or the payment settled otherwise): never a second payment for this request
        if resp is None:
            resp = super().request(method, url, *args, **kwargs)
        challenge = resp.headers.get("WWW-Authenticate", "")
        if resp.status_code != 402 or not challenge.startswith("NetPay"):
            return resp
        if origin_of(resp.url or url_s) != origin_of(url_s):
            return resp  # redirected to another site's paywall: paying it would hand that site's token to this one
        offer = _offer(resp)
        if f'payment_header="{PAYMENT_HEADER}"' in challenge:
            paid_resp = self._pay_in_request(offer, method, url_s, key, spare_key, args, kwargs)[0]
            assert paid_resp is not None
            return paid_resp
        token = self.pay(offer, origin_of(url_s))
        self._remember(key, token)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"NetPay {token}"}
        return super().request(method, url, *args, **kwargs)

    def _pay_in_request(
        self,
        offer: dict[str, Any],
        method: str | bytes,
        url: str,
        key: str,
        spare_key: str,
        args: Any,
        kwargs: Any,
        kept: KeptOffer | None = None,
    ) -> tuple[requests.Response | None, bool]:
        """Send the request with the offer's payment in it. ``(answer, retry)``: ``retry`` when the shop proved it
        recorded nothing (its signed refusal released the coins), so the answer's own challenge may be paid, or when
        the wallet refused a ``kept`` offer before paying anything (answer None: ask without a payment)."""
        origin = origin_of(url)
        headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
        resp: requests.Response | None = None
        answer: Any = None
        with self.payer.lock:  # a chain's coins leave in order: one payment at a time, from journal to answer
            if kept is not None and kept.prepared is not None:  # journalled ahead: it only has to be sent
                prepared, reservation = kept.prepared, kept.reservation
                assert reservation is not None and isinstance(self.payer, VaultPayer)
                self.payer.ahead = None
            else:
                if kept is not None:
                    kept.no_ahead = True  # paid now, here: the helper must not journal it too
                    if kept.reservation is not None:
                        self.budget.release(kept.reservation)
                self._drop_ahead()  # a payment journalled ahead gives its coins back first: they leave in order
                try:
                    price = _price(offer)
                    reservation = self.budget.reserve(origin, price)  # the wallet pays only at exactly this price
                except NetPayError:  # OverBudget too
                    if kept:  # a kept quote the rules forbid: ask without it (the shop's own challenge decides)
                        return None, True
                    raise
                try:
                    prepared = self.payer.prepare(offer, origin, price)
                except NetPayError:
                    self.budget.release(reservation)
                    if kept:  # a kept quote the wallet will not pay (already paid, expired...): nothing was sent
                        return None, True
                    raise
                except BaseException:
                    self.budget.release(reservation)
                    raise
            payment = base64.urlsafe_b64encode(prepared.wire.encoded).rstrip(b"=").decode()
            error: NetPayError | None = None
            if len(payment) <= MAX_PAYMENT_HEADER:
                with contextlib.suppress(requests.RequestException):  # unknown whether it arrived: finish() asks
                    # never followed: a redirect would hand the payment to whatever site it names
                    paying = {**kwargs, "headers": {**headers, PAYMENT_HEADER: payment}, "allow_redirects": False}
                    resp = super().request(method, url, *args, **paying)
            if resp is not None:
                answer = _header_json(resp, RECEIPT_HEADER)
                if answer is None and resp.status_code >= 400:
                    error = _error_of(resp)
            try:
                paid = self.payer.finish(prepared, answer, error)
            except NetPayError as exc:
                if getattr(exc, "released", False) and resp is not None:
                    self.budget.release(reservation)  # the shop's signed refusal: nothing was recorded
                    return resp, True
                self.budget.keep(reservation)  # burned, or pending (PeerUnavailable): count it as spent
                raise
            except BaseException:
                self.budget.keep(reservation)
                raise
            self.budget.keep(reservation)
        with self._lock:
            self.payments.append(paid)
        self._remember(key, paid.access_token)
        if resp is not None and resp.ok and (spare := _header_json(resp, QUOTE_HEADER)) is not None:
            new = KeptOffer(spare, origin, self)
            with self._lock:
                if len(self._spares) >= MAX_SPARES:  # (one journalled ahead for them is taken back by the next payment)
                    self._spares.clear()
                self._spares[spare_key] = new
            self._journal_ahead(new)
        if resp is None or (answer is None and (resp.status_code == 402 or resp.is_redirect)):
            # paid by POST instead (too long for a header, the request failed or was redirected, or the shop did
            # not take it there): ask again with the token (a redirect to another host drops it, as requests does)
            headers["Authorization"] = f"NetPay {paid.access_token}"
            resp = super().request(method, url, *args, **{**kwargs, "headers": headers})
        return resp, False

    def _spare(self, spare_key: str) -> KeptOffer | None:
        """The kept offer for this path, taken (each is paid at most once), if it has long enough left."""
        with self._lock:
            kept = self._spares.pop(spare_key, None)
        if kept is None:
            return None
        if _expires_at(kept.offer) - self._clock() > SPARE_MARGIN_S:
            return kept
        with self.payer.lock:
            if isinstance(self.payer, VaultPayer) and kept is self.payer.ahead:  # too late to send: coins come back
                self._drop_ahead()
        return None

    def _journal_ahead(self, kept: KeptOffer) -> None:
        """Have the helper journal ``kept``'s payment now (see the module's doc), if the payer can take it back,
        no other payment is journalled ahead, the quote has long enough left and the rules allow its price."""
        if not self.prepare_ahead or _expires_at(kept.offer) - self._clock() <= SPARE_MARGIN_S:
            return
        try:
            kept.price = _price(kept.offer)
        except NetPayError:
            return
        payer = self.payer
        assert isinstance(payer, VaultPayer)
        with payer.lock, self._lock:
            if payer.ahead is not None:
                return
            try:
                kept.reservation = self.budget.reserve(kept.origin, kept.price)
            except NetPayError:  # OverBudget: it may still be paid when asked for, if the rules allow it then
                return
            payer.ahead = kept
            if self._helper is None:
                self._helper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netpay-ahead")
            helper = self._helper
        try:
            helper.submit(self._prepare_kept, kept)
        except RuntimeError:  # closing
            with self.payer.lock:
                self._drop_ahead()

    def _prepare_kept(self, kept: KeptOffer) -> None:
        """The helper's job: journal the kept offer's payment (undoable), unless it was taken or dropped first."""
        payer = self.payer
        assert isinstance(payer, VaultPayer) and kept.price is not None and kept.reservation is not None
        try:
            with payer.lock:
                if kept.no_ahead:
                    return
                try:
                    kept.prepared = payer.prepare(kept.offer, kept.origin, kept.price, undoable=True)
                except Exception as exc:  # the request will ask for it again, and then see the same refusal
                    log.debug("a kept quote was not journalled ahead: %s", exc)
                    kept.no_ahead = True
                    self.budget.release(kept.reservation)
                    if payer.ahead is kept:
                        payer.ahead = None
        finally:
            kept.ready.set()

    def _drop_ahead(self) -> None:
        """Take back the payment journalled ahead from this wallet, if any (hold the payer's lock): whichever session
        kept it, a payment about to be journalled must not pass it on its chain."""
        payer = self.payer
        if not isinstance(payer, VaultPayer) or payer.ahead is None:
            return
        kept, payer.ahead = payer.ahead, None
        kept.owner._give_back(kept)

    def _give_back(self, kept: KeptOffer) -> None:
        """Take back ``kept``'s payment (hold the payer's lock). It never left the process, so its coins are the
        chains' next ones again; if the wallet cannot take it back (a payment outside this library took later coins
        of its chain), it is sent now instead, and its receipt kept in the history."""
        kept.no_ahead = True
        if kept.prepared is None:
            if kept.reservation is not None:
                self.budget.release(kept.reservation)
            return
        prepared, kept.prepared = kept.prepared, None
        assert isinstance(self.payer, VaultPayer) and kept.reservation is not None
        try:
            if self.payer.cancel(prepared):
                self.budget.release(kept.reservation)
                return
        except NetPayError as exc:  # the vault is locked or failing: recovery sends it
            log.warning("a payment journalled ahead could not be taken back (%s): it stays pending", exc)
            self.budget.keep(kept.reservation)
            return
        self.budget.keep(kept.reservation)
        with self._lock:
            for k, v in list(self._spares.items()):
                if v is kept:
                    del self._spares[k]  # its quote is paid now
        with contextlib.suppress(NetPayError):  # PeerUnavailable: it stays pending, for recovery
            paid = self.payer.finish(prepared, None, None)
            with self._lock:
                self.payments.append(paid)

    def _remember(self, key: str, token: str) -> None:
        with self._lock:
            self._tokens[key] = token
            while len(self._tokens) > 256:
                self._tokens.popitem(last=False)

    def pay(self, offer: dict[str, Any], origin: str) -> str:
        """Pay a challenge's offer (``{quote, vendor_certificate}``) from ``origin``; return the access token."""
        price = _price(offer)
        with self.payer.lock:
            self._drop_ahead()  # its coins come back first: a chain's coins leave in order
            reservation = self.budget.reserve(origin, price)  # the wallet pays only at exactly this price
            try:
                paid = self.payer.pay(offer, origin, price)
            except PeerUnavailable:
                self.budget.keep(reservation)  # the spend stays pending (the wallet finishes it): count it as spent
                raise
            except BaseException:
                self.budget.release(reservation)
                raise
            self.budget.keep(reservation)
        with self._lock:
            self.payments.append(paid)
        return paid.access_token


def _offer(resp: requests.Response) -> dict[str, Any]:
    if len(resp.content) > MAX_CHALLENGE:
        raise MalformedMessage("the 402 challenge is too large", field="body")
    try:
        body = parse_json(resp.content)
    except NetPayError:
        raise MalformedMessage("the 402 challenge is not JSON", field="body") from None
    if not isinstance(body, dict) or "quote" not in body or "vendor_certificate" not in body:
        raise MalformedMessage("the 402 challenge carries no quote", field="body.quote")
    return body


def _header_json(resp: requests.Response, name: str) -> Any:
    """The JSON object in a base64url header of the answer, or None (absent or unreadable)."""
    value = resp.headers.get(name)
    if not value or len(value) > MAX_CHALLENGE:
        return None
    try:
        data = parse_json(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (NetPayError, binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _error_of(resp: requests.Response) -> NetPayError | None:
    """The shop's refusal in an error answer (None when the body is not a NetPay error)."""
    if len(resp.content) > MAX_CHALLENGE:
        return None
    try:
        body = parse_json(resp.content)
    except NetPayError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    return error_from_body(body, resp.status_code)


def _expires_at(offer: dict[str, Any]) -> int:
    """The kept quote's ``expires_at`` (0 when unreadable: never used)."""
    try:
        return int(offer["quote"]["body"]["expires_at"])
    except (KeyError, TypeError, ValueError):
        return 0


def _price(offer: dict[str, Any]) -> Money:
    """The price the challenge asks (checked against the signed quote by the wallet before it pays)."""
    quote = offer.get("quote")
    body = quote.get("body") if isinstance(quote, dict) else None
    if not isinstance(body, dict):
        raise MalformedMessage("the 402 challenge carries no quote", field="body.quote")
    return Money.from_json(body.get("price"), "quote.body.price")

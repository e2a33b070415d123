""":class:`PayingSession`: a ``requests.Session`` that pays ``402`` challenges from the wallet and retries.

The wallet is a :class:`wallet_app.services.WalletService` opened on the vault (:func:`open_wallet`; it takes the
vault's process lock, so it refuses to run beside a running wallet window). Every payment is an ordinary wallet
payment (``via = "api"``), so it is in the wallet's history and counts towards today's budgets in later runs too.

With a shop whose challenge names a ``payment_header``, the payment travels inside the retried request
(``NetPay-Payment``) and the receipt comes back with the resource (``NetPay-Receipt``); a fresh quote the answer
carries (``NetPay-Quote``) is kept for the next request to the same path, which is then paid in its first request:
one round trip a paid call (docs/protocol.md §5, "Paid API over HTTP 402"). Through a running wallet's agent channel
the same: the wallet journals the payment (``prepare``) and settles its answer (``finish``).
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
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
from wallet_app.client.channel import ChannelPayer, PaidInfo, pay_offer, spent_today
from wallet_app.client.rules import DAY_S, Budget, SpendingRules
from wallet_app.services import WalletService
from wallet_app.services.payments import PreparedSpend

__all__ = ["PayingSession", "VaultPayer", "connect", "open_wallet", "origin_of"]

MAX_CHALLENGE = 64 * 1024
PAYMENT_HEADER, RECEIPT_HEADER, QUOTE_HEADER = "NetPay-Payment", "NetPay-Receipt", "NetPay-Quote"
MAX_PAYMENT_HEADER = 12288  # as the shops read it (docs/protocol.md §1, Limits); a longer payment goes by POST
SPARE_MARGIN_S = 30  # a kept quote is used only while it has this long left before it expires
MAX_SPARES = 64


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


class VaultPayer:
    """Pays with a wallet service this process opened (no wallet window runs)."""

    def __init__(self, service: WalletService) -> None:
        self.service = service
        self._lock = threading.Lock()  # one payment at a time: a chain's next coins go to one spend

    def pay(self, offer: dict[str, Any], origin: str, price: Money) -> PaidInfo:
        with self._lock:
            return pay_offer(self.service, offer, origin, price)

    def spent_today(self, currency: str, since: int) -> dict[str, int]:
        with contextlib.suppress(NetPayError):
            return spent_today(self.service, currency, since)
        return {}

    def prepare(self, offer: dict[str, Any], origin: str, price: Money) -> PreparedSpend:
        """Check the offer (at exactly ``price``) and journal its payment, to be sent inside a request. Hold
        :attr:`lock` from here to :meth:`finish`: a chain's next coins go to one payment at a time, in order."""
        if not isinstance(offer, dict):
            raise MalformedMessage("the offer must be an object", field="offer")
        return self.service.prepare_payment(offer.get("quote"), offer.get("vendor_certificate"), origin, "api", price)

    def finish(self, prepared: PreparedSpend, answer: Any, error: NetPayError | None) -> PaidInfo:
        """Settle, release or finish sending a prepared payment (``WalletService.finish_payment``)."""
        paid = self.service.finish_payment(prepared, answer, error)
        return PaidInfo(paid.access_token, paid.payment_id, paid.amount)

    @property
    def lock(self) -> threading.Lock:
        return self._lock


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
        self, wallet: WalletService | Payer, rules: SpendingRules, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self.payer: Payer = VaultPayer(wallet) if isinstance(wallet, WalletService) else wallet
        self.owns_wallet = False
        self.budget = Budget(rules, clock)
        self.budget.seed(self.payer.spent_today(rules.currency, int(clock()) // DAY_S * DAY_S))
        self.payments: list[PaidInfo] = []
        self._tokens: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._spares: dict[str, dict[str, Any]] = {}  # "METHOD origin/path" -> an offer the shop handed out
        self._clock = clock
        self._lock = threading.Lock()

    def close(self) -> None:
        super().close()
        if self.owns_wallet and isinstance(self.payer, VaultPayer):
            self.payer.service.close()

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
            sent, retry = self._pay_in_request(spare, method, url_s, key, spare_key, args, kwargs, kept=True)
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
        kept: bool = False,
    ) -> tuple[requests.Response | None, bool]:
        """Send the request with the offer's payment in it. ``(answer, retry)``: ``retry`` when the shop proved it
        recorded nothing (its signed refusal released the coins), so the answer's own challenge may be paid, or when
        the wallet refused a ``kept`` offer before paying anything (answer None: ask without a payment)."""
        origin = origin_of(url)
        try:
            price = _price(offer)
            reservation = self.budget.reserve(origin, price)  # the wallet pays only at exactly this price
        except NetPayError:  # OverBudget too
            if kept:  # a kept quote the rules forbid: ask without it (the shop's own challenge decides)
                return None, True
            raise
        headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
        resp: requests.Response | None = None
        answer: Any = None
        with self.payer.lock:  # a chain's coins leave in order: one payment at a time, from journal to answer
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
            with self._lock:
                if len(self._spares) >= MAX_SPARES:
                    self._spares.clear()
                self._spares[spare_key] = spare
        if resp is None or (answer is None and (resp.status_code == 402 or resp.is_redirect)):
            # paid by POST instead (too long for a header, the request failed or was redirected, or the shop did
            # not take it there): ask again with the token (a redirect to another host drops it, as requests does)
            headers["Authorization"] = f"NetPay {paid.access_token}"
            resp = super().request(method, url, *args, **{**kwargs, "headers": headers})
        return resp, False

    def _spare(self, spare_key: str) -> dict[str, Any] | None:
        """The kept offer for this path, taken (each is paid at most once), if it has long enough left."""
        with self._lock:
            offer = self._spares.pop(spare_key, None)
        if offer is None:
            return None
        try:
            expires = int(offer["quote"]["body"]["expires_at"])
        except (KeyError, TypeError, ValueError):
            return None
        return offer if expires - self._clock() > SPARE_MARGIN_S else None

    def _remember(self, key: str, token: str) -> None:
        with self._lock:
            self._tokens[key] = token
            while len(self._tokens) > 256:
                self._tokens.popitem(last=False)

    def pay(self, offer: dict[str, Any], origin: str) -> str:
        """Pay a challenge's offer (``{quote, vendor_certificate}``) from ``origin``; return the access token."""
        price = _price(offer)
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


def _price(offer: dict[str, Any]) -> Money:
    """The price the challenge asks (checked against the signed quote by the wallet before it pays)."""
    quote = offer.get("quote")
    body = quote.get("body") if isinstance(quote, dict) else None
    if not isinstance(body, dict):
        raise MalformedMessage("the 402 challenge carries no quote", field="body.quote")
    return Money.from_json(body.get("price"), "quote.body.price")

""":class:`PayingSession`: a ``requests.Session`` that pays ``402`` challenges from the wallet and retries.

The wallet is a :class:`wallet_app.services.WalletService` opened on the vault (:func:`open_wallet`; it takes the
vault's process lock, so it refuses to run beside a running wallet window). Every payment is an ordinary wallet
payment (``via = "api"``), so it is in the wallet's history and counts towards today's budgets in later runs too.
"""

from __future__ import annotations

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
from netpay.errors import MalformedMessage, NetPayError, PeerUnavailable
from netpay.money import Money
from wallet_app.client.channel import ChannelPayer, PaidInfo, pay_offer, spent_today
from wallet_app.client.rules import DAY_S, Budget, SpendingRules
from wallet_app.services import WalletService

__all__ = ["PayingSession", "VaultPayer", "connect", "open_wallet", "origin_of"]

MAX_CHALLENGE = 64 * 1024


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
        self._lock = threading.Lock()

    def close(self) -> None:
        super().close()
        if self.owns_wallet and isinstance(self.payer, VaultPayer):
            self.payer.service.close()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url_s = url.decode() if isinstance(url, bytes) else url
        key = f"{method!s} {url_s} {kwargs.get('params')!r}"
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"NetPay {cached}"}
        resp = super().request(method, url, *args, **kwargs)
        if resp.status_code != 402 or not resp.headers.get("WWW-Authenticate", "").startswith("NetPay"):
            return resp
        if origin_of(resp.url or url_s) != origin_of(url_s):
            return resp  # redirected to another site's paywall: paying it would hand that site's token to this one
        offer = _offer(resp)
        token = self.pay(offer, origin_of(url_s))
        with self._lock:
            self._tokens[key] = token
            while len(self._tokens) > 256:
                self._tokens.popitem(last=False)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"NetPay {token}"}
        return super().request(method, url, *args, **kwargs)

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


def _price(offer: dict[str, Any]) -> Money:
    """The price the challenge asks (checked against the signed quote by the wallet before it pays)."""
    quote = offer.get("quote")
    body = quote.get("body") if isinstance(quote, dict) else None
    if not isinstance(body, dict):
        raise MalformedMessage("the 402 challenge carries no quote", field="body.quote")
    return Money.from_json(body.get("price"), "quote.body.price")

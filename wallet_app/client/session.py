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
from wallet_app.client.rules import DAY_S, Budget, SpendingRules
from wallet_app.services import PaidQuote, WalletService

__all__ = ["PayingSession", "open_wallet", "origin_of"]

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


class PayingSession(requests.Session):
    """Answers a NetPay ``402`` by paying under ``rules`` and retrying once with ``Authorization: NetPay <token>``.

    Raises :class:`wallet_app.client.OverBudget` when a rule forbids the price (nothing is paid) and the wallet's
    :mod:`netpay.errors` error when paying fails. A token is reused for the same URL (an article bought once)."""

    def __init__(self, wallet: WalletService, rules: SpendingRules, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.wallet = wallet
        self.budget = Budget(rules, clock)
        self.budget.seed(_spent_today(wallet, rules.currency, clock()))
        self.payments: list[PaidQuote] = []
        self._tokens: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pay_lock = threading.Lock()  # one payment at a time: a chain's next coins go to one spend

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
        offer = _offer(resp)
        token = self.pay(offer, origin_of(resp.url or url_s))
        with self._lock:
            self._tokens[key] = token
            while len(self._tokens) > 256:
                self._tokens.popitem(last=False)
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"NetPay {token}"}
        return super().request(method, url, *args, **kwargs)

    def pay(self, offer: dict[str, Any], origin: str) -> str:
        """Pay a challenge's offer (``{quote, vendor_certificate}``) from ``origin``; return the access token."""
        checked = self.wallet.check_quote(offer.get("quote"), offer.get("vendor_certificate"), origin)
        reservation = self.budget.reserve(origin, checked.price)
        try:
            with self._pay_lock:
                paid = self.wallet.pay_quote(checked.quote, checked.vendor_certificate, origin, "api")
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


def _spent_today(wallet: WalletService, currency: str, now: float) -> dict[str, int]:
    """What programs paid today per origin, from the wallet's history (so budgets hold across runs)."""
    start = int(now) // DAY_S * DAY_S
    spent: dict[str, int] = {}
    with contextlib.suppress(NetPayError):
        rows = wallet.vault.query(
            "SELECT origin, SUM(amount) FROM spends WHERE via = 'api' AND currency = ? AND created_at >= ? "
            "AND status != 'released' GROUP BY origin",
            (currency, start),
        )
        for origin, amount in rows:
            spent[str(origin or "")] = int(amount or 0)
    return spent

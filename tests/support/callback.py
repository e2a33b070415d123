"""Helpers for the browser hand-off tests: certified vendors and quotes signed with real keys, and a small
in-memory :class:`WalletPort` used only where the callback's own checks are tested (before anything reaches the
wallet core). End-to-end and attack tests use the real wallet core instead."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from netpay.errors import NotFound, QuoteAlreadyPaid, WalletLocked
from netpay.keys import SigningKey, VerifyKey
from netpay.messages import BusinessModel, Quote, VendorCertificate
from netpay.money import Money
from netpay.signed import Signed
from wallet_app.callback.port import PaidResult, QuoteCheck

__all__ = ["Shop", "TestWallet", "chromium", "make_shop", "raw_request"]


@dataclass
class Shop:
    """A vendor certified by a broker key: signs quotes for its origin."""

    broker: SigningKey
    key: SigningKey
    certificate: Signed[VendorCertificate]
    origin: str

    @property
    def vendor_id(self) -> str:
        return self.certificate.body.vendor_id

    def quote(
        self,
        item_id: str = "article-1",
        amount: int = 5,
        expires_in: int = 300,
        signer: SigningKey | None = None,
        item_url: str | None = None,
    ) -> Signed[Quote]:
        now = int(time.time())
        body = Quote(
            quote_id=secrets.token_hex(8),
            vendor_id=self.vendor_id,
            item_id=item_id,
            title=f"Article {item_id}",
            price=Money(amount, "EUR"),
            model=BusinessModel("one_off"),
            payment_url=f"{self.origin}/v1/payments",
            item_url=item_url or f"{self.origin}/items/{item_id}",
            issued_at=now - 10,
            expires_at=now + expires_in,
        )
        return Signed.sign(body, signer or self.key)

    def offer(self, **kw: Any) -> dict[str, Any]:
        return {"quote": self.quote(**kw).to_wire(), "vendor_certificate": self.certificate.to_wire()}


def make_shop(
    origin: str = "http://127.0.0.1:8201", broker: SigningKey | None = None, vendor_id: str = "shop-1"
) -> Shop:
    broker = broker or SigningKey.generate()
    key = SigningKey.generate()
    now = int(time.time())
    cert = VendorCertificate(
        vendor_id=vendor_id,
        display_name=f"The {vendor_id} Shop",
        public_key=key.public,
        origins=(origin,),
        api_url=origin,
        payment_url=f"{origin}/v1/payments",
        broker_id="broker-test",
        issued_at=now - 60,
        expires_at=now + 86400,
    )
    return Shop(broker, key, Signed.sign(cert, broker), origin)


@dataclass
class TestWallet:
    """An in-memory :class:`WalletPort` that records what the callback asked of it (unit tests of the callback)."""

    __test__ = False  # not a pytest test class

    keys: Sequence[VerifyKey]
    balance: Money = field(default_factory=lambda: Money(1000, "EUR"))
    locked: bool = False
    paid: list[str] = field(default_factory=list)  # quote digests, in order
    allowances: dict[str, Money] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trusted_broker_keys(self) -> Sequence[VerifyKey]:
        return self.keys

    def is_locked(self) -> bool:
        return self.locked

    def check_quote(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str) -> QuoteCheck:
        if self.locked:
            raise WalletLocked()
        if quote.digest in self.paid:
            raise QuoteAlreadyPaid()
        price = quote.body.price
        budget = self.allowances.get(certificate.body.vendor_id)
        return QuoteCheck(self.balance - price, budget is not None and price <= budget)

    def covers(self, vendor_id: str, price: Money) -> bool:
        if self.locked:
            raise WalletLocked()
        budget = self.allowances.get(vendor_id)
        return budget is not None and price <= budget

    def pay(self, quote: Signed[Quote], certificate: Signed[VendorCertificate], origin: str, *, via: str) -> PaidResult:
        with self.lock:
            if quote.digest in self.paid:
                raise QuoteAlreadyPaid()
            self.paid.append(quote.digest)
            self.balance = self.balance - quote.body.price
            if via == "allowance":
                vid = certificate.body.vendor_id
                self.allowances[vid] = self.allowances[vid] - quote.body.price
        return PaidResult(f"tok-{len(self.paid)}", quote.body.item_url, f"rcpt-{len(self.paid)}")

    def grant_allowance(self, vendor_id: str, display_name: str, max_price: Money, budget: Money) -> None:
        self.allowances[vendor_id] = budget

    def pay_metered_unit(self, session_id: str, unit_no: int, origin: str) -> dict[str, Any]:
        raise NotFound("this test wallet has no metered sessions", session_id=session_id)

    def end_metered(self, session_id: str, origin: str) -> dict[str, Any]:
        raise NotFound("this test wallet has no metered sessions", session_id=session_id)


def raw_request(
    base: str, method: str, path: str, *, headers: dict[str, str] | None = None, data: bytes | None = None
) -> requests.Response:
    """A request with exactly these headers (requests adds Host itself unless given)."""
    return requests.request(method, base + path, headers=headers or {}, data=data, timeout=10)


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """A headless chromium browser (``extra_args`` added to its command line). Without the browser the test is
    skipped on a developer's machine but fails under CI (``CI`` set),
    where ``.ci/run`` must have installed it: a silent skip there would hide a broken install."""
    if not Path(CHROMIUM).exists():
        message = "Debian chromium is not installed (scripts/install-system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args], headless=True)
        try:
            yield browser
        finally:
            browser.close()

"""Run real vendors on loopback for tests and benchmarks, and a tiny payer that builds payments.

``start_vendor(broker, data_dir, ...)`` registers the vendor's key at the broker and serves the shop with uvicorn in
a thread. ``buy_chain(broker, n, coin_value)`` buys a chain for a fresh customer; ``make_payment(quote, [(cert,
traversal, coins)])`` spends the next coins of each traversal into a payment wire.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from netpay.keys import load_or_create_key
from netpay.messages import CoinCertificate, Payment, Quote, Segment
from netpay.signed import Signed
from netpay.traversal import PaywordTraversal
from netpay_web.live import LiveServer, free_port
from tests.support.broker import RunningBroker
from tests.support.postgres import database_url_for, postgres_enabled
from vendor_stub.app import create_app
from vendor_stub.service import Vendor, key_path
from vendor_stub.settings import VendorSettings

__all__ = [
    "CARDS",
    "NEWSPAPER",
    "KnownChain",
    "RunningVendor",
    "buy_chain",
    "buy_known_chain",
    "get_quote",
    "make_payment",
    "pay",
    "payment_of",
    "start_vendor",
]

CATALOGS = Path(__file__).resolve().parents[2] / "vendor_stub" / "catalogs"
NEWSPAPER = CATALOGS / "daily_planet.json"
CARDS = CATALOGS / "greeting_cards.json"


@dataclass
class RunningVendor:
    """A vendor served on loopback; ``vendor`` is the live service object (database, desk, book...)."""

    server: LiveServer
    vendor: Vendor
    settings: VendorSettings
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def vendor_id(self) -> str:
        return self.vendor.vendor_id

    def stop(self) -> None:
        self.server.stop()

    def quote(self, item_id: str) -> dict[str, Any]:
        return get_quote(self.url, item_id, self.session)

    def pay(self, payment: dict[str, Any]) -> requests.Response:
        return self.session.post(f"{self.url}/v1/payments", json=payment, timeout=30)

    def dump(self) -> str:
        """Every row of the vendor's database (for 'nothing was recorded' checks)."""
        return self.vendor.store.dump()


def start_vendor(
    broker: RunningBroker,
    data_dir: Path,
    catalog: Path = NEWSPAPER,
    name: str = "Daily Planet",
    vendor_id: str | None = None,
    port: int | None = None,
    register: bool = True,
    wrap: Callable[[Any], Any] | None = None,
    **overrides: Any,
) -> RunningVendor:
    """Register (key created in ``data_dir``) and start a vendor; ``overrides`` are VendorSettings fields
    (``broker_url`` may name another process of ``broker``). ``wrap``: serve ``wrap(app)`` instead of the app (an
    ASGI layer that misbehaves, for attacker tests)."""
    port = port or free_port()
    if postgres_enabled() and "database_url" not in overrides:
        overrides["database_url"] = database_url_for(data_dir)
    settings = VendorSettings(
        name=name,
        catalog=catalog,
        data_dir=Path(data_dir),
        broker_url=overrides.pop("broker_url", broker.url),  # another process of the same broker, perhaps
        port=port,
        vendor_id=vendor_id or "",
        broker_public_key=broker.public_key.hex,
        **overrides,
    )
    if register:
        key = load_or_create_key(key_path(Path(data_dir)))
        broker.register_vendor(settings.id, key, api_url=f"http://127.0.0.1:{port}", display_name=name)
    app = create_app(settings)
    server = LiveServer(app if wrap is None else wrap(app), port=port).start()
    return RunningVendor(server=server, vendor=app.state.vendor, settings=settings)


def buy_chain(
    broker: RunningBroker, n: int = 100, coin_value: int = 1
) -> tuple[Signed[CoinCertificate], PaywordTraversal]:
    """A fresh customer buys a chain of ``n`` coins of ``coin_value`` cents with the test card."""
    token = broker.new_customer()
    return broker.buy_chain(token, length=n, coin_value=coin_value, card=True)


def get_quote(base_url: str, item_id: str, session: requests.Session | None = None) -> dict[str, Any]:
    """``POST /v1/quotes`` and return the signed quote wire (raises for a refusal)."""
    s = session or requests
    resp = s.post(f"{base_url}/v1/quotes", json={"item_id": item_id}, timeout=30)
    resp.raise_for_status()
    quote: dict[str, Any] = resp.json()["quote"]
    return quote


def make_payment(
    quote: dict[str, Any] | Signed[Quote],
    spends: list[tuple[Signed[CoinCertificate], PaywordTraversal, int]],
    payment_id: str | None = None,
) -> dict[str, Any]:
    """Spend the next ``coins`` of each traversal for ``quote``; returns the Payment wire (traversals advance)."""
    signed = quote if isinstance(quote, Signed) else Signed.from_wire(quote, Quote, "quote")
    segments = []
    for cert, traversal, coins in spends:
        start = traversal.position
        index, payword = traversal.advance(coins)
        segments.append(Segment(cert, start, index, payword))
    return Payment(payment_id or secrets.token_hex(16), signed, tuple(segments)).to_wire()


def pay(
    vendor: RunningVendor, item_id: str, cert: Signed[CoinCertificate], traversal: PaywordTraversal
) -> requests.Response:
    """Quote ``item_id`` and pay its full price from one chain."""
    quote = vendor.quote(item_id)
    price = quote["body"]["price"]["amount"]
    coins, rest = divmod(price, cert.body.coin_value.amount)
    assert rest == 0, "the price must be a whole number of coins"
    return vendor.pay(make_payment(quote, [(cert, traversal, coins)]))


@dataclass
class KnownChain:
    """A bought chain whose every payword the test can recompute (for forged, replayed or overlapping segments)."""

    cert: Signed[CoinCertificate]
    traversal: PaywordTraversal
    token: str
    snapshot: bytes

    def word(self, index: int) -> bytes:
        """W_index, recomputed from the traversal's state at index 0."""
        return PaywordTraversal.from_bytes(self.snapshot).advance(index)[1]

    def segment(self, start: int, end: int, payword: bytes | None = None) -> Segment:
        """A segment ``start -> end`` with the genuine payword unless ``payword`` is given."""
        return Segment(self.cert, start, end, self.word(end) if payword is None else payword)


def buy_known_chain(broker: RunningBroker, n: int = 100, coin_value: int = 1) -> KnownChain:
    """Like :func:`buy_chain`, keeping the customer's session token and a snapshot of the traversal."""
    token = broker.new_customer()
    cert, traversal = broker.buy_chain(token, length=n, coin_value=coin_value, card=True)
    return KnownChain(cert, traversal, token, traversal.to_bytes())


def payment_of(quote: dict[str, Any], *segments: Segment, payment_id: str | None = None) -> dict[str, Any]:
    """A Payment wire from explicit segments (the quote's signature is not checked here)."""
    signed = Signed.from_wire(quote, Quote, "quote", verify=False)
    return Payment(payment_id or secrets.token_hex(16), signed, tuple(segments)).to_wire()

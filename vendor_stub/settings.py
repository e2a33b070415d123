"""Configuration of one vendor server (from CLI flags, environment variables or tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_NETPAY_JS", "QUOTE_TTL_MAX_S", "QUOTE_TTL_MIN_S", "VendorSettings", "slug"]

#: The page script shared with the wallet; read at request time so edits show up without a restart.
DEFAULT_NETPAY_JS = Path(__file__).resolve().parent.parent / "resources" / "netpay.js"


#: How long an operator may let a quote stay payable (``--quote-ttl``): long enough for a customer to read the
#: wallet's prompt, short enough that a price change takes effect within a day. (Tests set ``quote_ttl_s`` lower.)
QUOTE_TTL_MIN_S = 30
QUOTE_TTL_MAX_S = 86400


def slug(text: str) -> str:
    """A vendor id made from a display name: ``"Daily Planet"`` -> ``"daily-planet"``."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:64] or "vendor"


@dataclass(frozen=True, slots=True)
class VendorSettings:
    """Everything a vendor needs to run. ``vendor_id`` defaults to a slug of ``name``."""

    name: str
    catalog: Path
    data_dir: Path
    broker_url: str = "http://127.0.0.1:8100"
    host: str = "127.0.0.1"
    port: int = 8201
    vendor_id: str = ""
    public_url: str = ""
    broker_public_key: str = ""  # hex; pins the broker key instead of trusting GET /v1/info on first contact
    quote_ttl_s: int = 300  # QUOTE_TTL_MIN_S .. QUOTE_TTL_MAX_S; --quote-ttl / NETPAY_VENDOR_QUOTE_TTL
    report_delay_s: float = 0.2
    redeem_interval_s: float = 300.0
    revocation_refresh_s: float = 30.0
    release_timeout_s: float = 3.0
    background: bool = True
    #: This process sends spend reports and redemption batches in the background (``--no-settlement``: it only
    #: serves requests and refreshes revocations; another process of the same shop settles). Off with ``background``.
    settlement: bool = True
    max_body: int = 256 * 1024
    netpay_js: Path = DEFAULT_NETPAY_JS
    tls: bool = False  # served over HTTPS (the CLI's --tls-cert/--tls-key): the default base URL is https://
    refund_window_s: int = 14 * 86400  # a customer may ask for a refund this long after the receipt
    publisher_token: str = ""  # opens /earnings; empty: DATA_DIR/publisher_token, made on first start
    #: ``postgresql://...``: keep the shop's state in PostgreSQL, shared by every process of this shop; "" = SQLite.
    database_url: str = ""

    @property
    def database(self) -> Path | str:
        return self.database_url or Path(self.data_dir) / "vendor.sqlite3"

    @property
    def id(self) -> str:
        return self.vendor_id or slug(self.name)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

"""``netpay:`` links: ``netpay:pay?quote_url=<vendor quote endpoint>&item=<item id>[&return=<url>]``.

A vendor page may offer such a link instead of (or beside) the page script; the desktop file registers the scheme so
the browser starts ``netpay-wallet %u``, and a running wallet receives the link through the single-instance channel.
The wallet fetches the quote itself from the certified vendor and always prompts (never auto-pays a link).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from netpay.errors import MalformedMessage

__all__ = ["NetpayLink", "parse_netpay_uri"]

MAX_URI = 4096


@dataclass(frozen=True, slots=True)
class NetpayLink:
    """A parsed ``netpay:`` link."""

    quote_url: str
    item_id: str
    return_url: str | None = None


def parse_netpay_uri(uri: str) -> NetpayLink:
    """Parse and validate a ``netpay:`` link; :class:`MalformedMessage` for anything else."""
    if not isinstance(uri, str) or len(uri) > MAX_URI or not uri.lower().startswith("netpay:"):
        raise MalformedMessage("not a netpay: link", field="uri")
    parts = urlsplit(uri)
    action = parts.path.strip("/") or parts.netloc
    if action not in ("pay", ""):
        raise MalformedMessage(f"unknown netpay: action {action!r}", field="uri")
    query = parse_qs(parts.query, strict_parsing=False, max_num_fields=8)
    quote_url = (query.get("quote_url") or [""])[0]
    item = (query.get("item") or [""])[0]
    return_url: str | None = (query.get("return") or [""])[0] or None
    if not quote_url.startswith(("http://", "https://")):
        raise MalformedMessage("netpay: link needs an http(s) quote_url", field="quote_url")
    if not item or len(item) > 64:
        raise MalformedMessage("netpay: link needs an item", field="item")
    if return_url is not None and not return_url.startswith(("http://", "https://")):
        raise MalformedMessage("return must be an http(s) URL", field="return")
    return NetpayLink(quote_url, item, return_url)

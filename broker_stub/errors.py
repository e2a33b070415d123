"""Broker-specific error codes (on top of :mod:`netpay.errors`)."""

from __future__ import annotations

from netpay.errors import NetPayError

__all__ = ["ReplayedRequest", "StaleRequest"]


class ReplayedRequest(NetPayError):
    """A vendor-signed request reuses a nonce (or id) the broker has already seen."""

    code = "replayed"
    http_status = 409
    default_message = "this signed request was already used"


class StaleRequest(NetPayError):
    """A vendor-signed request's timestamp is too far from the broker's clock."""

    code = "stale"
    http_status = 400
    default_message = "request timestamp too far from the broker's clock"

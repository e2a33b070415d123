"""HTTP clients for the broker and the vendors (requests, pooled session, timeouts, safe retries)."""

from wallet_app.clients.broker import BrokerClient
from wallet_app.clients.http import JsonClient, shared_session
from wallet_app.clients.vendor import VendorClient

__all__ = ["BrokerClient", "JsonClient", "VendorClient", "shared_session"]

"""P2P-NetPay names both sides must compute alike: a peer's vendor id and the text it signs to register its key."""

from __future__ import annotations

import hashlib

__all__ = ["PEER_PREFIX", "peer_id_for", "registration_text"]

PEER_PREFIX = "peer-"


def peer_id_for(account_id: str) -> str:
    """The vendor id of the peer an account runs (stable, and no account id is shown to buyers)."""
    return PEER_PREFIX + hashlib.sha256(account_id.encode()).hexdigest()[:20]


def registration_text(broker_id: str, peer_id: str, public_key_hex: str, api_url: str) -> bytes:
    """What a peer signs with its key to register it: binds key, broker, peer id and address."""
    return f"netpay-peer-registration|{broker_id}|{peer_id}|{public_key_hex}|{api_url}".encode()

"""Helpers for the P2P tests: a wallet that sells (its peer server) and one that buys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wallet_app.peer.server import PeerServer, PeerSettings
from wallet_app.peer.vaultdb import PeerVault
from wallet_app.services import WalletService

__all__ = ["make_peer", "session_of"]


def session_of(wallet: WalletService, broker_id: str) -> Any:
    """A callable giving the wallet's current broker session token (logging in again when it expired)."""
    return lambda: wallet.brokers_desk.call(broker_id, lambda _client, token: token)


def make_peer(wallet: WalletService, broker_id: str, broker_url: str, broker_key_hex: str, data_dir: Path,
              **overrides: Any) -> PeerServer:  # fmt: skip
    """A peer server for ``wallet`` (sharing switched on, loopback unless ``host`` is given); not started."""
    settings = PeerSettings(data_dir=data_dir, broker_url=broker_url, broker_public_key=broker_key_hex,
                            display_name=overrides.pop("display_name", "Alice's files"), enabled=True,
                            **{"heartbeat_s": 5.0, **overrides})  # fmt: skip
    return PeerServer(settings, session_of(wallet, broker_id), PeerVault(wallet.session))

"""Pytest fixtures of the browser hand-off (loaded as a plugin by tests/conftest.py).

- ``shop``: a vendor certified by a fresh broker key (origin http://127.0.0.1:8201), signing real quotes.
- ``test_wallet``: an in-memory WalletPort trusting that broker (callback-only tests).
- ``callback_for``: start a :class:`CallbackServer` on a free loopback port for any WalletPort; stopped afterwards.
- ``handoff``: the real wallet core (``funded_wallet``) behind a live callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.callback import Shop, TestWallet, make_shop
from wallet_app.callback.coordinator import PurchaseCoordinator
from wallet_app.callback.limits import Limits
from wallet_app.callback.origins import OriginRegistry
from wallet_app.callback.port import WalletPort
from wallet_app.callback.server import CallbackServer
from wallet_app.callback.services_adapter import ServicesWalletPort


@pytest.fixture
def shop() -> Shop:
    return make_shop()


@pytest.fixture
def test_wallet(shop: Shop) -> TestWallet:
    return TestWallet([shop.broker.public])


@pytest.fixture
def callback_for() -> Iterator[Callable[..., CallbackServer]]:
    servers: list[CallbackServer] = []

    def start(wallet: WalletPort, limits: Limits | None = None, port: int = 0, discover: bool = True) -> CallbackServer:
        registry = OriginRegistry(wallet.trusted_broker_keys, discover=discover)
        coordinator = PurchaseCoordinator(wallet, limits=limits, registry=registry)
        server = CallbackServer(coordinator, port=port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        server.coordinator.shutdown()


@pytest.fixture
def handoff(funded_wallet: Any, callback_for: Callable[..., CallbackServer]) -> CallbackServer:
    """The real wallet (``funded_wallet``: trusts the ``broker`` fixture, 200 one-cent coins) behind a live callback
    on a free loopback port. Answer its prompts through ``handoff.coordinator``."""
    return callback_for(ServicesWalletPort(funded_wallet))

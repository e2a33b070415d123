"""Pytest fixtures for the wallet core (auto-loaded by tests/conftest.py).

- ``test_keyring``: a fresh in-memory keyring backend (tests only).
- ``wallet_factory``: make created, unlocked :class:`WalletService` objects in ``tmp_path``; closed afterwards.
- ``wallet``: one such wallet with the ``test_keyring``.
- ``funded_wallet``: ``wallet`` trusting the ``broker`` fixture with an account and one chain of 200 one-cent coins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import RunningBroker
from tests.support.test_keyring import MemoryKeyring
from tests.support.wallet import funded_wallet as _fund
from tests.support.wallet import new_wallet
from wallet_app.services import WalletService


@pytest.fixture
def test_keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def wallet_factory(tmp_path: Path, test_keyring: MemoryKeyring) -> Iterator[Callable[..., WalletService]]:
    made: list[WalletService] = []

    def make(name: str = "wallet", **kwargs: Any) -> WalletService:
        kwargs.setdefault("keyring", test_keyring)
        w = new_wallet(tmp_path / name, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def wallet(wallet_factory: Callable[..., WalletService]) -> WalletService:
    return wallet_factory()


@pytest.fixture
def funded_wallet(wallet: WalletService, broker: RunningBroker) -> WalletService:
    _fund(wallet, broker.url, chains=1, coins=200, coin_value=1)
    return wallet

"""Pytest fixtures for the wallet's windows (auto-loaded by tests/conftest.py).

- ``gui_wallet``: a :class:`tests.support.gui.GuiWallet` (real services, coordinator, callback, windows) against
  the ``broker`` fixture; closed after the test.
- ``gui_wallet_factory``: more of them (e.g. a second wallet to restore a backup into).

Qt warnings fail the GUI tests: ``tests/wallet_app/gui/conftest.py`` marks them ``qt_log_level_fail("WARNING")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.broker import RunningBroker

if TYPE_CHECKING:
    from tests.support.gui import GuiWallet


@pytest.fixture
def gui_wallet_factory(qapp: Any, broker: RunningBroker, tmp_path: Path) -> Iterator[Callable[..., GuiWallet]]:
    """Make wallets with windows; each gets its own data dir under ``tmp_path``."""
    from tests.support.gui import GuiWallet  # Qt and the wallet load only for the tests that use them
    from wallet_app.gui.theme import apply_theme

    apply_theme(qapp, dark=False)
    made: list[GuiWallet] = []

    def make(name: str | None = None, **kwargs: Any) -> GuiWallet:
        wallet = GuiWallet(tmp_path / (name or f"wallet{len(made)}"), broker, **kwargs)
        made.append(wallet)
        return wallet

    yield make
    for wallet in made:
        wallet.close()


@pytest.fixture
def gui_wallet(gui_wallet_factory: Callable[..., GuiWallet]) -> GuiWallet:
    """A wallet with windows (no vault yet) against the live ``broker``."""
    return gui_wallet_factory()

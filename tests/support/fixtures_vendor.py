"""Pytest fixtures for live vendors (auto-loaded by tests/conftest.py): ``vendor`` and ``vendor_factory``.

Both need the broker's ``broker`` fixture. ``vendor`` is the Daily Planet (newspaper catalog); ``vendor_factory``
starts more, e.g. ``vendor_factory(catalog=CARDS, name="Paper Lantern Cards")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import RunningBroker
from tests.support.vendor import RunningVendor, start_vendor


@pytest.fixture
def vendor_factory(broker: RunningBroker, tmp_path: Path) -> Iterator[Callable[..., RunningVendor]]:
    """Start vendors registered at ``broker``; each gets its own data dir under ``tmp_path``."""
    started: list[RunningVendor] = []

    def make(**kwargs: Any) -> RunningVendor:
        data_dir = kwargs.pop("data_dir", None) or tmp_path / f"vendor{len(started)}"
        running = start_vendor(broker, data_dir, **kwargs)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def vendor(vendor_factory: Callable[..., RunningVendor]) -> RunningVendor:
    """A Daily Planet vendor on a loopback port, registered at the ``broker`` fixture."""
    return vendor_factory()

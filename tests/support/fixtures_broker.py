"""Pytest fixtures for a live broker (auto-loaded by tests/conftest.py): ``broker`` and ``broker_factory``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import RunningBroker, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    """A fresh broker on a loopback port, data in ``tmp_path / "broker"``, fast argon2, close grace 0."""
    running = start_broker(tmp_path / "broker")
    yield running
    running.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., RunningBroker]]:
    """Start brokers with settings overrides: ``broker_factory(close_grace_s=5, data_dir=...)``."""
    started: list[RunningBroker] = []

    def make(data_dir: Path | None = None, **overrides: Any) -> RunningBroker:
        running = start_broker(data_dir or tmp_path / f"broker{len(started)}", **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()

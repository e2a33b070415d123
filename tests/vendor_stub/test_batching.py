"""Committing payments from the event loop: a lone payment right away in the loop, overlapping ones in groups."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

from vendor_stub.batching import PROBE_EVERY, PaymentBatcher
from vendor_stub.storage import Store


class _Desk:
    """Stands in for the payment desk: records which payments were finished, and in which thread."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, bool, str]] = []

    def finish(self, prepared: Any, committed: bool) -> None:
        self.finished.append((prepared.key, committed, threading.current_thread().name))


class _Prepared:
    def __init__(self, key: str) -> None:
        self.key = key

    def write(self, c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO meta (key, value) VALUES (?, 'paid')", (self.key,))


def test_lone_payments_commit_in_the_loop_and_overlapping_ones_in_the_writer(tmp_path: Path) -> None:
    store = Store(tmp_path / "v.sqlite3")
    store.writer._checkpoint_every = 10**9  # no checkpoint taking the database lock in between
    desk = _Desk()

    async def scenario() -> None:
        batcher = PaymentBatcher(desk, store.writer)  # type: ignore[arg-type]
        loop_thread = threading.current_thread().name
        # one at a time: committed before commit() returns, in this thread, except every PROBE_EVERY-th (the
        # probe for overlapping payments goes through the writer thread)
        for i in range(2 * PROBE_EVERY):
            fut = batcher.commit(_Prepared(f"lone{i}"))  # type: ignore[arg-type]
            assert fut.done() == ((i + 1) % PROBE_EVERY != 0)
            assert await fut is None
        inline = [t for key, ok, t in desk.finished if ok and t == loop_thread]
        assert len(inline) == 2 * PROBE_EVERY - 2
        # a payment checked while the probe is committing: both are committed by the writer thread, and the shop
        # counts as busy for a while
        for i in range(PROBE_EVERY - 1):
            assert await batcher.commit(_Prepared(f"more{i}")) is None  # type: ignore[arg-type]
        probe = batcher.commit(_Prepared("probe"))  # type: ignore[arg-type]
        second = batcher.commit(_Prepared("second"))  # type: ignore[arg-type]
        assert not probe.done() and not second.done()
        assert await asyncio.gather(probe, second) == [None, None]
        fut = batcher.commit(_Prepared("after"))  # type: ignore[arg-type]
        assert not fut.done()  # still group commit mode
        assert await fut is None
        # a refused write (the key exists) rolls back only itself
        assert isinstance(await batcher.commit(_Prepared("lone0")), sqlite3.IntegrityError)  # type: ignore[arg-type]

    asyncio.run(scenario())
    writer_thread = {key: t for key, _, t in desk.finished}
    assert writer_thread["probe"] == writer_thread["second"] == writer_thread["after"] == "vendor-group-commit"
    assert desk.finished[-1][:2] == ("lone0", False)
    store.close()
    again = Store(tmp_path / "v.sqlite3")  # everything accepted is on disk
    assert len(again.query("SELECT key FROM meta WHERE value = 'paid'")) == 3 * PROBE_EVERY + 2
    again.close()

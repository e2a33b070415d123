"""Group commit from the event loop: payments checked in the loop are committed in batches, one batch at a time.

While the writer thread commits a batch (one fsync), the payments checked meanwhile collect here; when that commit
is done they all go to the writer as ONE job (each payment in its own savepoint), so a busy shop pays one fsync and
one thread hand-off per batch instead of per payment.

A payment that comes alone (no other payment committing or waiting, none seen overlapping for a while) is committed
right away in the event loop: it has to wait for its fsync anyway, and this saves the loop turn and the two thread
hand-offs of the batched path. While it commits the loop cannot notice other payments arriving, so every
``PROBE_EVERY``-th lone payment still goes through the writer thread; a payment arriving while another commits marks
the shop as busy, and for ``BUSY_S`` seconds every payment is group-committed by the writer thread again, so under
concurrent load one fsync still serves many payments and overlaps the checking of the next ones.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from vendor_stub.payments import PaymentDesk, PreparedPayment
from vendor_stub.storage import CommitJob, GroupCommitter

__all__ = ["PaymentBatcher"]

#: Every this many lone payments, one goes through the writer thread to find out whether others overlap it.
PROBE_EVERY = 8
#: How long overlapping payments keep the batcher in group-commit mode.
BUSY_S = 1.0

_Item = tuple[PreparedPayment, "asyncio.Future[BaseException | None]"]


class PaymentBatcher:
    """Used only from the event loop thread; the writer thread calls back through ``call_soon_threadsafe``."""

    def __init__(self, desk: PaymentDesk, writer: GroupCommitter) -> None:
        self._desk = desk
        self._writer = writer
        self._pending: list[_Item] = []
        self._busy = False
        self._scheduled = False
        self._crowded_until = 0.0
        self._alone = 0

    def commit(self, prepared: PreparedPayment) -> asyncio.Future[BaseException | None]:
        """Queue a prepared payment; the future resolves (to None, or the error) once it is durable or refused."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[BaseException | None] = loop.create_future()
        if self._busy or self._pending:
            self._crowded_until = time.monotonic() + BUSY_S  # payments overlap: group commit for a while
        elif time.monotonic() >= self._crowded_until:
            self._alone += 1
            if self._alone % PROBE_EVERY and self._commit_here(prepared, fut):
                return fut  # already resolved: awaiting it does not even yield
        self._pending.append((prepared, fut))
        if not self._busy and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, loop)  # after the handlers already running in this loop turn
        return fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        batch, self._pending = self._pending, []
        self._busy = True
        desk = self._desk

        def write(conn: sqlite3.Connection) -> list[BaseException | None]:
            outcome: list[BaseException | None] = []
            for prepared, _ in batch:
                conn.execute("SAVEPOINT payment")
                try:
                    prepared.write(conn)
                except Exception as exc:  # this payment is refused; the others of the batch go on
                    conn.execute("ROLLBACK TO payment")
                    outcome.append(exc)
                else:
                    outcome.append(None)
                conn.execute("RELEASE payment")
            return outcome

        def done(job: CommitJob[Any]) -> None:  # in the writer thread, after the commit
            outcome = list(job.result) if job.error is None else [job.error] * len(batch)
            for (prepared, _), error in zip(batch, outcome, strict=True):
                desk.finish(prepared, committed=error is None)
            loop.call_soon_threadsafe(self._resolved, loop, batch, outcome)

        try:
            self._writer.submit(write, done)
        except RuntimeError as exc:  # the writer is stopped (shutting down)
            for prepared, _ in batch:
                desk.finish(prepared, committed=False)
            self._resolved(loop, batch, [exc] * len(batch))

    def _commit_here(self, prepared: PreparedPayment, fut: asyncio.Future[BaseException | None]) -> bool:
        """Commit a lone payment in this thread if the writer is idle; False (nothing done) if it is not."""
        ran, _, error = self._writer.run_now(prepared.write)
        if not ran:
            return False
        self._desk.finish(prepared, committed=error is None)
        if not fut.done():
            fut.set_result(error)
        return True

    def _resolved(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], outcome: list[BaseException | None]
                  ) -> None:  # fmt: skip
        self._busy = False
        for (_, fut), error in zip(batch, outcome, strict=True):
            if not fut.done():
                fut.set_result(error)
        if self._pending:
            self._flush(loop)

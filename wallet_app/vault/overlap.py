"""Do a little Python work while this thread waits in a system call: the journal's fsync and the request that follows.

A payment's journal entry must be durable before its paywords leave the process, so the wallet waits for an fsync
of the vault's log (0.3 – 3 ms on a shared disk). Building the HTTP request that carries the payment (requests'
``prepare_request`` and environment settings, about 0.25 ms) does not send anything, so it can be done meanwhile:
:meth:`Overlap.run` hands it to one helper thread and then blocks in the system call, which releases the GIL, so the
helper runs while the disk works. Nothing is sent before the call returns: the caller sends what ``meanwhile`` built
only after :meth:`run` returned, and :meth:`run` raises the system call's error (the built request is dropped).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Overlap"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Overlap:
    """One helper thread that runs ``meanwhile`` while the caller blocks in ``blocking`` (thread-safe: a second
    caller while the helper is busy runs its ``meanwhile`` itself, after its ``blocking``)."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._start = threading.Event()
        self._done = threading.Event()
        self._job: Callable[[], Any] | None = None
        self._result: Any = None
        self._thread: threading.Thread | None = None

    def run(self, blocking: Callable[[], None], meanwhile: Callable[[], T]) -> T | None:
        """Run ``blocking()`` here and ``meanwhile()`` on the helper at the same time; return what ``meanwhile``
        returned, or None if it raised (the caller then does that work the ordinary way, and meets its error there).
        An exception of ``blocking`` is raised, once ``meanwhile`` is over."""
        if not self._busy.acquire(blocking=False):
            blocking()
            return _quietly(meanwhile)
        try:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="vault-overlap", daemon=True)
                self._thread.start()
            self._job, self._result = meanwhile, None
            self._done.clear()
            self._start.set()
            try:
                blocking()
            finally:
                self._done.wait()
            result: T | None = self._result
            self._result = None
            return result
        finally:
            self._busy.release()

    def _serve(self) -> None:
        while True:
            self._start.wait()
            self._start.clear()
            job, self._job = self._job, None
            if job is not None:
                self._result = _quietly(job)
            self._done.set()


def _quietly(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except Exception:  # the caller redoes the work the ordinary way and meets the error there
        log.debug("work overlapped with a system call failed", exc_info=True)
        return None

"""Turns the wallet services' plain callbacks into Qt signals, and runs blocking work off the GUI thread.

The services call their listeners from whatever thread they run on (the callback server's thread, a worker). Every
signal here is emitted on a :class:`Bridge` that lives in the GUI thread, so Qt queues the delivery to the GUI thread.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

__all__ = ["Bridge", "Task"]

log = logging.getLogger(__name__)


class _TaskSignals(QObject):
    """Signals of one background task; lives in the GUI thread."""

    progress = Signal(int, str)
    done = Signal(object)
    failed = Signal(object)


class Task(QRunnable):
    """A blocking call run on the thread pool. ``fn`` may take a ``progress(percent, text)`` keyword."""

    def __init__(self, fn: Callable[..., Any], *args: Any, with_progress: bool = False, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.with_progress = with_progress
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            if self.with_progress:
                self.kwargs["progress"] = lambda pct, text="": self.signals.progress.emit(int(pct), str(text))
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # report every failure to the window that started the task
            log.debug("background task failed: %s", "".join(traceback.format_exception_only(exc)).strip())
            self.signals.failed.emit(exc)
        else:
            self.signals.done.emit(result)


class Bridge(QObject):
    """The one place where service events become Qt signals and where windows start background work."""

    balance_changed = Signal()
    activity_changed = Signal()
    allowance_payment = Signal(object)  # ActivityEntry of a payment made under an allowance
    subscription_event = Signal(object, bool)  # (Subscription, renewed: True / stopped: False)
    metered_changed = Signal(object)  # MeteredSession: opened, paid a unit, or ended
    prompt_requested = Signal(object)  # PromptView
    prompt_closed = Signal(str)  # prompt id (paid, declined or expired elsewhere)
    vault_locked = Signal()
    vault_unlocked = Signal()
    unlock_requested = Signal()  # a page asked to buy while the wallet is locked
    busy_changed = Signal(int)
    callback_state = Signal(str, str)  # (callback URL, error) once the browser callback started or failed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._running: set[Task] = set()

    # --- plain callbacks handed to the services (any thread) ---------------------------------------------------
    def on_balance_changed(self, *_: Any) -> None:
        self.balance_changed.emit()
        self.activity_changed.emit()

    def on_allowance_payment(self, entry: Any) -> None:
        self.allowance_payment.emit(entry)
        self.balance_changed.emit()
        self.activity_changed.emit()

    def on_prompt(self, prompt: Any) -> None:
        self.prompt_requested.emit(prompt)

    def on_prompt_closed(self, prompt_id: str) -> None:
        self.prompt_closed.emit(prompt_id)

    def on_locked(self, *_: Any) -> None:
        self.vault_locked.emit()

    # --- background work ---------------------------------------------------------------------------------------
    @property
    def busy(self) -> int:
        """How many background tasks are running."""
        return len(self._running)

    def run(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[int, str], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``fn(*args, **kwargs)`` on the pool; the callbacks run in the GUI thread afterwards."""
        task = Task(fn, *args, with_progress=on_progress is not None, **kwargs)
        if on_progress is not None:
            task.signals.progress.connect(on_progress)

        @Slot(object)
        def finished(result: Any) -> None:
            self._finish(task)
            if on_done is not None:
                on_done(result)

        @Slot(object)
        def failed(exc: Any) -> None:
            self._finish(task)
            if on_error is not None:
                on_error(exc)
            else:
                log.warning("background task failed: %s", exc)

        task.signals.done.connect(finished)
        task.signals.failed.connect(failed)
        self._running.add(task)
        self.busy_changed.emit(len(self._running))
        self.pool.start(task)
        return task

    def _finish(self, task: Task) -> None:
        self._running.discard(task)
        self.busy_changed.emit(len(self._running))

    def wait_idle(self, msecs: int = 30000) -> bool:
        """Block until every pool thread is done (shutdown and tests)."""
        return bool(self.pool.waitForDone(msecs))

"""Turns the wallet services' plain callbacks into Qt signals, and runs blocking work off the GUI thread.

The services call their listeners from whatever thread they run on (the callback server's thread, a worker). Every
signal here is emitted on a :class:`Bridge` that lives in the GUI thread, so Qt queues the delivery to the GUI thread.
"""

from __future__ import annotations

import itertools
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

__all__ = ["Bridge", "Task"]

log = logging.getLogger(__name__)


class Task:
    """A blocking call run on the thread pool. ``fn`` may take a ``progress(percent, text)`` keyword.

    The task reports through its bridge's signals, keyed by its number: no Qt object is made per task, so none can
    be freed later from a worker thread (a per-task signal object tied into a reference cycle by its own slots was).
    """

    def __init__(
        self,
        bridge: Bridge,
        number: int,
        fn: Callable[..., Any],
        *args: Any,
        with_progress: bool = False,
        **kwargs: Any,
    ) -> None:
        self.number = number
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.with_progress = with_progress
        self._bridge = bridge

    def run(self) -> None:
        bridge, number = self._bridge, self.number
        try:
            if self.with_progress:
                self.kwargs["progress"] = lambda pct, text="": bridge.task_progress.emit(number, int(pct), str(text))
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # report every failure to the window that started the task
            log.debug("background task failed: %s", "".join(traceback.format_exception_only(exc)).strip())
            bridge.task_failed.emit(number, exc)
        else:
            bridge.task_done.emit(number, result)


class _Callbacks:
    """What the window that started a task wants called in the GUI thread."""

    __slots__ = ("on_done", "on_error", "on_progress", "task")

    def __init__(
        self,
        task: Task,
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
        on_progress: Callable[[int, str], None] | None,
    ) -> None:
        self.task = task
        self.on_done = on_done
        self.on_error = on_error
        self.on_progress = on_progress


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
    task_progress = Signal(int, int, str)  # (task number, percent, text), emitted from a worker
    task_done = Signal(int, object)  # (task number, result), emitted from a worker
    task_failed = Signal(int, object)  # (task number, exception), emitted from a worker
    callback_state = Signal(str, str)  # (callback URL, error) once the browser callback started or failed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # A plain executor, not QThreadPool: PySide's QThreadPool.start() keeps every runnable alive as long as the
        # pool, so each task (and what its closure holds) leaked for the life of the window.
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wallet-task")
        self._pending: set[Future[None]] = set()
        self._running: dict[int, _Callbacks] = {}
        self._numbers = itertools.count(1)
        self.task_progress.connect(self._on_task_progress)
        self.task_done.connect(self._on_task_done)
        self.task_failed.connect(self._on_task_failed)

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
        number = next(self._numbers)
        task = Task(self, number, fn, *args, with_progress=on_progress is not None, **kwargs)
        self._running[number] = _Callbacks(task, on_done, on_error, on_progress)
        self.busy_changed.emit(len(self._running))
        future = self.pool.submit(task.run)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return task

    @Slot(int, int, str)
    def _on_task_progress(self, number: int, percent: int, text: str) -> None:
        callbacks = self._running.get(number)
        if callbacks is not None and callbacks.on_progress is not None:
            callbacks.on_progress(percent, text)

    @Slot(int, object)
    def _on_task_done(self, number: int, result: Any) -> None:
        callbacks = self._finish(number)
        if callbacks is not None and callbacks.on_done is not None:
            callbacks.on_done(result)

    @Slot(int, object)
    def _on_task_failed(self, number: int, exc: Any) -> None:
        callbacks = self._finish(number)
        if callbacks is None:
            return
        if callbacks.on_error is not None:
            callbacks.on_error(exc)
        else:
            log.warning("background task failed: %s", exc)

    def _finish(self, number: int) -> _Callbacks | None:
        callbacks = self._running.pop(number, None)
        self.busy_changed.emit(len(self._running))
        return callbacks

    def wait_idle(self, msecs: int = 30000) -> bool:
        """Block until every background task has returned (shutdown and tests)."""
        _, not_done = wait(list(self._pending), timeout=msecs / 1000)
        return not not_done

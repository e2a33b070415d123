"""Python's cyclic garbage collector runs in the GUI thread only.

CPython runs a collection in whichever thread happens to allocate when a generation's threshold is crossed. When that
is a worker thread (an HTTP call of a background task), the collector may free the last reference to a Qt object that
lives in the GUI thread -- a closed window caught in a reference cycle with its own slots -- and delete it from the
wrong thread while the GUI thread is painting or delivering events to it: a segmentation fault some minutes later, on
no particular line. This is a known hazard of PyQt/PySide applications with threads; the usual cure, used here, is to
switch automatic collection off and run it from a timer in the GUI thread, with the same generation thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["MainThreadCollector", "install_main_thread_gc"]


class MainThreadCollector(QObject):
    """Runs the generational collections CPython would have run, from the GUI thread's event loop."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the oldest generation whose allocation count passed its threshold (as the interpreter would)."""
        counts = gc.get_count()
        if counts[0] <= self.threshold[0]:
            return
        generation = 0
        if counts[1] > self.threshold[1]:
            generation = 1
            if counts[2] > self.threshold[2]:
                generation = 2
        gc.collect(generation)

    def stop(self) -> None:
        """Give collection back to the interpreter (when the application shuts down)."""
        self.timer.stop()
        gc.enable()


_installed: MainThreadCollector | None = None


def install_main_thread_gc(app: QObject) -> MainThreadCollector:
    """Install the collector once per process, owned by ``app``; later calls return the same one."""
    global _installed
    if _installed is None:
        _installed = MainThreadCollector(app)
    return _installed

"""Background tasks report back in the GUI thread, and the cyclic collector never runs in a worker thread."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

from wallet_app.gui.bridge import Bridge
from wallet_app.gui.gc_guard import MainThreadCollector


def test_results_errors_and_progress_reach_the_gui_thread(qtbot: Any) -> None:
    bridge = Bridge()
    gui_thread = threading.get_ident()
    seen: list[tuple[str, Any, int]] = []

    def work(x: int, progress: Any) -> int:
        progress(50, "half")
        return x * 2

    def boom() -> None:
        raise ValueError("no")

    bridge.run(
        work,
        21,
        on_done=lambda r: seen.append(("done", r, threading.get_ident())),
        on_progress=lambda p, t: seen.append(("progress", (p, t), threading.get_ident())),
    )
    bridge.run(boom, on_error=lambda e: seen.append(("failed", str(e), threading.get_ident())))
    qtbot.waitUntil(lambda: bridge.busy == 0 and len(seen) == 3, timeout=5000)
    assert sorted((kind, value) for kind, value, _ in seen) == [
        ("done", 42),
        ("failed", "no"),
        ("progress", (50, "half")),
    ]
    assert {thread for _, _, thread in seen} == {gui_thread}
    assert bridge.wait_idle(1000)


def test_no_qt_object_is_left_per_task(qtbot: Any) -> None:
    """A finished task leaves nothing behind for the collector to free later (from whichever thread)."""
    bridge = Bridge()
    task = bridge.run(lambda: 1, on_done=lambda _: None)
    qtbot.waitUntil(lambda: bridge.busy == 0, timeout=5000)
    bridge.wait_idle(1000)
    ref = weakref.ref(task)
    del task
    assert ref() is None  # freed by reference counting, at once, in this thread
    assert not bridge.children()  # no Qt object per task


def test_collection_runs_from_the_gui_thread(qapp: Any, qtbot: Any) -> None:
    collector = MainThreadCollector(qapp)
    assert not gc.isenabled()
    threads: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            threads.append(threading.get_ident())

    gc.callbacks.append(note)
    try:
        garbage = [[] for _ in range(collector.threshold[0] * 3)]
        for item in garbage:
            item.append(item)  # cycles, so generation 0 fills
        del garbage
        worker = threading.Thread(target=lambda: [[i] for i in range(50_000)])
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: bool(threads), timeout=5000)
    finally:
        gc.callbacks.remove(note)
        collector.stop()
    assert set(threads) == {threading.get_ident()}

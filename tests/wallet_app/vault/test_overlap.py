"""The helper that builds a payment's request while the journal's fsync runs: the work overlaps the wait, its result
comes back only after the wait ended, and a failing wait or failing work never lets anything half-done through."""

from __future__ import annotations

import threading
import time

import pytest

from wallet_app.vault.overlap import Overlap


def test_the_work_runs_during_the_wait_and_its_result_comes_after_it() -> None:
    overlap, events = Overlap(), []
    started = threading.Event()

    def wait() -> None:
        assert started.wait(5)  # the helper began while this thread was still waiting
        events.append("wait ended")

    def work() -> str:
        started.set()
        events.append("work")
        return "built"

    assert overlap.run(wait, work) == "built"
    assert events == ["work", "wait ended"]
    assert overlap.run(lambda: None, lambda: 7) == 7  # the same helper serves the next call


def test_a_failing_wait_is_raised_after_the_work_and_its_result_is_dropped() -> None:
    overlap, done = Overlap(), []

    def wait() -> None:
        raise OSError(5, "Input/output error")

    def work() -> str:
        time.sleep(0.05)
        done.append(True)
        return "built"

    with pytest.raises(OSError):
        overlap.run(wait, work)
    assert done == [True]  # the helper had finished before the error came back: nothing is left running
    assert overlap.run(lambda: None, lambda: "next") == "next"


def test_failing_work_gives_none_and_the_wait_still_completes() -> None:
    waited = []

    def work() -> str:
        raise ValueError("cannot build")

    assert Overlap().run(lambda: waited.append(True), work) is None
    assert waited == [True]


def test_a_second_caller_while_the_helper_is_busy_does_its_work_itself() -> None:
    overlap = Overlap()
    inside, release = threading.Event(), threading.Event()
    results: list[object] = []

    def long_wait() -> None:
        inside.set()
        assert release.wait(5)

    first = threading.Thread(target=lambda: results.append(overlap.run(long_wait, lambda: "first")))
    first.start()
    assert inside.wait(5)
    order: list[str] = []
    second = overlap.run(lambda: order.append("wait"), lambda: order.append("work") or "second")
    assert second == "second" and order == ["wait", "work"]  # after its own wait, in its own thread
    release.set()
    first.join(5)
    assert results == ["first"]

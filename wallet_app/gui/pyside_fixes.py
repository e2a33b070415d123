"""Works around a reference-count bug of PySide6 6.12 that crashes a long-running wallet.

In PySide6 6.12.0 ``SignalInstance.emit()`` returns ``True`` -- and ``SignalInstance.disconnect()`` a ``bool`` --
without taking a reference to it. Every call whose result is dropped takes one reference from the interpreter's
``True`` (or ``False``); on CPython 3.11, where ``True`` is not immortal, a few thousand signals later the count reaches
zero and the process dies in ``bool_dealloc`` or with a segmentation fault, at no particular line. (It surfaced as a
segfault late in the test suite: one process runs every window test.)

:func:`install` measures whether the running PySide has the bug and, only then, wraps the two methods so each call
gives back the reference it took. On a fixed PySide, or on CPython 3.12+ where ``True`` and ``False`` are immortal, it
changes nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

__all__ = ["install", "leaks_a_reference"]

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    """A signal to measure the bug with."""

    ping = Signal()


def _noop() -> None:
    """The slot connected and disconnected while measuring."""


def leaks_a_reference(call: Callable[[], Any], result: bool, tries: int = 64) -> bool:
    """Whether ``call()`` (which returns ``result``) takes references from ``result`` that it never gave. The
    references the measurement itself took are given back: a process that holds few references to ``True`` (one
    that has not imported much yet) would otherwise die in ``bool_dealloc`` at exit, from the probe alone."""
    before = sys.getrefcount(result)
    for _ in range(tries):
        call()
    lost = before - sys.getrefcount(result)
    for _ in range(max(0, lost)):
        _incref(result)
    return lost > tries // 2


def _giving_back(method: Callable[..., Any]) -> Callable[..., Any]:
    def fixed(self: SignalInstance, *args: Any) -> Any:
        answer = method(self, *args)
        if answer is True or answer is False:
            _incref(answer)  # the reference PySide should have taken
        return answer

    fixed.__name__ = method.__name__
    fixed.__doc__ = method.__doc__
    return fixed


_installed = False


def install() -> None:
    """Patch ``SignalInstance.emit`` and ``disconnect`` if (and only if) this PySide leaks a reference in them."""
    global _installed
    if _installed:
        return
    _installed = True
    probe = _Probe()
    if leaks_a_reference(probe.ping.emit, True):
        SignalInstance.emit = _giving_back(SignalInstance.emit)  # type: ignore[method-assign]

    def connect_then_disconnect() -> None:
        probe.ping.connect(_noop)
        probe.ping.disconnect(_noop)

    if leaks_a_reference(connect_then_disconnect, True):
        SignalInstance.disconnect = _giving_back(SignalInstance.disconnect)  # type: ignore[method-assign]

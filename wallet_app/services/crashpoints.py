"""Test hooks for the crash test: the process kills itself (SIGKILL) at a named step.

Set ``NETPAY_WALLET_CRASH_AT=<step>`` and ``NETPAY_WALLET_CRASH_HIT=<n>`` to die the n-th time (1-based) the engine
passes ``step``. The variables are read once, when this module is first imported (the crash tests start a child
process with them set); without them a crash point costs one comparison. Steps: ``after_journal`` (spend written
as pending, nothing sent), ``after_send`` (the vendor answered, receipt not yet stored), ``after_settle``,
``buy_after_journal``, ``buy_after_send``.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point"]

_hits: dict[str, int] = {}
_TARGET = os.environ.get("NETPAY_WALLET_CRASH_AT")
_HIT = int(os.environ.get("NETPAY_WALLET_CRASH_HIT", "1") or "1")


def crash_point(step: str) -> None:
    """Die here if the environment asked for it when the process started (tests only)."""
    if step != _TARGET:
        return
    _hits[step] = _hits.get(step, 0) + 1
    if _hits[step] >= _HIT:
        os.kill(os.getpid(), signal.SIGKILL)

"""Test hooks for the crash test: the process kills itself (SIGKILL) at a named step.

Set ``NETPAY_WALLET_CRASH_AT=<step>`` and ``NETPAY_WALLET_CRASH_HIT=<n>`` to die the n-th time (1-based) the engine
passes ``step``. Without the variables this costs one dictionary lookup. Steps: ``after_journal`` (spend written
as pending, nothing sent), ``after_send`` (the vendor answered, receipt not yet stored), ``after_settle``,
``buy_after_journal``, ``buy_after_send``.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point"]

_hits: dict[str, int] = {}


def crash_point(step: str) -> None:
    """Die here if the environment asks for it (tests only)."""
    target = os.environ.get("NETPAY_WALLET_CRASH_AT")
    if target != step:
        return
    _hits[step] = _hits.get(step, 0) + 1
    if _hits[step] >= int(os.environ.get("NETPAY_WALLET_CRASH_HIT", "1")):
        os.kill(os.getpid(), signal.SIGKILL)
